"""What the emulated Colab sells: accelerators, machine shapes and subscription tiers.

Numbers are plausible, not Google's price list: burn rates in compute units per hour follow
the published ballpark (CPU 0.07, T4 1.96, ...), GPU memory follows each model's data sheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Variant = Literal["DEFAULT", "GPU", "TPU"]
Tier = Literal["free", "pro", "pro_plus"]

TIERS: tuple[Tier, ...] = ("free", "pro", "pro_plus")
CPU = "NONE"
GIB = 1024**3


@dataclass(frozen=True)
class Accelerator:
    """One accelerator model (``NONE`` is the CPU-only machine)."""

    name: str
    variant: Variant
    burn_rate: float  # compute units per hour
    high_mem_only: bool = False
    gpu_name: str | None = None  # as nvidia-smi would report it
    gpu_memory_bytes: int = 0

    @property
    def endpoint_prefix(self) -> str:
        """Endpoints look like real ones: ``m-s-…``, ``gpu-t4-s-…``, ``tpu-v5e1-s-…``."""
        if self.variant == "DEFAULT":
            return "m-s-"
        return f"{self.variant.lower()}-{self.name.lower()}-s-"


ACCELERATORS: dict[str, Accelerator] = {
    a.name: a
    for a in (
        Accelerator(CPU, "DEFAULT", 0.07),
        Accelerator("T4", "GPU", 1.96, gpu_name="NVIDIA T4", gpu_memory_bytes=15 * GIB),
        Accelerator(
            "L4",
            "GPU",
            4.82,
            high_mem_only=True,
            gpu_name="NVIDIA L4",
            gpu_memory_bytes=22 * GIB + 512 * 1024**2,
        ),
        Accelerator(
            "A100", "GPU", 13.08, gpu_name="NVIDIA A100-SXM4-40GB", gpu_memory_bytes=40 * GIB
        ),
        Accelerator(
            "H100", "GPU", 18.0, gpu_name="NVIDIA H100 80GB HBM3", gpu_memory_bytes=80 * GIB
        ),
        Accelerator("V28", "TPU", 3.58, high_mem_only=True),
        Accelerator("V5E1", "TPU", 3.21, high_mem_only=True),
        Accelerator("V6E1", "TPU", 4.03, high_mem_only=True),
    )
}

# Numeric variants of the colab host (/tun/m/...) and their GAPI spellings.
VARIANT_NUMBER: dict[Variant, int] = {"DEFAULT": 0, "GPU": 1, "TPU": 2}
VARIANT_GAPI: dict[Variant, str] = {
    "DEFAULT": "VARIANT_UNSPECIFIED",
    "GPU": "VARIANT_GPU",
    "TPU": "VARIANT_TPU",
}
SHAPE_GAPI = {0: "SHAPE_DEFAULT", 1: "SHAPE_HIGH_MEM"}


@dataclass(frozen=True)
class TierInfo:
    """What a subscription tier may have."""

    eligible: frozenset[str]  # accelerator names other than NONE (CPU is always eligible)
    max_runtimes: int
    initial_balance: float  # paid compute units
    sub: int  # colab-host subscription state: 1 UNSUBSCRIBED, 2 RECURRING
    sub_tier: int  # colab-host tier: 0 NONE, 1 PRO, 2 PRO_PLUS (VERY_PRO)
    gapi_name: str
    high_mem: bool  # whether shape=hm is honoured


TIER_INFO: dict[Tier, TierInfo] = {
    "free": TierInfo(
        eligible=frozenset({"T4", "V5E1"}),
        max_runtimes=2,
        initial_balance=0.0,
        sub=1,
        sub_tier=0,
        gapi_name="SUBSCRIPTION_TIER_NONE",
        high_mem=False,
    ),
    "pro": TierInfo(
        eligible=frozenset({"T4", "L4", "A100", "V5E1", "V6E1"}),
        max_runtimes=5,
        initial_balance=100.0,
        sub=2,
        sub_tier=1,
        gapi_name="SUBSCRIPTION_TIER_PRO",
        high_mem=True,
    ),
    "pro_plus": TierInfo(
        eligible=frozenset(a for a in ACCELERATORS if a != CPU),
        max_runtimes=8,
        initial_balance=500.0,
        sub=2,
        sub_tier=2,
        gapi_name="SUBSCRIPTION_TIER_PRO_PLUS",
        high_mem=True,
    ),
}

# The free allowance of a free-tier account, in milli compute units (as the wire counts it).
FREE_QUOTA_MILLI = 5960
FREE_REFILL_SECONDS = 24 * 3600

# Runtime versions offered through the experiment flag ``runtime_version_names``.
RUNTIME_VERSIONS = ("2025.07", "2025.10")


def models(tier: Tier, variant: Variant, *, eligible: bool) -> list[str]:
    """Accelerator names of one variant that the tier may (or may not) pick, in catalog order."""
    allowed = TIER_INFO[tier].eligible
    return [
        a.name
        for a in ACCELERATORS.values()
        if a.variant == variant and (a.name in allowed) == eligible
    ]
