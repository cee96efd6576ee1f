"""The Colab backend's replies, read into typed models.

The backend speaks two dialects (docs/protocol.md §2 and §6):
the colab host (``/tun/m/*``) sends enums as numbers and ``tokenExpiresInSeconds``; the GAPI
host sends enum names and ``tokenTtl: "3600s"``. Both read into the same normalized values:

- variant: ``"CPU" | "GPU" | "TPU"``, or the wire text of a variant we have never seen;
- accelerator: upper-cased model (``"T4"``, ``"V5E1"``…) or ``None`` for CPU;
- shape: ``"standard" | "high-mem"``, or the wire text of an unknown shape;
- tier: ``"free" | "pro" | "pro_plus"``, or ``None`` where Colab did not say.

Unknown values are kept as text so that a new accelerator never breaks listing, and numbers
are read leniently (a count or a timestamp with a fraction, an int64 as a string) so that one
odd field never makes a whole reply unreadable.

The backend's text reaches URL paths, file names, ssh's config, menus and terminals, so it is
read narrowly: an endpoint is an id (``m-s-abc123``) or the reply is malformed, and text shown
to a person (an accelerator, a runtime version) keeps no control, format or line-break
character (:func:`one_line`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
)

from colabtray.colab.kinds import CPU, FREE, GPU, HIGH_MEM, PRO, PRO_PLUS, STANDARD, TPU
from colabtray.colab.wire import expires_within

DEFAULT_TOKEN_TTL = 3600.0

# Accelerators that only exist as high-memory machines (L4 and the TPUs): they come as they
# are, and the person's High-RAM choice is not asked for them.
HIGH_MEM_ONLY = frozenset({"L4", "V28", "V5E1", "V6E1"})


def chooses_high_mem(variant: str, accelerator: str | None, high_mem: bool) -> bool:
    """Whether the person's High-RAM choice is sent with an assign: never for a TPU (a TPU
    comes with the memory it has) nor an accelerator that only exists as High-RAM."""
    return high_mem and variant != TPU and accelerator not in HIGH_MEM_ONLY

_VARIANTS = {
    0: CPU,
    1: GPU,
    2: TPU,
    "DEFAULT": CPU,
    "GPU": GPU,
    "TPU": TPU,
    "VARIANT_UNSPECIFIED": CPU,
    "VARIANT_CPU": CPU,
    "VARIANT_GPU": GPU,
    "VARIANT_TPU": TPU,
}
_SHAPES = {
    0: STANDARD,
    1: HIGH_MEM,
    "SHAPE_DEFAULT": STANDARD,
    "SHAPE_UNSPECIFIED": STANDARD,
    "SHAPE_STANDARD": STANDARD,
    "SHAPE_HIGH_MEM": HIGH_MEM,
    "SHAPE_HIGHMEM": HIGH_MEM,
}
_TIERS = {
    0: FREE,
    1: PRO,
    2: PRO_PLUS,
    "SUBSCRIPTION_TIER_NONE": FREE,
    "SUBSCRIPTION_TIER_UNSPECIFIED": FREE,
    "SUBSCRIPTION_TIER_FREE": FREE,
    "SUBSCRIPTION_TIER_PRO": PRO,
    "SUBSCRIPTION_TIER_PRO_PLUS": PRO_PLUS,
}


ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")
# Control, format (bidi overrides, zero-width), surrogate, private, unassigned, line breaks.
_NOT_ONE_LINE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def one_line(text: str, limit: int = 80) -> str:
    """``text`` as one line of visible characters, at most ``limit`` long."""
    kept = "".join(c for c in text if unicodedata.category(c) not in _NOT_ONE_LINE)
    return kept[:limit]


def is_one_line(text: str) -> bool:
    """Whether ``text`` has no control, format or line-break character."""
    return all(unicodedata.category(c) not in _NOT_ONE_LINE for c in text)


def check_endpoint(value: Any) -> str:
    if not isinstance(value, str) or not ENDPOINT.fullmatch(value):
        raise ValueError("expected a runtime id of letters, digits and . _ ~ -")
    return value


def _lookup(table: dict[Any, str], value: Any, *, unknown_prefix: str = "") -> str:
    if isinstance(value, bool):  # bool is an int in Python; it is never a valid enum here
        raise ValueError("expected an enum value, got a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0 from a JSON writer that only knows doubles
    if not isinstance(value, int | str):
        raise ValueError("expected an enum number or name")
    if value in table:
        return table[value]
    text = one_line(str(value))
    return text.removeprefix(unknown_prefix) if unknown_prefix else text


def normalize_variant(value: Any) -> str:
    return _lookup(_VARIANTS, value, unknown_prefix="VARIANT_")


def normalize_shape(value: Any) -> str:
    return _lookup(_SHAPES, value)


def normalize_tier(value: Any) -> str:
    return _lookup(_TIERS, value)


def normalize_accelerator(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an accelerator name")
    model = one_line(value).strip().upper()
    return None if model in ("", "NONE") else model


def parse_ttl(value: Any) -> float:
    """Seconds from ``3600``, ``"3600s"`` or ``"2700.25s"``; odd or non-positive → 3600."""
    if isinstance(value, bool):
        return DEFAULT_TOKEN_TTL
    if isinstance(value, str):
        value = value.strip().removesuffix("s")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_TTL
    return seconds if math.isfinite(seconds) and seconds > 0 else DEFAULT_TOKEN_TTL


_SAFE_INTEGER = 2**53 - 1


def _whole(value: Any) -> Any:
    """A count, a timestamp or a size as a whole number, however Colab wrote it.

    ProtoJSON sends int64 as a string (which must still be a safe integer, as upstream
    requires); a JSON writer may send ``1790000000.5`` or ``2.0``. A fraction is rounded
    rather than failing the whole reply: these figures are shown, never computed with to the
    unit. Anything else (a boolean, a word, NaN) is left for the field's own check to refuse.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return value
        if abs(number) > _SAFE_INTEGER:
            raise ValueError("integer is too large")
        value = number
    if isinstance(value, float) and math.isfinite(value):
        return round(value)
    return value


