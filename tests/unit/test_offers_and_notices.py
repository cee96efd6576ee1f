"""The new-runtime choices per plan, and which events become notifications."""

from __future__ import annotations

from colabtray.colab.models import FREE, GPU, HIGH_MEM, PRO, STANDARD, TPU, Eligibility, Runtime
from colabtray.core import offers as o
from colabtray.core.notices import notice_for
from colabtray.core.registry import (
    BackendBack,
    BackendLost,
    RuntimeAdded,
    RuntimeRemoved,
    SignInNeeded,
    StateChanged,
)

FREE_PLAN = Eligibility(
    tier=FREE,
    eligible={GPU: ("T4",), TPU: ("V5E1",)},
    ineligible={GPU: ("L4", "A100", "H100"), TPU: ("V28", "V6E1")},
)
PRO_PLAN = Eligibility(
    tier=PRO,
    eligible={GPU: ("T4", "L4", "A100"), TPU: ("V5E1", "V6E1")},
    ineligible={GPU: ("H100",), TPU: ("V28",)},
)


def _by_label(eligibility: Eligibility) -> dict[str, o.Offer]:
    return {offer.label: offer for offer in o.offers(eligibility)}


def test_free_plan_offers_cpu_t4_and_v5e_and_greys_out_the_rest() -> None:
    offers = o.offers(FREE_PLAN)
    assert [(x.label, x.available) for x in offers] == [
        ("CPU", True),
        ("T4 GPU", True),
        ("L4 GPU", False),
        ("A100 GPU", False),
        ("H100 GPU", False),
        ("v5e TPU", True),
        ("v2-8 TPU", False),
        ("v6e TPU", False),
    ]
    h100 = _by_label(FREE_PLAN)["H100 GPU"]
    assert h100.reason == o.NOT_ON_PLAN
    assert h100.short_reason == "not on your plan"


def test_high_ram_rules() -> None:
    free = _by_label(FREE_PLAN)
    assert not free["T4 GPU"].high_ram_choice
    assert free["T4 GPU"].high_ram_note(FREE) == o.HIGH_RAM_NEEDS_PLAN
    assert free["v5e TPU"].high_ram_forced  # high-mem-only model
    assert free["v5e TPU"].high_ram_note(FREE) == o.HIGH_RAM_ONLY

    pro = _by_label(PRO_PLAN)
    assert pro["T4 GPU"].high_ram_choice and pro["T4 GPU"].high_ram_note(PRO) is None
    assert pro["A100 GPU"].shapes == (STANDARD, HIGH_MEM)
    assert pro["L4 GPU"].shapes == (HIGH_MEM,) and not pro["L4 GPU"].high_ram_choice
    assert pro["CPU"].high_ram_choice


def test_an_unknown_tpu_has_no_high_ram_choice() -> None:
    plan = Eligibility(tier=PRO, eligible={TPU: ("V7X",)})
    tpu = _by_label(plan)["V7X TPU"]
    assert tpu.shapes == (STANDARD,) and tpu.high_ram_note(PRO) == o.TPU_NO_SHAPE


def test_notices() -> None:
    t4 = Runtime.model_validate({"endpoint": "gpu-1", "variant": "GPU", "accelerator": "T4"})
    mine = notice_for(RuntimeAdded(t4, "T4 GPU", by_user=True))
    assert mine is not None and mine.title == "T4 GPU is ready"
    elsewhere = notice_for(RuntimeAdded(t4, "T4 GPU", by_user=False))
    assert elsewhere is not None and "elsewhere" in elsewhere.body
    reclaimed = notice_for(RuntimeRemoved("gpu-1", "T4 GPU", by_user=False))
    assert reclaimed is not None and reclaimed.title == "T4 GPU was disconnected"
    assert notice_for(RuntimeRemoved("gpu-1", "T4 GPU", by_user=True)) is None
    expired = notice_for(SignInNeeded("ada@example.com needs to sign in again."))
    assert expired is not None and expired.body == "ada@example.com needs to sign in again."
    lost = notice_for(BackendLost("Colab could not be reached (HTTP 503)."))
    assert lost is not None and lost.title == "Colab is unreachable"
    untrusted = notice_for(BackendLost("Colab's TLS certificate … is not trusted.", untrusted=True))
    assert untrusted is not None and untrusted.title == "Colab's certificate is not trusted"
    assert "keeps trying" not in untrusted.body  # waiting will not mend it
    back = notice_for(BackendBack())
    assert back is not None and back.title == "Colab is reachable again"
    assert notice_for(StateChanged()) is None
