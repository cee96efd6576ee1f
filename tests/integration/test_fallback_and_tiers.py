"""Issue 16 as a person meets it on the command line, against the emulator over HTTP: another
accelerator of the plan when the one asked for is not free, and High-RAM by the plan Colab
names (a Pro plan with no units left keeps it; units bought without a plan bring none)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from colabtray.core import offers
from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.emulator import Emulator

PRO_WITHOUT_UNITS = "pat@example.com:pro:0"
FREE_WITH_UNITS = "payg@example.com:free:50"


def _one_line_error(result, sentence: str) -> None:
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == f"colabtray: {sentence}"
    assert "Traceback" not in result.stderr


def test_fallback_stays_within_the_kind_and_reports_in_json(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)
    emulator.admin("POST", "unavailable", {"accelerators": ["V6E1"]})
    result = run_cli(env, "new", "--tpu", "v6e", "--fallback", "--json")
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert (made["kind"], made["requested"], made["not_free"]) == ("v5e TPU", "V6E1", ["V6E1"])
    assert [r["accelerator"] for r in emulator.state()["runtimes"]] == ["V5E1"]

    asked = run_cli(env, "new", "--gpu", "T4", "--fallback")  # free: no fallback needed
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith("Assigned T4 GPU (Standard): gpu-t4-s-")
    assert "not free" not in asked.stdout


def test_when_none_of_the_kind_is_free_it_says_what_it_tried(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)
    emulator.admin("POST", "unavailable", {"accelerators": ["T4", "L4", "A100"]})
    _one_line_error(
        run_cli(env, "new", "--gpu", "A100", "--fallback"),
        "None of this account's GPUs is free on Colab right now (tried A100, T4, L4); "
        "try later or another kind.",
    )
    assert emulator.state()["runtimes"] == []
    cpu = run_cli(env, "new", "--cpu", "--fallback")  # nothing to fall back from
    assert cpu.returncode == 0 and cpu.stdout.startswith("Assigned CPU (Standard): m-s-")


def test_a_plan_with_one_gpu_has_nothing_to_offer_instead(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    emulator = emulator_factory("--account", "free@example.com:free")
    emulator.admin("POST", "unavailable", {"accelerators": ["T4"]})
    _one_line_error(
        run_cli(cli_env(emulator, tmp_path), "new", "--gpu", "T4", "--fallback"),
        "No T4 is free on Colab right now; try another kind or try later.",
    )


def test_a_pro_plan_without_units_gets_high_ram(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    emulator = emulator_factory("--account", PRO_WITHOUT_UNITS, "--idle-timeout", "600")
    env = cli_env(emulator, tmp_path)
    status = json.loads(run_cli(env, "status", "--json").stdout)
    assert status["compute_units"]["tier"] == "pro"
    assert status["compute_units"]["balance"] == 0

    made = run_cli(env, "new", "--gpu", "T4", "--high-mem")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Assigned T4 GPU (High-RAM): gpu-t4-s-")
    assert [r["machine_shape"] for r in emulator.state()["runtimes"]] == [1]


def test_units_bought_without_a_plan_get_no_high_ram(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    emulator = emulator_factory("--account", FREE_WITH_UNITS, "--idle-timeout", "600")
    env = cli_env(emulator, tmp_path)
    status = json.loads(run_cli(env, "status", "--json").stdout)
    assert status["compute_units"]["tier"] == "free"
    assert status["compute_units"]["balance"] == 50

    _one_line_error(run_cli(env, "new", "--cpu", "--high-mem"), offers.HIGH_RAM_NEEDS_PLAN)
    assert emulator.state()["runtimes"] == []
    made = run_cli(env, "new", "--cpu")
    assert made.returncode == 0 and made.stdout.startswith("Assigned CPU (Standard): m-s-")


def test_the_emulator_keeps_plan_and_units_apart(
    emulator_factory: Callable[..., Emulator],
) -> None:
    """What the tests above stand on: paid units are spent first whatever the plan, and the
    free allowance shows only once none are left; ccu-info names no plan, as on Colab."""
    emulator = emulator_factory("--account", FREE_WITH_UNITS, "--account", PRO_WITHOUT_UNITS)
    accounts = {a["email"]: (a["tier"], a["paid_balance"]) for a in emulator.state()["accounts"]}
    assert accounts == {"payg@example.com": ("free", 50.0), "pat@example.com": ("pro", 0.0)}
    reply = emulator.http.get(
        "/tun/m/ccu-info", params={"authuser": "0"}, headers=emulator.auth_headers
    )
    body = json.loads(reply.text.removeprefix(")]}'\n"))
    assert "subscriptionTier" not in body
    assert body["currentBalance"] == 50 and "freeCcuQuotaInfo" not in body
