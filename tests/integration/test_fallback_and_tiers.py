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


def _plan(env: dict[str, str]) -> str | None:
    status = run_cli(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)["compute_units"]["tier"]  # type: ignore[no-any-return]


def test_a_pro_plan_without_units_gets_high_ram(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    emulator = emulator_factory("--account", PRO_WITHOUT_UNITS, "--idle-timeout", "600")
    env = cli_env(emulator, tmp_path)
    status = json.loads(run_cli(env, "status", "--json").stdout)
    assert status["compute_units"]["tier"] is None  # ccu-info names no plan
    assert status["compute_units"]["balance"] == 0

    made = run_cli(env, "new", "--gpu", "T4", "--high-mem")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Assigned T4 GPU (High-RAM): gpu-t4-s-")
    assert [r["machine_shape"] for r in emulator.state()["runtimes"]] == [1]
    assert _plan(env) == "pro"  # the assign reply named it


def test_the_plan_is_learned_from_an_assign_and_kept_for_the_account(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    """Issue 23 (4), with default settings: a free account and a Pro one look alike until
    Colab names the plan; the first assign's subTier does, and every later run (each CLI
    call is one) knows it, so High-RAM is refused to the free account before asking Colab."""
    emulator = emulator_factory("--account", FREE_WITH_UNITS, "--idle-timeout", "600")
    env = cli_env(emulator, tmp_path)
    status = run_cli(env, "status")
    assert "Plan unknown: Colab names it when a runtime is assigned." in status.stdout, (
        status.stdout
    )
    assert _plan(env) is None

    made = run_cli(env, "new", "--cpu")
    assert made.returncode == 0 and made.stdout.startswith("Assigned CPU (Standard): m-s-")
    assert _plan(env) == "free"
    assert "Colab plan: free (no subscription)" in run_cli(env, "status").stdout

    _one_line_error(run_cli(env, "new", "--cpu", "--high-mem"), offers.HIGH_RAM_NEEDS_PLAN)
    assert len(emulator.state()["runtimes"]) == 1, "Colab was asked anyway"
    accounts = json.loads((tmp_path / "config" / "accounts.json").read_text())
    assert accounts["plans"] == {"payg@example.com": "free"}
    assert emulator.access_token not in json.dumps(accounts)


def test_gapi_user_info_names_the_plan_at_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    """Where the token may read GAPI user-info (account_api = gapi asks for the colaboratory
    scope), the plan is known before any runtime is made."""
    emulator = emulator_factory("--account", FREE_WITH_UNITS)
    env = {**cli_env(emulator, tmp_path), "COLABTRAY_ACCOUNT_API": "gapi"}
    assert _plan(env) == "free"
    _one_line_error(run_cli(env, "new", "--cpu", "--high-mem"), offers.HIGH_RAM_NEEDS_PLAN)
    assert emulator.state()["runtimes"] == []


def test_units_bought_without_a_plan_get_no_high_ram(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
):
    """Until Colab names the plan, Colab has the last word: a free plan with units asking for
    High-RAM gets a standard machine, and from then on colabtray knows and says so itself."""
    emulator = emulator_factory("--account", FREE_WITH_UNITS, "--idle-timeout", "600")
    env = cli_env(emulator, tmp_path)
    status = json.loads(run_cli(env, "status", "--json").stdout)
    assert status["compute_units"]["tier"] is None
    assert status["compute_units"]["balance"] == 50

    made = run_cli(env, "new", "--cpu", "--high-mem")
    assert made.returncode == 0 and made.stdout.startswith("Assigned CPU (Standard): m-s-")
    _one_line_error(run_cli(env, "new", "--cpu", "--high-mem"), offers.HIGH_RAM_NEEDS_PLAN)


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
