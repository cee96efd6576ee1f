"""What a new runtime may be for this account, why the rest is greyed out, and what to try
when the chosen accelerator is not free.

Built from the backend's eligibility (docs/protocol.md §4): CPU always; each eligible GPU and TPU
model; ineligible ones listed too, but unavailable with the reason. High-RAM is offered where
the plan Colab named allows it (never guessed from the balance), and is the only shape of the
high-memory-only models. When assigning answers "none free" (503), the alternatives are the
plan's other models of the same kind, in the plan's order (docs/protocol.md §4).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from colabtray.colab import errors, kinds
from colabtray.colab.models import (
    CPU,
    FREE,
    GPU,
    HIGH_MEM,
    STANDARD,
    TPU,
    Eligibility,
    Runtime,
    chooses_high_mem,
)
from colabtray.core.naming import kind_label

log = logging.getLogger(__name__)

NOT_ON_PLAN = "Not available on this account's Colab plan."
NOT_ON_PLAN_SHORT = "not on your plan"
HIGH_RAM_NEEDS_PLAN = "High-RAM machines need a Colab Pro or Pro+ plan."
PLAN_UNKNOWN = (
    f"{kinds.PLAN_UNKNOWN} High-RAM needs Pro or Pro+, and Colab gives a standard machine "
    "otherwise."
)
HIGH_RAM_ONLY = "This accelerator runs on High-RAM machines only."
TPU_NO_SHAPE = "TPU machines come with the memory they have; there is no High-RAM choice."


@dataclass(frozen=True)
class Offer:
    variant: str
    accelerator: str | None
    available: bool
    reason: str | None = None  # why it is not available: a sentence…
    short_reason: str | None = None  # …and a few words to show beside the choice
    shapes: tuple[str, ...] = (STANDARD,)

    @property
    def label(self) -> str:
        return kind_label(self.variant, self.accelerator)

    @property
    def high_ram_choice(self) -> bool:
        """The user may pick between standard and High-RAM."""
        return self.available and set(self.shapes) == {STANDARD, HIGH_MEM}

    @property
    def high_ram_forced(self) -> bool:
        return self.shapes == (HIGH_MEM,)

    def high_ram_note(self, tier: str | None) -> str | None:
        """Why the High-RAM box is fixed for this choice (or, for a plan Colab did not name,
        what choosing it means); None if there is nothing to say."""
        if self.high_ram_choice:
            return PLAN_UNKNOWN if tier is None else None
        if self.high_ram_forced:
            return HIGH_RAM_ONLY
        if self.variant == TPU:
            return TPU_NO_SHAPE
        return HIGH_RAM_NEEDS_PLAN if tier == FREE else None


def offers(eligibility: Eligibility) -> list[Offer]:
    """CPU, then GPUs, then TPUs; eligible before ineligible in the backend's order."""
    result = [Offer(CPU, None, True, shapes=eligibility.shapes_for(None))]
    for variant in (GPU, TPU):
        for model in eligibility.eligible.get(variant, ()):
            shapes = eligibility.shapes_for(model)
            if not chooses_high_mem(variant, model, True) and shapes != (HIGH_MEM,):
                shapes = (STANDARD,)  # no choice is sent for it: it comes as it is
            result.append(Offer(variant, model, True, shapes=shapes))
        for model in eligibility.ineligible.get(variant, ()):
            if model not in eligibility.eligible.get(variant, ()):
                result.append(Offer(variant, model, False, NOT_ON_PLAN, NOT_ON_PLAN_SHORT))
    return result


def refusal(
    eligibility: Eligibility, variant: str, accelerator: str | None, *, high_mem: bool
) -> str | None:
    """Why this account may not have that runtime (a sentence), or None if it may."""
    if not eligibility.may_have(variant, accelerator):
        offered = ", ".join(eligibility.eligible.get(variant, ())) or "none"
        wanted = kind_label(variant, accelerator)
        return (
            f"This account may not have a {wanted} runtime "
            f"({variant} models it may have: {offered})."
        )
    if high_mem and HIGH_MEM not in eligibility.shapes_for(accelerator):
        return HIGH_RAM_NEEDS_PLAN
    return None


def alternatives(
    eligibility: Eligibility,
    variant: str,
    accelerator: str | None,
    *,
    exclude: Iterable[str] = (),
) -> tuple[str, ...]:
    """What to try when ``accelerator`` is not free: the plan's other models of the same kind
    (GPU or TPU), in the order Colab lists them, as Google's own extension falls back; none
    for CPU. ``exclude`` holds models found not free a moment ago."""
    if variant == CPU or not accelerator:
        return ()
    skip = {accelerator.upper(), *(model.upper() for model in exclude)}
    found: list[str] = []
    for model in eligibility.eligible.get(variant, ()):
        if model not in skip and model not in found:
            found.append(model)
    return tuple(found)


@dataclass(frozen=True)
class Assigned:
    """A runtime the core assigned, and the accelerators that were not free before it (in
    the order tried; empty when the one asked for was free)."""

    name: str
    runtime: Runtime
    requested: str | None
    not_free: tuple[str, ...] = ()


def next_to_try(
    eligibility: Eligibility,
    variant: str,
    requested: str | None,
    tried: list[str],
    not_free: Collection[str],
    *,
    fallback: bool,
) -> str:
    """The model to ask for after ``tried[-1]`` was not free; else the error to show: the
    alternatives left (without ``fallback``), or, with none left, all that failed.
    ``not_free``: models found not free a moment ago, not tried again."""
    earlier = [m.upper() for m in not_free if m.upper() not in tried]
    left = alternatives(eligibility, variant, requested, exclude=[*earlier, *tried])
    if not left and len(earlier) + len(tried) > 1:
        raise errors.NoneFreeError(variant, [*earlier, *tried])
    if not left or not fallback:
        raise errors.AcceleratorUnavailableError(tried[-1], left)
    log.info("%s was not free; trying %s", tried[-1], left[0])
    return left[0]
