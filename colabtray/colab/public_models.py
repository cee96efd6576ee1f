"""Colab's public API (v1beta) replies, read into the models the rest of colabtray uses.

The public API speaks proto-JSON (docs: colab-public-api.md §1): enum names, RFC 3339
times, ``runtimes/{id}`` names. A runtime read here is the same :class:`Runtime` a
``/tun/m`` listing gives, plus its public name (what GetRuntime and DeleteRuntime take),
so the registry, the bridge and the tools never know which API found it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr

from colabtray.colab.models import (
    CPU,
    STANDARD,
    Accelerator,
    Eligibility,
    Endpoint,
    Label,
    Runtime,
    RuntimeProxyInfo,
    Shape,
    Tier,
    Variant,
    _Wire,
)

_RUNTIME_NAME = re.compile(r"runtimes/[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")
_OPERATION_NAME = re.compile(r"operations/[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")


def _name(pattern: re.Pattern[str], kind: str) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"expected {kind}")
        return value

    return BeforeValidator(check)


RuntimeName = Annotated[str, _name(_RUNTIME_NAME, "runtimes/ID")]
OperationName = Annotated[str, _name(_OPERATION_NAME, "operations/ID")]


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 time")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Key(_Wire):
    """A runtime spec's key: variant, accelerator (``NONE`` for CPU) and shape."""

    variant: Variant
    accelerator: Accelerator = None
    shape: Shape = STANDARD


class ConnectionInfo(_Wire):
    url: str = Field(min_length=1)
    token: str = Field(min_length=1)
    expire_time: Annotated[datetime, BeforeValidator(_time)] = Field(validation_alias="expireTime")
    endpoint: Endpoint


class PublicRuntime(_Wire):
    """One ``Runtime`` of the public API."""

    name: RuntimeName
    spec: Key = Field(validation_alias="runtimeSpec")
    version: Label | None = None
    connection: ConnectionInfo = Field(validation_alias="connectionInfo")

    def runtime(self) -> Runtime:
        """The same runtime as colabtray knows it from ``/tun/m``."""
        left = (self.connection.expire_time - datetime.now(UTC)).total_seconds()
        proxy = RuntimeProxyInfo(
            url=self.connection.url,
            token=SecretStr(self.connection.token),
            ttl_seconds=max(1.0, left),
        )
        return Runtime(
            endpoint=self.connection.endpoint,
            variant=self.spec.variant,
            accelerator=self.spec.accelerator,
            shape=self.spec.shape,
            proxy=proxy,
            runtime_version=self.version,
            public_name=self.name,
        )


class RuntimeList(_Wire):
    """ListRuntimes. Like Google's extension, entries without a name or connection are
    dropped (a runtime still being made has none yet); any other odd entry is malformed."""

    runtimes: list[PublicRuntime] = Field(default_factory=list)

    @classmethod
    def read(cls, body: Any) -> Any:
        if isinstance(body, dict) and isinstance(body.get("runtimes"), list):
            body = {
                **body,
                "runtimes": [
                    entry
                    for entry in body["runtimes"]
                    if not isinstance(entry, dict)
                    or (entry.get("name") and entry.get("connectionInfo"))
                ],
            }
        return body


class RuntimeSpec(_Wire):
    key: Key
    eligible: bool = False


class RuntimeSpecs(_Wire):
    """ListRuntimeSpecs: what this user may create, the plan already applied."""

    specs: list[RuntimeSpec] = Field(default_factory=list, validation_alias="runtimeSpecs")

    def eligibility(self, tier: str | None) -> Eligibility:
        eligible: dict[str, list[str]] = {}
        ineligible: dict[str, list[str]] = {}
        for spec in self.specs:
            name = spec.key.accelerator
            if spec.key.variant == CPU or name is None:
                continue
            table = eligible if spec.eligible else ineligible
            if name not in table.setdefault(spec.key.variant, []):
                table[spec.key.variant].append(name)
        for variant, names in eligible.items():
            ineligible[variant] = [n for n in ineligible.get(variant, []) if n not in names]
        return Eligibility(
            tier=tier,
            eligible={v: tuple(n) for v, n in eligible.items()},
            ineligible={v: tuple(n) for v, n in ineligible.items()},
        )


class Subscription(_Wire):
    tier: Tier


class ErrorInfo(_Wire):
    reason: str = ""


class Status(_Wire):
    """A ``google.rpc.Status``: the error of an operation or of a call."""

    code: int = 0
    message: Label = ""
    details: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def reason(self) -> str | None:
        for detail in self.details:
            if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo"):
                reason = detail.get("reason")
                return reason if isinstance(reason, str) else None
        return None


class Operation(_Wire):
    """A long-running CreateRuntime."""

    name: OperationName
    done: bool = False
    error: Status | None = None
    response: PublicRuntime | None = None
