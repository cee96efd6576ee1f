"""No traceback on the console for an expected event (issue 25, item 7): a ``--headless`` app
whose secret question times out while a notebook waits, whose kernel socket is then dropped
by the editor, and which is then stopped, says nothing on stderr of a traceback or of a task
"exception was never retrieved" (a pump of a kernel socket left one, 2 runs of 3). Real
processes: the app, the emulator's runtime, a real kernel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.colab import run_cli
from tests.fixtures.jupyter_client import KernelSession
from tests.integration.test_notebook_secrets import read_in_kernel, set_secret
from tests.integration.test_one_truth import Lines

pytestmark = pytest.mark.slow


async def questions_run_out(url: str) -> None:
    """Three times: a read the question does not answer in time, then one the editor leaves
    while it waits (its kernel socket closed mid-conversation)."""
    for _ in range(3):
        async with KernelSession(url) as kernel:
            assert await read_in_kernel(kernel, "API_KEY") == "NotebookAccessError"
            left = asyncio.create_task(read_in_kernel(kernel, "API_KEY"))
            await asyncio.sleep(0.5)  # the request on its way; when exactly does not matter
        left.cancel()
        with contextlib.suppress(BaseException):
            await left


def test_a_timed_out_secret_question_leaves_no_traceback(
    headless_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**headless_env, "COLABTRAY_IDLE_PROMPT_TIMEOUT": "3", "PYTHONUNBUFFERED": "1"}
    errors = tmp_path / "app.err"
    with errors.open("w") as stderr:
        app = subprocess.Popen(
            [sys.executable, "-m", "colabtray", "--headless"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    lines = Lines(app)
    try:
        lines.next_with("Signed in as")
        set_secret(env, "API_KEY", "value")
        runtime = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
        asyncio.run(questions_run_out(runtime["url"]))
        lines.next_with("asks for the secret API_KEY")
        removed = run_cli(env, "remove", "CPU")
        assert removed.returncode == 0, removed.stderr
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        assert app.wait(60) == 0
        assert app.stdout is not None
        app.stdout.close()
    said = errors.read_text()
    assert "Traceback" not in said and "never retrieved" not in said, said
