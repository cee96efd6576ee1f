"""The command line as a script uses it: real processes against the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.colab import cli_env, headless_app, run_cli
from tests.fixtures.emulator import Emulator
from tests.fixtures.waiting import wait_for


def test_new_status_remove_round_trip(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)

    made = run_cli(env, "new", "--gpu", "t4", "--json")
    assert made.returncode == 0, made.stderr
    t4 = json.loads(made.stdout)
    assert (t4["name"], t4["variant"], t4["accelerator"], t4["shape"]) == (
        "T4 GPU",
        "GPU",
        "T4",
        "standard",
    )
    assert run_cli(env, "new", "--tpu", "v5e").returncode == 0
    assert run_cli(env, "new", "--gpu", "T4", "--high-mem").returncode == 0

    status = run_cli(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["account"] == {"email": "ada@example.com"}
    by_name = {r["name"]: r for r in data["runtimes"]}
    assert set(by_name) == {"T4 GPU", "T4 GPU (1)", "v5e TPU"}
    assert by_name["T4 GPU (1)"]["shape"] == "high-mem"
    assert by_name["v5e TPU"]["variant"] == "TPU" and by_name["v5e TPU"]["accelerator"] == "V5E1"
    assert all(r["url"] is None for r in data["runtimes"])
    assert data["compute_units"]["rate_per_hour"] > 0

    text = run_cli(env, "status")
    assert "Signed in as ada@example.com" in text.stdout and "v5e TPU, High-RAM" in text.stdout
    line = data["compute_units"]["line"]  # the tray menu's words, said alike by the CLI
    assert line.startswith("Compute units: ") and "/h · about " in line, line
    assert text.stdout.splitlines()[-1].startswith("Compute units: "), text.stdout

    assert run_cli(env, "remove", "t4 gpu").returncode == 0  # by name, any case
    assert run_cli(env, "remove", by_name["v5e TPU"]["endpoint"]).returncode == 0  # by endpoint
    left = json.loads(run_cli(env, "status", "--json").stdout)["runtimes"]
    assert [r["name"] for r in left] == ["T4 GPU (1)"]
    assert {r["endpoint"] for r in emulator.state()["runtimes"]} == {left[0]["endpoint"]}


def test_errors_are_one_sentence_and_a_nonzero_exit(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)
    cases = [
        (("new", "--gpu", "H100"), "may not have a H100 GPU runtime"),
        (("remove", "nothing-like-this"), "No runtime named 'nothing-like-this'"),
    ]
    emulator.admin("POST", "unavailable", {"accelerators": ["A100"]})
    cases.append((("new", "--gpu", "A100"), "No A100 is free on Colab right now"))
    for args, sentence in cases:
        result = run_cli(env, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert sentence in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    emulator.admin("POST", "faults", {"fault_rate": 1.0})
    env["COLABTRAY_RETRY_ATTEMPTS"] = "2"
    down = run_cli(env, "status")
    assert down.returncode == 1 and "could not be reached" in down.stderr
    assert "Traceback" not in down.stderr


def test_without_a_sign_in_it_says_how_to_sign_in(emulator: Emulator, tmp_path: Path):
    result = run_cli(cli_env(emulator, tmp_path, with_token=False), "status")
    assert result.returncode == 1 and "colabtray signin" in result.stderr


def test_a_bad_token_says_sign_in_again(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)
    env["COLABTRAY_ACCESS_TOKEN"] = "revoked-token"
    result = run_cli(env, "status")
    assert result.returncode == 1 and "sign in again" in result.stderr


def test_new_without_fallback_names_what_else_the_plan_has(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)
    emulator.admin("POST", "unavailable", {"accelerators": ["A100"]})
    result = run_cli(env, "new", "--gpu", "A100")
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == (
        "colabtray: No A100 is free on Colab right now; this account may also have: T4, L4 "
        "(try --fallback)."
    )
    assert emulator.state()["runtimes"] == []


def test_new_with_fallback_takes_the_next_free_one_and_says_so(emulator: Emulator, tmp_path: Path):
    env = cli_env(emulator, tmp_path)
    emulator.admin("POST", "unavailable", {"accelerators": ["A100", "T4"]})
    result = run_cli(env, "new", "--gpu", "a100", "--fallback")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert first == "A100 GPU and T4 GPU were not free; assigned L4 GPU instead."
    assert second.startswith("Assigned L4 GPU (High-RAM): gpu-l4-s-")
    assert [r["accelerator"] for r in emulator.state()["runtimes"]] == ["L4"]


def test_open_prints_colabs_page_for_the_runtime_and_opens_it_with_browser(
    emulator: Emulator, tmp_path: Path
):
    """Issue 23 (9): the link Google's CLI prints, on the colab_url host; --browser opens it."""
    env = cli_env(emulator, tmp_path)
    made = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
    host = env["COLABTRAY_COLAB_URL"].rstrip("/")
    expected = (
        f"{host}/notebooks/empty.ipynb?dbu=%2Ftun%2Fm%2F{made['endpoint']}"
        f"#datalabBackendUrl={host}/tun/m/{made['endpoint']}"
    )
    printed = run_cli(env, "open", "CPU")
    assert (printed.returncode, printed.stdout) == (0, expected + "\n"), printed.stderr

    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(0o755)
    run = run_cli(env | {"BROWSER": str(browser)}, "open", "--browser", made["endpoint"])
    assert (run.returncode, run.stdout) == (0, expected + "\n"), run.stderr
    assert opened.read_text() == expected

    missing = run_cli(env, "open", "K80 GPU")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1, missing.stderr


def test_a_command_the_running_app_answers_loads_nothing_heavy(
    headless_env: dict[str, str],
) -> None:
    """`colabtray status` answered by a running app goes through the control channel alone:
    none of pydantic, httpx2, aiohttp, the settings or the core is imported (issue 25 item 10;
    benchmarks/commands.py measures the time)."""
    from tests.unit.test_imports import LOADED_HEAVY

    status = f"from colabtray.launch import main\nassert main(['status']) == 0\n{LOADED_HEAVY}"
    with headless_app(headless_env):
        _wait_for_the_app(headless_env)
        done = subprocess.run(
            [sys.executable, "-c", status],
            env=headless_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def _wait_for_the_app(env: dict[str, str], within: float = 60) -> None:
    """Until the running app answers on its control channel (``url`` has no other way)."""
    wait_for(
        lambda: "is not running" not in run_cli(env, "url", "no such runtime").stderr,
        within,
        interval=0.2,
    )


def test_without_xdg_runtime_dir_a_command_says_one_sentence(
    emulator: Emulator, tmp_path: Path
) -> None:
    """ssh sessions, cron and containers often have no XDG_RUNTIME_DIR: platformdirs then
    warned on stderr before colabtray's own sentence."""
    env = cli_env(emulator, tmp_path, with_token=False)
    env.pop("XDG_RUNTIME_DIR", None)
    result = run_cli(env, "url", "CPU")
    assert result.returncode == 1
    (sentence,) = result.stderr.splitlines()
    assert sentence.startswith("colabtray: colabtray is not running"), result.stderr
