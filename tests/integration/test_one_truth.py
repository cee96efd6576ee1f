"""The CLI, the running app and Colab agree at once; ``--demo`` commands never reach a real
account; ``--headless`` says what it does on stdout. Real processes against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.colab import cli_env, headless_app, run_cli
from tests.fixtures.emulator import Emulator
from tests.fixtures.environment import isolated_env
from tests.fixtures.jupyter_client import KernelSession
from tests.fixtures.waiting import until, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", [("new", "--gpu", "T4"), ("remove", "T4 GPU")])
def test_a_demo_command_without_the_demo_touches_no_account(
    emulator: Emulator, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """With a signed-in account at hand (the ready token), `--demo new` must not use it."""
    env = cli_env(emulator, tmp_path)
    before = emulator.last_seq()
    result = run_cli(env, "--demo", *command)
    assert result.returncode == 2
    assert "the demo is not running" in result.stderr
    assert "your own account is never used with --demo" in result.stderr
    assert emulator.requests(since=before) == []  # nothing reached Colab
    assert emulator.state()["runtimes"] == []


def test_headless_refuses_a_command(emulator: Emulator, tmp_path: Path) -> None:
    result = run_cli(cli_env(emulator, tmp_path), "--headless", "status")
    assert result.returncode == 2 and "--headless starts the app" in result.stderr


def test_demo_commands_go_to_the_running_demo(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, PYTHONUNBUFFERED="1")
    app = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "--demo", "--headless"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        made = wait_for(
            lambda: succeeded(run_cli(env, "--demo", "new", "--cpu", "--json")), 90, 0.5
        )
        runtime = json.loads(made.stdout)
        assert runtime["url"].startswith("http://127.0.0.1:")  # bridged by the demo app
        status = json.loads(run_cli(env, "--demo", "status", "--json").stdout)
        assert status["account"] == {"email": "ada@example.com"}  # the demo's account
        assert [r["endpoint"] for r in status["runtimes"]] == [runtime["endpoint"]]
        # The demo's runtimes speak TLS with the demo's own authority: the tools trust what
        # the demo app trusts.
        (tmp_path / "note.txt").write_text("from the demo\n")
        there = f"{runtime['name']}:note.txt"
        put = run_cli(env, "--demo", "cp", str(tmp_path / "note.txt"), there)
        assert put.returncode == 0, put.stderr
        got = run_cli(env, "--demo", "cp", there, str(tmp_path / "back.txt"))
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "back.txt").read_text() == "from the demo\n"
        gone = run_cli(env, "--demo", "remove", runtime["name"])
        assert gone.returncode == 0, gone.stderr
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        assert app.wait(60) == 0


def test_new_then_url_at_once_through_the_running_app(headless_env: dict[str, str]) -> None:
    env = headless_env
    with headless_app(env):
        wait_for(lambda: succeeded(run_cli(env, "status")), 60, 0.5)
        made = run_cli(env, "new", "--cpu", "--json")
        assert made.returncode == 0, made.stderr
        runtime = json.loads(made.stdout)
        assert runtime["name"] == "CPU" and runtime["url"].startswith("http://127.0.0.1:")
        url = run_cli(env, "url", "CPU")  # at once: no poll in between
        assert url.returncode == 0, url.stderr
        assert url.stdout.strip() == runtime["url"]
        text = run_cli(env, "new", "--cpu")
        assert "Editors connect to: http://127.0.0.1:" in text.stdout
        removed = run_cli(env, "remove", "CPU (1)")
        assert removed.returncode == 0 and "Disconnected CPU (1)" in removed.stdout


async def test_a_runtime_made_elsewhere_is_found_by_name_at_once(
    emulator: Emulator, headless_env: dict[str, str]
) -> None:
    env = headless_env
    env["COLABTRAY_POLL_INTERVAL"] = "3600"  # no poll will find it: the lookup must
    with headless_app(env):
        await until(lambda: run_cli(env, "status").returncode == 0, 60, interval=0.5)
        # As Colab's web page would: straight at the backend, not through colabtray.
        made = run_cli(
            cli_env(emulator, Path(env["COLABTRAY_CONFIG_DIR"]).parent / "other"),
            "new",
            "--cpu",
            "--json",
        )
        assert made.returncode == 0, made.stderr
        url = run_cli(env, "url", json.loads(made.stdout)["endpoint"])
        assert url.returncode == 0, url.stderr


class Lines:
    """A process's stdout, line by line, waited on with a bound."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=lambda: [self._queue.put(x) for x in stream], daemon=True).start()

    def next_with(self, text: str, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left).rstrip("\n")
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {seconds} s; saw {self.seen}")


