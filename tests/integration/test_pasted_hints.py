"""Every ``colabtray …`` command the running demo prints works when pasted as printed (issue
25, items 2 and 3): the headless demo's next step, ``status``'s "Start one with", the idle
line's ``keep`` and the secret question's ``secret allow``, each run by bash as printed, with
the venv's ``colabtray`` first on PATH. Real processes: the demo app, its emulator, a kernel."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.colab import run_cli
from tests.fixtures.environment import isolated_env
from tests.fixtures.jupyter_client import KernelSession
from tests.integration.test_one_truth import Lines

pytestmark = pytest.mark.slow

READ = (
    "from google.colab import userdata\ntry:\n    print(userdata.get('HF_TOKEN'))\n"
    "except Exception as exc:\n    print(type(exc).__name__)"
)


# What a person who ran ./scripts/demo.sh can paste: .venv's colabtray, by its full path.
PROGRAM = str(Path(sys.executable).parent / "colabtray")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[dict[str, str], Lines]]:
    """``colabtray --demo --headless`` whose runtimes go idle within seconds; its env (no
    colabtray on PATH, as ./scripts/demo.sh leaves a person: the hints name .venv's by its
    full path) and its stdout."""
    runtime_dir = Path(tempfile.mkdtemp(prefix="ct-"))  # short: the control socket's path
    env = isolated_env(
        tmp_path,
        PATH=os.pathsep.join(
            d for d in os.environ["PATH"].split(os.pathsep) if d != str(Path(sys.executable).parent)
        ),
        XDG_RUNTIME_DIR=str(runtime_dir),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        PYTHONUNBUFFERED="1",
        COLABTRAY_IDLE_THRESHOLD="3",
        COLABTRAY_KEEPALIVE_INTERVAL="1",
        COLABTRAY_IDLE_PROMPT_TIMEOUT="120",
    )
    app = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "--demo", "--headless"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield env, Lines(app)
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(60)
        assert app.stdout is not None
        app.stdout.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)


def pasted(env: dict[str, str], line: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``line`` run by bash exactly as printed."""
    return subprocess.run(
        ["bash", "-c", line],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def hint(line: str, pattern: str) -> str:
    found = re.search(pattern, line)
    assert found, line
    return found.group(1)


def test_each_hint_the_demo_prints_works_pasted(
    demo: tuple[dict[str, str], Lines],
) -> None:
    env, lines = demo
    assert lines.next_with("Signed in as") == "Signed in as ada@example.com."
    # Item 2: the headless demo names its next step, and then shows a URL for editors.
    step = hint(lines.next_with("No runtime yet"), r"start one with (\S*colabtray .+?) \(in")
    assert step == f"{PROGRAM} --demo new --cpu"
    made = pasted(env, step)
    assert made.returncode == 0, made.stderr
    ready = lines.next_with("is ready for editors at")
    url = hint(ready, r"^CPU \(CPU\) is ready for editors at (http://127\.0\.0\.1:\S+)$")

    # --demo after the command, as people type it.
    status = run_cli(env, "status", "--demo")
    assert status.returncode == 0 and "CPU" in status.stdout, status.stderr
    removed = run_cli(env, "remove", "CPU", "--demo")
    assert removed.returncode == 0, removed.stderr
    lines.next_with("CPU is gone")
    status = run_cli(env, "status", "--demo")
    start = hint(status.stdout, r"Start one with: (\S*colabtray .+)\n")
    assert start == f"{PROGRAM} --demo new --gpu T4"
    made = pasted(env, start)
    assert made.returncode == 0, made.stderr
    made = pasted(env, step)
    assert made.returncode == 0, made.stderr
    url = hint(lines.next_with("CPU (CPU) is ready"), r"at (http://\S+)$")

    # The idle line's keep.
    keep = hint(lines.next_with("'CPU' is idle"), r"run (\S*colabtray .+?) within")
    assert keep == f"{PROGRAM} --demo keep CPU"
    kept = pasted(env, keep)
    assert (kept.returncode, kept.stdout) == (0, "Keeping CPU running.\n"), kept.stderr

    # The secret question's allow.
    stored = pasted(env, f"{PROGRAM} --demo secret set HF_TOKEN", stdin="demo-value\n")
    assert stored.returncode == 0, stored.stderr

    async def read_it() -> str:
        async with KernelSession(url) as kernel:
            reading = asyncio.create_task(kernel.execute(READ, seconds=60))
            asked = await asyncio.to_thread(lines.next_with, "asks for the secret HF_TOKEN")
            allow = hint(asked, r"answer with (\S*colabtray .+?) \(then run")
            assert allow == f"{PROGRAM} --demo secret allow HF_TOKEN CPU"
            allowed = await asyncio.to_thread(pasted, env, allow)
            assert allowed.returncode == 0, allowed.stderr
            await reading
            output, reply = await kernel.execute(READ, seconds=60)
            assert reply["status"] == "ok", output
            return output.strip()

    assert asyncio.run(read_it()) == "demo-value"
