"""What a runtime and a plan are, as colabtray names them, and their words for people.

No imports: the CLI prints a running app's answers (``status``, ``new``) with these, without
loading the models (pydantic) or the core. :mod:`colabtray.colab.models` reads Colab's wire
values into these constants.
"""

from __future__ import annotations

CPU, GPU, TPU = "CPU", "GPU", "TPU"
STANDARD, HIGH_MEM = "standard", "high-mem"
FREE, PRO, PRO_PLUS = "free", "pro", "pro_plus"

# TPU model names as Colab's web UI shows them.
_TPU_LABELS = {"V28": "v2-8", "V5E1": "v5e", "V6E1": "v6e"}
PLAN_UNKNOWN = "Plan unknown: Colab names it when a runtime is assigned."


def tpu_model(typed: str) -> str:
    """Colab's name of a TPU model as a person types it: "v5e", "v5e-1", "V2-8" → "V5E1",
    "V5E1", "V28" (its label as shown, that label with its chip count, or Colab's name)."""
    wanted = typed.strip().upper()
    for model, label in _TPU_LABELS.items():
        if wanted in (label.upper(), f"{label.upper()}-1"):
            return model
    return wanted

_PLAN_NAMES = {FREE: "free (no subscription)", PRO: "Pro", PRO_PLUS: "Pro+"}


def kind_label(variant: str, accelerator: str | None) -> str:
    """What the runtime is, accelerator first: "T4 GPU", "v5e TPU", "CPU"."""
    if variant == CPU or not accelerator:
        return variant if variant != CPU else "CPU"
    model = _TPU_LABELS.get(accelerator, accelerator) if variant == TPU else accelerator
    return f"{model} {variant}"


def shape_label(shape: str) -> str:
    return "High-RAM" if shape == HIGH_MEM else "Standard"


def plan_line(tier: str | None) -> str:
    """The account's Colab plan as Colab named it: what High-RAM depends on, so the person
    sees why it is (not) offered. Never derived from the compute-unit balance."""
    if tier is None:
        return PLAN_UNKNOWN
    return f"Colab plan: {_PLAN_NAMES.get(tier, tier)}"
