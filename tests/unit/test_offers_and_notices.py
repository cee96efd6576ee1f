"""The new-runtime choices per plan, and which events become notifications."""

from __future__ import annotations

from colabtray.colab import errors
from colabtray.colab.models import (
    CPU,
    FREE,
    GPU,
    HIGH_MEM,
    PRO,
    PRO_PLUS,
    STANDARD,
    TPU,
    ComputeUnits,
    Eligibility,
    Runtime,
)
from colabtray.core import offers as o
from colabtray.core.display import plan_line
from colabtray.core.notices import LowUnits, notice_for
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


# ---- when the chosen accelerator is not free ------------------------------------------------


def test_alternatives_are_the_plan_s_others_of_the_same_kind_in_its_order() -> None:
    assert o.alternatives(PRO_PLAN, GPU, "A100") == ("T4", "L4")
    assert o.alternatives(PRO_PLAN, GPU, "t4") == ("L4", "A100")
    assert o.alternatives(PRO_PLAN, GPU, "A100", exclude=["t4"]) == ("L4",)
    assert o.alternatives(PRO_PLAN, TPU, "V6E1") == ("V5E1",)
    assert o.alternatives(PRO_PLAN, CPU, None) == ()
    assert o.alternatives(FREE_PLAN, GPU, "T4") == ()  # the plan has no other GPU


def test_the_unavailable_sentence_names_the_alternatives() -> None:
    plain = errors.AcceleratorUnavailableError("A100")
    assert plain.message == "No A100 is free on Colab right now; try another kind or try later."
    named = errors.AcceleratorUnavailableError("A100", ("L4", "T4"))
    assert named.message == (
        "No A100 is free on Colab right now; this account may also have: L4, T4."
    )
    assert named.plain == plain.message
    assert named.with_hint("try --fallback").message == (
        "No A100 is free on Colab right now; this account may also have: L4, T4 (try --fallback)."
    )
    every = errors.NoneFreeError(GPU, ["A100", "T4", "L4"])
    assert every.message == (
        "None of this account's GPUs is free on Colab right now (tried A100, T4, L4); "
        "try later or another kind."
    )


# ---- the plan Colab named, or none ----------------------------------------------------------


def test_high_ram_follows_the_plan_not_the_balance() -> None:
    assert o.refusal(FREE_PLAN, CPU, None, high_mem=True) == o.HIGH_RAM_NEEDS_PLAN
    assert o.refusal(PRO_PLAN, CPU, None, high_mem=True) is None
    assert o.refusal(FREE_PLAN, GPU, "T4", high_mem=False) is None


def test_an_unnamed_plan_may_ask_for_high_ram_and_is_told_what_that_means() -> None:
    unnamed = Eligibility(tier=None, eligible={GPU: ("T4",)})
    t4 = _by_label(unnamed)["T4 GPU"]
    assert t4.high_ram_choice and t4.high_ram_note(None) == o.PLAN_UNKNOWN
    assert o.refusal(unnamed, GPU, "T4", high_mem=True) is None  # Colab has the last word


def test_plan_line() -> None:
    assert plan_line(PRO) == "Colab plan: Pro"
    assert plan_line(PRO_PLUS) == "Colab plan: Pro+"
    assert plan_line(FREE) == "Colab plan: free (no subscription)"
    assert plan_line(None) == "Plan unknown: Colab names it when a runtime is assigned."


# ---- compute units running low: one notice per episode -------------------------------------


def _units(balance: float | None, rate: float = 1.96, free: float | None = None) -> ComputeUnits:
    return ComputeUnits(balance=balance, rate_per_hour=rate, free_remaining=free)


def test_low_units_notify_once_per_episode() -> None:
    watch = LowUnits()
    polls = [
        _units(100.0),
        _units(0.8),  # falls below an hour's burn: told
        _units(0.7),
        _units(0.6),  # still the same episode
        _units(50.0),  # recovered
        _units(0.5),  # fell again: told again
        _units(0.5, rate=0.0),  # nothing burns any more: the episode ends
        _units(0.5),  # a runtime burns again with the balance still low: told
        None,  # another account: nothing known
        _units(0.5),  # its own episode
    ]
    told = [watch.notice(units) is not None for units in polls]
    assert told == [False, True, False, False, False, True, False, True, False, True]


def test_low_units_notice_says_what_is_left_and_what_to_do() -> None:
    low = LowUnits().notice(_units(0.8))
    assert low is not None
    assert low.title == "Compute units running low"
    assert low.body.startswith(
        "0.80 compute units left; your runtimes use 1.96 an hour, so they last about 24 min."
    )
    assert "Disconnect the runtimes you do not need" in low.body
    gone = LowUnits().notice(_units(0.0, rate=0.07, free=0.0))
    assert gone is not None and gone.title == "No compute units left"
    assert "use 0.07 compute units an hour and none are left" in gone.body
    for notice in (low, gone):  # issue 23 (6): a button to Colab's page to buy or upgrade
        assert notice.action is not None and notice.action.label == "Buy units or change plan"
        assert notice.action.url == "https://colab.research.google.com/signup"


def test_a_free_allowance_that_lasts_is_not_low() -> None:
    assert LowUnits().notice(_units(0.0, rate=0.07, free=5.96)) is None


def test_colab_refusing_an_accelerator_is_said_as_colab_means_it() -> None:
    """Issue 23 (6): Colab's 400 to an assign with an accelerator means this account may not
    have it (no quota, no plan), not a malformed request."""
    assert str(errors.AcceleratorRefusedError("GPU", "T4")) == (
        "Colab refused a T4 GPU for this account: it may lack the quota or the plan for it."
    )
    assert str(errors.AcceleratorRefusedError("GPU", "A100")).startswith(
        "Colab refused an A100 GPU for this account"
    )
