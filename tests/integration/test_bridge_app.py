"""The bridge in the running app: ``colabtray --headless`` serves runtimes, ``colabtray url``
and ``colabtray status --json`` ask it over the control channel; all real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.colab import headless_app, run_cli
from tests.fixtures.jupyter_client import KernelSession
from tests.fixtures.waiting import until

pytestmark = pytest.mark.slow


async def test_headless_app_serves_urls_to_the_cli(headless_env: dict[str, str]) -> None:
    env = headless_env
    stopped = run_cli(env, "url", "anything")
    assert stopped.returncode == 1
    assert "colabtray is not running" in stopped.stderr and "--headless" in stopped.stderr

    made = run_cli(env, "new", "--cpu", "--json")
    assert made.returncode == 0, made.stderr
    endpoint = json.loads(made.stdout)["endpoint"]

    with headless_app(env):
        answer = await until(lambda: _ok(run_cli(env, "url", "cpu")), 60, interval=0.5)
        url = answer.stdout.strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        async with KernelSession(url) as kernel:
            output, _ = await kernel.execute("print(6*7)")
            assert output == "42\n"

        lab = run_cli(env, "url", endpoint, "--lab")
        assert lab.returncode == 0
        secret = url.partition("?token=")[2]
        assert lab.stdout.strip() == (
            f"JUPYTER_GATEWAY_AUTH_TOKEN={secret} jupyter lab --gateway-url="
            + url.partition("/?")[0]
        )

        status = json.loads(run_cli(env, "status", "--json").stdout)
        assert [r["url"] for r in status["runtimes"]] == [url]

        unknown = run_cli(env, "url", "no-such-runtime")
        assert unknown.returncode == 1 and "No runtime named 'no-such-runtime'" in unknown.stderr
        assert len(_server_files(env)) == 1
    # Leaving, the app takes its server file with it.
    assert _server_files(env) == []


def _server_files(env: dict[str, str]) -> list[Path]:
    return list(Path(env["JUPYTER_RUNTIME_DIR"]).glob("jpserver-*.json"))


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess | None:
    return result if result.returncode == 0 else None
