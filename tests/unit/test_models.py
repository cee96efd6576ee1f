"""The wire models read composed replies of each kind docs/protocol.md describes (the comment by
each test names the section)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from colabtray.colab.models import (
    CPU,
    FREE,
    GPU,
    HIGH_MEM,
    PRO,
    PRO_PLUS,
    STANDARD,
    TPU,
    AssignedRuntime,
    AssignmentList,
    AssignTicket,
    CcuInfo,
    ConsumptionUserInfo,
    Kernel,
    Resources,
    RuntimeProxyInfo,
    UserInfo,
    is_one_line,
    parse_ttl,
)
from colabtray.core.naming import kind_label


def test_user_info_free_tier_upper_cases_models_and_defaults_missing_models():  # §4
    info = UserInfo.model_validate(
        json.loads("""{
          "subscriptionTier": "SUBSCRIPTION_TIER_NONE",
          "eligibleAccelerators": [
            { "variant": "VARIANT_GPU", "models": ["t4"] },
            { "variant": "VARIANT_TPU", "models": ["V5E1"] }
          ],
          "ineligibleAccelerators": [
            { "variant": "VARIANT_GPU", "models": ["L4", "A100", "H100"] },
            { "variant": "VARIANT_TPU" }
          ]}""")
    )
    eligibility = info.eligibility()
    assert eligibility.tier == FREE
    assert info.paid_balance is None
    assert eligibility.eligible == {GPU: ("T4",), TPU: ("V5E1",)}
    assert eligibility.ineligible == {GPU: ("L4", "A100", "H100"), TPU: ()}
    assert eligibility.may_have(GPU, "T4") and not eligibility.may_have(GPU, "A100")
    assert eligibility.shapes_for("T4") == (STANDARD,)


def test_user_info_pro_plus_offers_high_ram_and_high_mem_only_models():  # §4
    info = UserInfo.model_validate(
        {
            "subscriptionTier": "SUBSCRIPTION_TIER_PRO_PLUS",
            "paidComputeUnitsBalance": 412.37,
            "eligibleAccelerators": [
                {"variant": "VARIANT_GPU", "models": ["T4", "L4", "A100", "H100"]},
                {"variant": "VARIANT_TPU", "models": ["V28", "V6E1"]},
            ],
            "ineligibleAccelerators": [],
        }
    )
    eligibility = info.eligibility()
    assert eligibility.tier == PRO_PLUS
    assert info.paid_balance == 412.37
    assert eligibility.shapes_for("T4") == (STANDARD, HIGH_MEM)
    assert eligibility.shapes_for("L4") == (HIGH_MEM,)
    assert eligibility.shapes_for("V28") == (HIGH_MEM,)


def test_consumption_free_user_reads_int64_string_as_milli_ccu():  # §4
    units = ConsumptionUserInfo.model_validate(
        {
            "subscriptionTier": "SUBSCRIPTION_TIER_NONE",
            "paidComputeUnitsBalance": 0,
            "consumptionRateHourly": 1.96,
            "assignmentsCount": 0,
            "eligibleAccelerators": [{"variant": "VARIANT_GPU", "models": ["T4"]}],
            "ineligibleAccelerators": [{"variant": "VARIANT_GPU", "models": ["A100"]}],
            "freeCcuQuotaInfo": {"remainingTokens": "1225", "nextRefillTimestampSec": 1787392800},
        }
    ).compute_units()
    assert units.free_remaining == pytest.approx(1.225)
    assert units.rate_per_hour == 1.96
    assert units.hours_left == pytest.approx(1.225 / 1.96)
    assert units.free_refill_at is not None and units.free_refill_at.year == 2026


def test_consumption_pro_user_without_free_quota():  # §4
    units = ConsumptionUserInfo.model_validate(
        {
            "subscriptionTier": "SUBSCRIPTION_TIER_PRO",
            "paidComputeUnitsBalance": 3.1,
            "consumptionRateHourly": 13.08,
            "assignmentsCount": 2,
            "eligibleAccelerators": [{"variant": "VARIANT_GPU", "models": ["T4", "L4", "A100"]}],
            "ineligibleAccelerators": [{"variant": "VARIANT_GPU", "models": ["H100"]}],
        }
    ).compute_units()
    assert (units.tier, units.balance, units.assignments) == (PRO, 3.1, 2)
    assert units.hours_left == pytest.approx(3.1 / 13.08)


def test_consumption_without_its_required_fields_is_rejected():  # §4
    body = {
        "subscriptionTier": "SUBSCRIPTION_TIER_PRO",
        "eligibleAccelerators": [],
        "ineligibleAccelerators": [],
    }
    with pytest.raises(ValidationError):
        ConsumptionUserInfo.model_validate(body)
    UserInfo.model_validate(body)  # the plain form accepts it


def test_user_info_without_eligible_accelerators_is_rejected():
    with pytest.raises(ValidationError):
        UserInfo.model_validate(
            {"subscriptionTier": "SUBSCRIPTION_TIER_PRO", "ineligibleAccelerators": []}
        )


def test_assign_ticket_and_cpu_assignment():  # §5
    ticket = AssignTicket.model_validate(
        {
            "acc": "NONE",
            "nbh": "9b1d5c7e_2f4a_4c8e_b3d6_7a0e1f2c3d4b........",
            "p": False,
            "token": "AJQx7xEXAMPLEXSRF:1787390000000",
            "variant": "DEFAULT",
        }
    )
    assert ticket.token == "AJQx7xEXAMPLEXSRF:1787390000000"
    runtime = AssignedRuntime.model_validate(
        {
            "accelerator": "NONE",
            "endpoint": "m-s-2w9k4h7q1x3v",
            "fit": 5400,
            "allowedCredentials": True,
            "sub": 1,
            "subTier": 0,
            "outcome": 4,
            "variant": 0,
            "machineShape": 0,
            "runtimeProxyInfo": {
                "token": "rpt-EXAMPLE-CPU-1",
                "tokenExpiresInSeconds": 3600,
                "url": "https://8080-m-s-2w9k4h7q1x3v.us-west1-0.prod.colab.dev",
            },
        }
    )
    assert (runtime.variant, runtime.accelerator, runtime.shape) == (CPU, None, STANDARD)
    assert runtime.idle_timeout_seconds == 5400
    assert runtime.subscription_tier == FREE
    assert runtime.proxy.ttl_seconds == 3600
    assert runtime.proxy.token.get_secret_value() == "rpt-EXAMPLE-CPU-1"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # 3b: T4, standard, no outcome
            '{"accelerator":"T4","endpoint":"m-s-5n8c2r6t0y4u","fit":5400,"sub":1,"subTier":0,'
            '"variant":1,"machineShape":0,"runtimeProxyInfo":{"token":"rpt-EXAMPLE-T4",'
            '"tokenExpiresInSeconds":3600,"url":"https://8080-m-s-5n8c2r6t0y4u.x.prod.colab.dev"}}',
            (GPU, "T4", STANDARD, FREE),
        ),
        (  # 3c: a100 lower-case, High-RAM, Pro
            '{"accelerator":"a100","endpoint":"m-s-7h3j9k1l5z2x","fit":86400,"sub":2,"subTier":1,'
            '"outcome":4,"variant":1,"machineShape":1,"runtimeProxyInfo":{"token":"rpt-A100",'
            '"tokenExpiresInSeconds":3599,"url":"https://8080-m-s-7h3j9k1l5z2x.prod.colab.dev"}}',
            (GPU, "A100", HIGH_MEM, PRO),
        ),
        (  # 3d: variant as a string, optional fields absent
            '{"accelerator":"L4","endpoint":"m-s-0q2w4e6r8t1y","variant":"GPU","machineShape":1,'
            '"runtimeProxyInfo":{"token":"rpt-EXAMPLE-L4","tokenExpiresInSeconds":3600,'
            '"url":"https://8080-m-s-0q2w4e6r8t1y.europe-west4-0.prod.colab.dev"}}',
            (GPU, "L4", HIGH_MEM, None),
        ),
        (  # 3e: TPU, Pro+, outcome 0 is success
            '{"accelerator":"V6E1","endpoint":"m-s-tpu-3k5m7n9p","sub":3,"subTier":2,"outcome":0,'
            '"variant":2,"machineShape":1,"runtimeProxyInfo":{"token":"rpt-EXAMPLE-V6E1",'
            '"tokenExpiresInSeconds":3600,"url":"https://8080-m-s-tpu-3k5m7n9p.prod.colab.dev"}}',
            (TPU, "V6E1", HIGH_MEM, PRO_PLUS),
        ),
        (  # 3f: the GET's "already assigned" form
            '{"accelerator":"T4","endpoint":"m-s-5n8c2r6t0y4u","fit":5400,"sub":1,"subTier":0,'
            '"variant":"GPU","machineShape":0,"runtimeProxyInfo":{"token":"rpt-EXAMPLE-T4-B",'
            '"tokenExpiresInSeconds":2710,"url":"https://8080-m-s-5n8c2r6t0y4u.prod.colab.dev"}}',
            (GPU, "T4", STANDARD, FREE),
        ),
    ],
)
def test_assignment_replies(body: str, expected: tuple[str, str, str, str | None]):
    runtime = AssignedRuntime.model_validate_json(body)
    assert (runtime.variant, runtime.accelerator, runtime.shape, runtime.subscription_tier) == (
        expected
    )


def test_the_already_assigned_form_is_not_a_ticket():  # §5: ticket or assignment
    with pytest.raises(ValidationError):
        AssignTicket.model_validate({"accelerator": "T4", "endpoint": "m-s-x", "variant": "GPU"})


def test_success_outcome_without_required_fields_is_rejected():  # §5, outcome 4
    with pytest.raises(ValidationError):
        AssignedRuntime.model_validate({"outcome": 4})


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        ("1800.5s", 1800.5),
        ("0s", 3600),
        ("PT1H", 3600),
        ("-5s", 3600),
        ("", 3600),
        ("abc", 3600),
        ("2700.25s", 2700.25),
        (3541, 3541),
        (True, 3600),
    ],
)
def test_token_ttl_parsing(ttl: object, seconds: float):  # §8
    assert parse_ttl(ttl) == seconds


def test_proxy_token_refresh_reply():  # §8
    info = RuntimeProxyInfo.model_validate(
        {"token": "rpt-R2", "tokenTtl": "3600s", "url": "https://8080-m-s-7h3j9k1l5z2x.x.dev"}
    )
    assert info.ttl_seconds == 3600
    assert not info.expires_within(3000) and info.expires_within(3700)
    with pytest.raises(ValidationError):  # tokenTtl is required
        RuntimeProxyInfo.model_validate({"token": "t", "url": "https://x"})


def test_gapi_listing_with_every_shape_spelling():  # §6
    listing = AssignmentList.model_validate(
        {
            "assignments": [
                {
                    "endpoint": "m-s-2w9k4h7q1x3v",
                    "accelerator": "NONE",
                    "variant": "VARIANT_UNSPECIFIED",
                    "machineShape": "SHAPE_DEFAULT",
                    "runtimeProxyInfo": {"token": "rpt-2", "tokenTtl": "3541s", "url": "https://a"},
                    "notebookIdHash": "9b1d5c7e_2f4a_4c8e_b3d6_7a0e1f2c3d4b........",
                },
                {
                    "endpoint": "m-s-7h3j9k1l5z2x",
                    "accelerator": "A100",
                    "variant": "VARIANT_GPU",
                    "machineShape": "SHAPE_HIGH_MEM",
                    "runtimeProxyInfo": {"token": "rpt-3", "tokenTtl": "3600s", "url": "https://b"},
                    "runtimeVersionLabel": "2025.10",
                    "notebookIdHash": "Qm9vb3RzdHJhcFdlYk5vdGVib29rSGFzaEV4YW1wbGU=",
                },
                {
                    "endpoint": "m-s-tpu-3k5m7n9p",
                    "accelerator": "V28",
                    "variant": "VARIANT_TPU",
                    "machineShape": "SHAPE_UNSPECIFIED",
                },
            ]
        }
    ).assignments
    cpu, a100, tpu = listing
    assert (cpu.variant, cpu.accelerator, cpu.shape) == (CPU, None, STANDARD)
    assert cpu.proxy is not None and cpu.proxy.ttl_seconds == 3541
    assert (a100.variant, a100.accelerator, a100.shape, a100.runtime_version) == (
        GPU,
        "A100",
        HIGH_MEM,
        "2025.10",
    )
    assert (tpu.variant, tpu.accelerator, tpu.shape, tpu.proxy) == (TPU, "V28", STANDARD, None)
    assert AssignmentList.model_validate({}).assignments == []


def test_colab_host_listing_uses_numbers():  # §6
    (runtime,) = AssignmentList.model_validate(
        {
            "assignments": [
                {
                    "accelerator": "NONE",
                    "endpoint": "m-s-example123",
                    "variant": 0,
                    "machineShape": 0,
                    "runtimeProxyInfo": {
                        "token": "fresh",
                        "tokenExpiresInSeconds": 3600,
                        "url": "https://rt",
                    },
                }
            ]
        }
    ).assignments
    assert (runtime.variant, runtime.shape, runtime.proxy.ttl_seconds) == (CPU, STANDARD, 3600)


def test_unknown_accelerator_variant_and_shape_are_kept_as_text():
    (runtime,) = AssignmentList.model_validate(
        {
            "assignments": [
                {"endpoint": "e1", "accelerator": "b200", "variant": 7, "machineShape": 5},
            ]
        }
    ).assignments
    assert (runtime.accelerator, runtime.variant, runtime.shape) == ("B200", "7", "5")
    (runtime,) = AssignmentList.model_validate(
        {
            "assignments": [
                {
                    "endpoint": "e2",
                    "accelerator": "X9",
                    "variant": "VARIANT_QPU",
                    "machineShape": "SHAPE_GIGANTIC",
                }
            ]
        }
    ).assignments
    assert (runtime.variant, runtime.shape) == ("QPU", "SHAPE_GIGANTIC")


def test_ccu_info_from_the_colab_host():  # §4
    info = CcuInfo.model_validate(
        {
            "currentBalance": 289.81,
            "consumptionRateHourly": 1.54,
            "assignmentsCount": 1,
            "eligibleGpus": ["T4", "l4", "A100"],
            "ineligibleGpus": ["H100"],
            "eligibleTpus": ["V5E1", "V6E1"],
            "ineligibleTpus": [],
            "freeCcuQuotaInfo": {"remainingTokens": "5960", "nextRefillTimestampSec": 1790000000},
        }
    )
    units = info.compute_units()
    assert (units.balance, units.rate_per_hour, units.assignments) == (289.81, 1.54, 1)
    assert units.free_remaining == pytest.approx(5.96)
    eligibility = info.eligibility()
    assert eligibility.eligible[GPU] == ("T4", "L4", "A100")
    assert eligibility.ineligible[GPU] == ("H100",)
    assert eligibility.tier is None  # no plan named: a balance is not a plan
    assert eligibility.shapes_for("T4") == (STANDARD, HIGH_MEM)  # Colab has the last word


def test_ccu_info_rejects_an_unsafe_int64():
    with pytest.raises(ValidationError):
        CcuInfo.model_validate({"freeCcuQuotaInfo": {"remainingTokens": str(2**60)}})


def test_resources_a100_and_sparse_cpu():  # examples 10a and 10b
    a100 = Resources.model_validate(
        {
            "memory": {"totalBytes": 89632174080, "freeBytes": 80100524032},
            "disks": [
                {
                    "filesystem": {
                        "label": "kernel",
                        "totalBytes": 253055008768,
                        "usedBytes": 41557409792,
                    }
                },
                {
                    "filesystem": {
                        "label": "/content/drive",
                        "totalBytes": 16106127360,
                        "usedBytes": 9663676416,
                    }
                },
            ],
            "gpus": [
                {
                    "name": "NVIDIA A100-SXM4-40GB",
                    "memoryUsedBytes": 4294967296,
                    "memoryTotalBytes": 42949672960,
                    "gpuUtilization": 0.62,
                    "memoryUtilization": 0.1,
                    "everUsed": True,
                }
            ],
        }
    )
    assert a100.gpus[0].memory_total_bytes == 42949672960
    assert a100.disks[1].filesystem.label == "/content/drive"
    cpu = Resources.model_validate(
        {
            "memory": {"totalBytes": 13616349184, "freeBytes": 11710132224},
            "disks": [
                {
                    "filesystem": {
                        "label": "kernel",
                        "totalBytes": 120950685696,
                        "usedBytes": 30064771072,
                    }
                },
                {},
            ],
        }
    )
    assert cpu.gpus == [] and cpu.disks[1].filesystem.total_bytes == 0
    with pytest.raises(ValidationError):  # disks is required
        Resources.model_validate({"memory": {}})


def test_kernel_list_entry():  # §10
    kernel = Kernel.model_validate(
        {
            "id": "0c1d2e3f-1111-4a4a-9b9b-abcdefabcdef",
            "name": "python3",
            "last_activity": "2026-08-21T09:41:07.123456Z",
            "execution_state": "idle",
            "connections": 1,
        }
    )
    assert kernel.last_activity is not None and kernel.last_activity.minute == 41
    assert kernel.connections == 1


def test_a_token_never_shows_in_a_repr():
    info = RuntimeProxyInfo.model_validate(
        {"token": "rpt-SECRET-VALUE", "tokenExpiresInSeconds": 10, "url": "https://rt"}
    )
    assert "rpt-SECRET-VALUE" not in repr(info) and "rpt-SECRET-VALUE" not in str(info)


# ---- the plan as Colab names it, never as the balance suggests ------------------------------


def test_a_pro_plan_with_no_units_left_keeps_high_ram():
    body = {
        "subscriptionTier": "SUBSCRIPTION_TIER_PRO",
        "paidComputeUnitsBalance": 0,
        "eligibleAccelerators": [{"variant": "VARIANT_GPU", "models": ["T4", "L4", "A100"]}],
        "ineligibleAccelerators": [],
    }
    info = UserInfo.model_validate(body)
    assert info.eligibility().tier == PRO and info.compute_units().tier == PRO
    assert info.eligibility().shapes_for("T4") == (STANDARD, HIGH_MEM)


def test_units_bought_without_a_plan_bring_no_high_ram():
    body = {
        "subscriptionTier": "SUBSCRIPTION_TIER_NONE",
        "paidComputeUnitsBalance": 50.0,
        "eligibleAccelerators": [{"variant": "VARIANT_GPU", "models": ["T4"]}],
        "ineligibleAccelerators": [],
    }
    assert UserInfo.model_validate(body).eligibility().shapes_for("T4") == (STANDARD,)


def test_ccu_info_never_names_a_plan_whatever_the_reply_or_the_balance():
    """Colab's ccu-info carries no plan (colab-public-api.md §3); a field of that name in a
    reply is not read, so nothing can come to rest on what only an emulator would send."""
    for balance in (0, 289.81):
        for extra in ({}, {"subscriptionTier": "SUBSCRIPTION_TIER_PRO"}):
            info = CcuInfo.model_validate(
                {"currentBalance": balance, "eligibleGpus": ["T4"], **extra}
            )
            assert info.eligibility().tier is None and info.compute_units().tier is None
            assert info.compute_units().balance == balance


def test_a_plan_learned_elsewhere_fills_in_eligibility_and_units():
    info = CcuInfo.model_validate({"currentBalance": 0, "eligibleGpus": ["T4"]})
    assert info.eligibility().with_plan(FREE).shapes_for("T4") == (STANDARD,)
    assert info.eligibility().with_plan(None).tier is None
    assert info.compute_units().with_plan(PRO).tier == PRO


def test_the_assign_reply_names_the_plan_as_subtier():
    reply = {
        "accelerator": "T4",
        "endpoint": "gpu-t4-s-abc",
        "variant": 1,
        "machineShape": 0,
        "runtimeProxyInfo": {"token": "t", "tokenExpiresInSeconds": 3600, "url": "https://rt"},
    }
    for sub_tier, plan in ((0, FREE), (1, PRO), (2, PRO_PLUS)):
        runtime = AssignedRuntime.model_validate({**reply, "subTier": sub_tier})
        assert runtime.subscription_tier == plan
    assert AssignedRuntime.model_validate(reply).subscription_tier is None


# ---- numbers that come with a fraction: read, not fatal -------------------------------------


def test_ccu_info_with_fractional_counts_and_refill_time():
    info = CcuInfo.model_validate_json(
        '{"currentBalance":0,'
        '"consumptionRateHourly":1.96,"assignmentsCount":1.0,"eligibleGpus":["T4"],'
        '"ineligibleGpus":["A100"],"eligibleTpus":[],"ineligibleTpus":[],'
        '"freeCcuQuotaInfo":{"remainingTokens":5960.4,"nextRefillTimestampSec":1790000000.75}}'
    )
    units = info.compute_units()
    assert units.assignments == 1
    assert units.free_remaining == pytest.approx(5.96)
    assert units.free_refill_at is not None and units.free_refill_at.year == 2026
    assert info.eligibility().eligible[GPU] == ("T4",)


def test_consumption_user_info_with_fractions_and_numbers_as_strings():
    units = ConsumptionUserInfo.model_validate(
        {
            "subscriptionTier": "SUBSCRIPTION_TIER_PRO",
            "paidComputeUnitsBalance": "3.25",
            "consumptionRateHourly": 2,
            "assignmentsCount": 1.5,
            "eligibleAccelerators": [],
            "ineligibleAccelerators": [],
            "freeCcuQuotaInfo": {
                "remainingTokens": "1225.0",
                "nextRefillTimestampSec": "1787392800.5",
            },
        }
    ).compute_units()
    assert (units.tier, units.balance, units.rate_per_hour) == (PRO, 3.25, 2.0)
    assert units.assignments == 2
    assert units.free_remaining == pytest.approx(1.225)
    assert units.free_refill_at is not None and units.free_refill_at.year == 2026


def test_a_refill_time_no_calendar_holds_reads_as_unknown():
    units = CcuInfo.model_validate(
        {
            "currentBalance": 0,
            "freeCcuQuotaInfo": {"remainingTokens": "10", "nextRefillTimestampSec": 1.79e17},
        }
    ).compute_units()
    assert units.free_refill_at is None and units.free_remaining == pytest.approx(0.01)


def test_assign_reply_and_listing_with_doubles_for_whole_numbers():
    runtime = AssignedRuntime.model_validate(
        {
            "accelerator": "T4",
            "endpoint": "gpu-t4-s-x",
            "fit": 5400.5,
            "subTier": 1.0,
            "variant": 1.0,
            "machineShape": 1.0,
            "runtimeProxyInfo": {"token": "t", "tokenExpiresInSeconds": 3599.5, "url": "u"},
        }
    )
    assert (runtime.variant, runtime.shape, runtime.subscription_tier) == (GPU, HIGH_MEM, PRO)
    assert runtime.idle_timeout_seconds == 5400 and runtime.proxy.ttl_seconds == 3599.5


def test_resources_and_kernels_with_fractional_figures():
    resources = Resources.model_validate(
        {
            "memory": {"totalBytes": 13616349184.0, "freeBytes": 11710132224.5},
            "disks": [{"filesystem": {"label": "kernel", "totalBytes": 1.2e11, "usedBytes": 3e10}}],
            "gpus": [{"memoryUsedBytes": 0.0, "memoryTotalBytes": 1.6e10}],
        }
    )
    assert resources.memory.total_bytes == 13616349184
    assert resources.disks[0].filesystem.total_bytes == 120_000_000_000
    assert resources.gpus[0].memory_total_bytes == 16_000_000_000
    assert Kernel.model_validate({"id": "k", "connections": 1.0}).connections == 1


def test_what_is_no_number_at_all_is_still_refused():
    with pytest.raises(ValidationError):
        CcuInfo.model_validate({"assignmentsCount": "several"})
    with pytest.raises(ValidationError):
        CcuInfo.model_validate({"freeCcuQuotaInfo": {"remainingTokens": "9" * 20 + ".5"}})


# ---- the backend's text, wherever it goes next ----------------------------------------------
# Endpoints go into URL paths, file names and ssh's config; accelerators and versions into
# names shown in menus, terminals and config comments. Whatever the backend sends, a listing
# either is refused as malformed or holds only text safe there.


@settings(max_examples=500)
@given(endpoint=st.text())
def test_an_endpoint_is_an_id_or_the_reply_is_malformed(endpoint: str) -> None:
    body = {"assignments": [{"endpoint": endpoint, "variant": 1, "accelerator": "T4"}]}
    try:
        (runtime,) = AssignmentList.model_validate(body).assignments
    except ValidationError:
        return
    got = runtime.endpoint
    assert quote(got, safe="") == got  # one URL path segment, nothing escaped
    assert got not in (".", "..") and not got.startswith(("-", "."))  # a file name, not a flag
    assert is_one_line(got) and got.isascii()


@example(accelerator="T4\nProxyCommand sh -c evil", version="2025.07\r\x1b]0;pwned\x07")
@example(accelerator="\u202ev5e", version="\u2028")
@settings(max_examples=500)
@given(accelerator=st.text(), version=st.text())
def test_free_text_never_breaks_a_listing_and_stays_one_line(accelerator: str, version: str):
    body = {
        "assignments": [
            {
                "endpoint": "m-s-abc123",
                "variant": 1,
                "accelerator": accelerator,
                "runtimeVersionLabel": version,
            }
        ]
    }
    (runtime,) = AssignmentList.model_validate(body).assignments
    assert runtime.accelerator is None or is_one_line(runtime.accelerator)
    assert runtime.runtime_version is not None and is_one_line(runtime.runtime_version)
    assert is_one_line(kind_label(runtime.variant, runtime.accelerator))