Variant = Annotated[str, BeforeValidator(normalize_variant)]
Shape = Annotated[str, BeforeValidator(normalize_shape)]
Tier = Annotated[str, BeforeValidator(normalize_tier)]
Accelerator = Annotated[str | None, BeforeValidator(normalize_accelerator)]
AcceleratorList = Annotated[
    list[str], BeforeValidator(lambda v: [m for m in map(normalize_accelerator, v or []) if m])
]
Whole = Annotated[int, BeforeValidator(_whole)]
Endpoint = Annotated[str, BeforeValidator(check_endpoint)]
Label = Annotated[str, AfterValidator(one_line)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class RuntimeProxyInfo(_Wire):
    """How to reach a runtime's Jupyter server: its URL and its short-lived proxy token."""

    url: str
    token: SecretStr
    ttl_seconds: Annotated[float, BeforeValidator(parse_ttl)] = Field(
        validation_alias=AliasChoices("tokenExpiresInSeconds", "tokenTtl", "ttl_seconds")
    )
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def expires_at(self) -> datetime:
        return self.received_at + timedelta(seconds=self.ttl_seconds)

    def expires_within(self, seconds: float) -> bool:
        return expires_within(self.expires_at, seconds)


class Runtime(_Wire):
    """One assigned runtime, from an assign reply or either listing form."""

    endpoint: Endpoint
    variant: Variant
    accelerator: Accelerator = None
    shape: Shape = Field(default=STANDARD, validation_alias=AliasChoices("machineShape", "shape"))
    proxy: RuntimeProxyInfo | None = Field(
        default=None, validation_alias=AliasChoices("runtimeProxyInfo", "proxy")
    )
    notebook_id_hash: str | None = Field(default=None, validation_alias="notebookIdHash")
    runtime_version: Label | None = Field(default=None, validation_alias="runtimeVersionLabel")
    idle_timeout_seconds: Whole | None = Field(default=None, validation_alias="fit")
    # ``runtimes/ID`` where Colab's public API found it (what GetRuntime and DeleteRuntime take).
    public_name: str | None = None

    def with_proxy(self, proxy: RuntimeProxyInfo) -> Runtime:
        return self.model_copy(update={"proxy": proxy})


class AssignedRuntime(Runtime):
    """The assign POST reply (or the GET's "already assigned" form): proxy info is required."""

    proxy: RuntimeProxyInfo = Field(validation_alias=AliasChoices("runtimeProxyInfo", "proxy"))
    shape: Shape = Field(validation_alias=AliasChoices("machineShape", "shape"))
    subscription_tier: Tier | None = Field(default=None, validation_alias="subTier")


class AssignTicket(_Wire):
    """The assign GET reply when nothing is assigned yet: the XSRF token for the POST."""

    acc: str
    nbh: str
    token: str
    variant: str
    p: bool | None = None


class XsrfTicket(_Wire):
    token: str = Field(min_length=1)


class PropagationResult(_Wire):
    """The credentials-propagation POST reply (snake_case on the wire)."""

    success: bool = False
    # Where the user consents in a browser; holds one-time state, so never log it.
    unauthorized_redirect_uri: str | None = None


class AssignmentList(_Wire):
    """Both listings; a missing ``assignments`` key means no runtime."""

    assignments: list[Runtime] = Field(default_factory=list)


class ComputeUnits(BaseModel):
    """Compute-unit balance and burn rate; ``None`` where the backend did not say."""

    model_config = ConfigDict(frozen=True)

    tier: str | None = None  # as Colab named it; None where it did not say
    balance: float | None = None
    rate_per_hour: float | None = None
    assignments: int | None = None
    free_remaining: float | None = None
    free_refill_at: datetime | None = None

    def with_plan(self, tier: str | None) -> ComputeUnits:
        """The same figures with the plan Colab last named (None: leave it as it is)."""
        return self if tier in (None, self.tier) else self.model_copy(update={"tier": tier})

    @property
    def left(self) -> float:
        """The units there are to spend: paid plus free."""
        return (self.balance or 0.0) + (self.free_remaining or 0.0)

    @property
    def hours_left(self) -> float | None:
        """Hours until paid plus free units run out at the current rate, if it burns at all."""
        if not self.rate_per_hour or self.rate_per_hour <= 0:
            return None
        return self.left / self.rate_per_hour


class Eligibility(BaseModel):
    """What this account may and may not assign, per variant (``"GPU"``, ``"TPU"``).

    ``tier`` is the plan Colab named (``subscriptionTier``), or None where the reply named
    none: it is never guessed from the compute-unit balance, since a Pro plan with no units
    left is still Pro and units bought without a plan do not make one.
    """

    model_config = ConfigDict(frozen=True)

    tier: str | None = None
    eligible: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    ineligible: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def with_plan(self, tier: str | None) -> Eligibility:
        """The same eligibility with the plan Colab last named (None: leave it as it is)."""
        return self if tier in (None, self.tier) else self.model_copy(update={"tier": tier})

    def may_have(self, variant: str, accelerator: str | None) -> bool:
        if variant == CPU or accelerator is None:
            return True
        return accelerator in self.eligible.get(variant, ())

    def shapes_for(self, accelerator: str | None) -> tuple[str, ...]:
        """A free plan gets standard machines only; Pro and Pro+ may ask for High-RAM. An
        unnamed plan may ask too: Colab has the last word (a free plan gets a standard one)."""
        if accelerator in HIGH_MEM_ONLY:
            return (HIGH_MEM,)
        return (STANDARD,) if self.tier == FREE else (STANDARD, HIGH_MEM)


class _CcuFreeQuota(_Wire):
    remaining_tokens: Whole | None = Field(default=None, validation_alias="remainingTokens")
    next_refill: Whole | None = Field(default=None, validation_alias="nextRefillTimestampSec")


class CcuInfo(_Wire):
    """``GET /tun/m/ccu-info`` on the colab host (docs/protocol.md §4): no plan in it, whatever
    else a reply may carry."""

    current_balance: float | None = Field(default=None, validation_alias="currentBalance")
    consumption_rate_hourly: float | None = Field(
        default=None, validation_alias="consumptionRateHourly"
    )
    assignments_count: Whole | None = Field(default=None, validation_alias="assignmentsCount")
    eligible_gpus: AcceleratorList = Field(default_factory=list, validation_alias="eligibleGpus")
    ineligible_gpus: AcceleratorList = Field(
        default_factory=list, validation_alias="ineligibleGpus"
    )
    eligible_tpus: AcceleratorList = Field(default_factory=list, validation_alias="eligibleTpus")
    ineligible_tpus: AcceleratorList = Field(
        default_factory=list, validation_alias="ineligibleTpus"
    )
    free_quota: _CcuFreeQuota | None = Field(default=None, validation_alias="freeCcuQuotaInfo")

    def compute_units(self) -> ComputeUnits:
        return _compute_units(
            None,  # ccu-info names no plan (colab-public-api.md §3)
            self.current_balance,
            self.consumption_rate_hourly,
            self.assignments_count,
            self.free_quota,
        )

    def eligibility(self) -> Eligibility:
        # ccu-info names no plan, and the balance says nothing about one (pay-as-you-go units
        # come without a plan): the plan comes from elsewhere (core/plans.py).
        return Eligibility(
            eligible={GPU: tuple(self.eligible_gpus), TPU: tuple(self.eligible_tpus)},
            ineligible={GPU: tuple(self.ineligible_gpus), TPU: tuple(self.ineligible_tpus)},
        )


class _AcceleratorGroup(_Wire):
    variant: Variant
    models: AcceleratorList = Field(default_factory=list)


class UserInfo(_Wire):
    """``GET {gapi}/v1/user-info`` (docs/protocol.md §4)."""

    subscription_tier: Tier = Field(validation_alias="subscriptionTier")
    paid_balance: float | None = Field(default=None, validation_alias="paidComputeUnitsBalance")
    eligible_accelerators: list[_AcceleratorGroup] = Field(validation_alias="eligibleAccelerators")
    ineligible_accelerators: list[_AcceleratorGroup] = Field(
        validation_alias="ineligibleAccelerators"
    )
    consumption_rate_hourly: float | None = Field(
        default=None, validation_alias="consumptionRateHourly"
    )
    assignments_count: Whole | None = Field(default=None, validation_alias="assignmentsCount")
    free_quota: _CcuFreeQuota | None = Field(default=None, validation_alias="freeCcuQuotaInfo")

    def eligibility(self) -> Eligibility:
        def grouped(groups: list[_AcceleratorGroup]) -> dict[str, tuple[str, ...]]:
            result: dict[str, list[str]] = {}
            for group in groups:
                result.setdefault(group.variant, []).extend(group.models)
            return {variant: tuple(models) for variant, models in result.items()}

        return Eligibility(
            tier=self.subscription_tier,
            eligible=grouped(self.eligible_accelerators),
            ineligible=grouped(self.ineligible_accelerators),
        )

    def compute_units(self) -> ComputeUnits:
        return _compute_units(
            self.subscription_tier,
            self.paid_balance,
            self.consumption_rate_hourly,
            self.assignments_count,
            self.free_quota,
        )


class ConsumptionUserInfo(UserInfo):
    """The consumption form (``get_ccu_consumption_info=true``): three more fields required."""

    paid_balance: float = Field(validation_alias="paidComputeUnitsBalance")
    consumption_rate_hourly: float = Field(validation_alias="consumptionRateHourly")
    assignments_count: Whole = Field(validation_alias="assignmentsCount")


def _compute_units(
    tier: str | None,
    balance: float | None,
    rate: float | None,
    assignments: int | None,
    free_quota: _CcuFreeQuota | None,
) -> ComputeUnits:
    remaining = refill = None
    if free_quota is not None:
        if free_quota.remaining_tokens is not None:
            remaining = free_quota.remaining_tokens / 1000  # milli-CCU on the wire
        refill = _moment(free_quota.next_refill)
    return ComputeUnits(
        tier=tier,
        balance=balance,
        rate_per_hour=rate,
        assignments=assignments,
        free_remaining=remaining,
        free_refill_at=refill,
    )


def _moment(seconds: int | None) -> datetime | None:
    """Unix seconds as a time; None for a value no calendar holds (say, milliseconds sent
    as seconds), which would otherwise fail the whole balance."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


class _Filesystem(_Wire):
    label: str = ""
    total_bytes: Whole = Field(default=0, validation_alias="totalBytes")
    used_bytes: Whole = Field(default=0, validation_alias="usedBytes")


class Disk(_Wire):
    filesystem: _Filesystem = Field(default_factory=_Filesystem)


class Memory(_Wire):
    total_bytes: Whole = Field(default=0, validation_alias="totalBytes")
    free_bytes: Whole = Field(default=0, validation_alias="freeBytes")


class Gpu(_Wire):
    name: str = ""
    memory_used_bytes: Whole = Field(default=0, validation_alias="memoryUsedBytes")
    memory_total_bytes: Whole = Field(default=0, validation_alias="memoryTotalBytes")
    gpu_utilization: float = Field(default=0.0, validation_alias="gpuUtilization")
    memory_utilization: float = Field(default=0.0, validation_alias="memoryUtilization")
    ever_used: bool = Field(default=False, validation_alias="everUsed")


class Resources(_Wire):
    """``GET <runtime>/api/colab/resources`` (docs/protocol.md §10): ``disks`` is required."""

    memory: Memory = Field(default_factory=Memory)
    disks: list[Disk]
    gpus: list[Gpu] = Field(default_factory=list)


class Kernel(_Wire):
    """One entry of the runtime's Jupyter ``GET /api/kernels``."""

    id: str
    name: str = ""
    last_activity: datetime | None = None
    execution_state: str = "unknown"
    connections: Whole = 0


class JupyterSession(_Wire):
    """One entry of the runtime's Jupyter ``GET /api/sessions``."""

    id: str
    name: str = ""
    path: str = ""
    type: str = ""
    kernel: Kernel | None = None