@pytest.fixture
def speaking_app(headless_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    env = {
        **headless_env,
        "COLABTRAY_IDLE_THRESHOLD": "3",
        "COLABTRAY_KEEPALIVE_INTERVAL": "1",
        "COLABTRAY_IDLE_PROMPT_TIMEOUT": "120",
    }
    app = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "--headless"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield app, Lines(app)
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(60)
        assert app.stdout is not None
        app.stdout.close()


def test_headless_says_what_it_does(
    emulator: Emulator, headless_env: dict[str, str], speaking_app
) -> None:
    _app, lines = speaking_app
    env = headless_env
    assert lines.next_with("Signed in as") == "Signed in as ada@example.com."
    made = run_cli(env, "new", "--cpu", "--json")
    assert made.returncode == 0, made.stderr
    runtime = json.loads(made.stdout)
    ready = lines.next_with("is ready for editors at")
    assert ready == f"CPU (CPU) is ready for editors at {runtime['url']}"
    asked = lines.next_with("is idle")
    assert "run colabtray keep CPU within" in asked and "or colabtray remove CPU to" in asked
    kept = run_cli(env, "keep", "CPU")
    assert kept.returncode == 0 and kept.stdout.strip() == "Keeping CPU running."
    again = run_cli(env, "keep", "CPU")
    assert again.returncode == 1 and "not waiting for an answer" in again.stderr
    # Why keep-alive pings it now, in status and its JSON (issue 23 item 8).
    wait_for(lambda: "you chose Keep" in run_cli(env, "status").stdout, 10)
    assert "Kept alive: you chose Keep; asks after " in run_cli(env, "status").stdout
    (listed,) = json.loads(run_cli(env, "status", "--json").stdout)["runtimes"]
    assert listed["keep_alive"]["kept"] and listed["keep_alive"]["why"] == "keep"
    emulator.admin("POST", f"runtimes/{runtime['endpoint']}/reclaim")
    run_cli(env, "status")  # a listing now, rather than at the next poll
    assert lines.next_with("is gone") == "CPU is gone (reclaimed by Colab or removed elsewhere)."
    order = [line.split(" ")[1] for line in lines.seen if line.startswith(("Signed", "CPU"))]
    assert order[:1] == ["in"]  # signed in first, then the runtime's lines in order
    # Notices it has no line of its own for are said too; the runtime's are said once.
    emulator.admin("POST", "faults", {"fault_rate": 1.0})
    run_cli(env, "status")
    assert lines.next_with("Colab is unreachable").startswith("Colab is unreachable: ")
    assert not [line for line in lines.seen if line.startswith("CPU is ready:")]


async def test_a_kernel_keeps_working_after_keep(
    headless_env: dict[str, str], speaking_app
) -> None:
    _app, lines = speaking_app
    env = headless_env
    lines.next_with("Signed in as")
    runtime = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
    lines.next_with("is idle")
    assert run_cli(env, "keep", "CPU").returncode == 0
    async with KernelSession(runtime["url"]) as kernel:
        assert (await kernel.execute("print(6*7)"))[0] == "42\n"


def succeeded(
    result: subprocess.CompletedProcess[str],
) -> subprocess.CompletedProcess[str] | None:
    return result if result.returncode == 0 else None


async def test_the_background_poll_stays_within_its_rate(
    emulator: Emulator, headless_env: dict[str, str]
) -> None:
    """Counted in the emulator's request log: a quiet account is listed at most once per
    poll interval on average (plus the small budget kept for changes)."""
    env = {**headless_env, "COLABTRAY_POLL_INTERVAL": "2"}
    assert run_cli(env, "new", "--cpu").returncode == 0
    with headless_app(env):
        await until(lambda: run_cli(env, "status").returncode == 0, 60, interval=0.5)
        mark = emulator.last_seq()
        started = time.monotonic()
        await asyncio.sleep(12)  # the quantity measured is what happens in this time
        elapsed = time.monotonic() - started
        listings = [e for e in emulator.requests(since=mark) if e["path"] == "/tun/m/assignments"]
    assert 1 <= len(listings) <= elapsed / 2 + 3 + 1
