"""The bridge in the running app: ``colabtray --headless`` serves runtimes, ``colabtray url``
and ``colabtray status --json`` ask it over the control channel; all real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.bridge import until
from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.emulator import Emulator
from tests.fixtures.jupyter_client import KernelSession

pytestmark = pytest.mark.slow


async def test_headless_app_serves_urls_to_the_cli(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    # Short: the control socket's path must fit AF_UNIX's ~108 bytes.
    runtime_dir = Path(tempfile.mkdtemp(prefix="ct-"))
    jupyter_dir = tmp_path / "jupyter-runtime"
    env.update(
        XDG_RUNTIME_DIR=str(runtime_dir),
        JUPYTER_RUNTIME_DIR=str(jupyter_dir),
        COLABTRAY_POLL_INTERVAL="0.5",
    )

    stopped = run_cli(env, "url", "anything")
    assert stopped.returncode == 1
    assert "colabtray is not running" in stopped.stderr and "--headless" in stopped.stderr

    made = run_cli(env, "new", "--cpu", "--json")
    assert made.returncode == 0, made.stderr
    endpoint = json.loads(made.stdout)["endpoint"]

    app = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; it runs alongside
        [sys.executable, "-m", "colabtray", "--headless"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        answer = await until(lambda: _ok(run_cli(env, "url", "cpu")), 60, interval=0.5)
        url = answer.stdout.strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        async with KernelSession(url) as kernel:
            output, _ = await kernel.execute("print(6*7)")
            assert output == "42\n"

        lab = run_cli(env, "url", endpoint, "--lab")
        assert lab.returncode == 0
        assert lab.stdout.startswith("jupyter lab --gateway-url=http://127.0.0.1:")

        status = json.loads(run_cli(env, "status", "--json").stdout)
        assert [r["url"] for r in status["runtimes"]] == [url]

        unknown = run_cli(env, "url", "no-such-runtime")
        assert unknown.returncode == 1 and "No runtime named 'no-such-runtime'" in unknown.stderr
        assert len(list(jupyter_dir.glob("jpserver-*.json"))) == 1
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        _out, err = app.communicate(timeout=30)
        shutil.rmtree(runtime_dir, ignore_errors=True)
    assert app.returncode == 0, err.decode()[-2000:]
    # Leaving, the app takes its server file with it.
    assert list(jupyter_dir.glob("jpserver-*.json")) == []


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess | None:
    return result if result.returncode == 0 else None
