"""Words that are true (issue 25, item 8): what colabtray says of where a secret is kept, whose
account the demo uses, an unreachable Google, the ways to sign in, a declined offer and a
closed pipe, each checked against real processes (the demo app and its emulator, the CLI)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backends import fail

from colabtray.auth.tokens import SecretStore
from tests.fixtures.colab import run_cli
from tests.fixtures.environment import isolated_env
from tests.integration.test_one_truth import Lines


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``colabtray --demo --headless``, signed in; the environment its commands run in."""
    runtime_dir = Path(tempfile.mkdtemp(prefix="ct-"))  # short: the control socket's path
    env = isolated_env(
        tmp_path,
        XDG_RUNTIME_DIR=str(runtime_dir),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        PYTHONUNBUFFERED="1",
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
        Lines(app).next_with("Signed in as")
        yield env
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(60)
        assert app.stdout is not None
        app.stdout.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)


def test_the_demo_says_its_secrets_are_in_its_memory(demo: dict[str, str]) -> None:
    stored = subprocess.run(
        [sys.executable, "-m", "colabtray", "--demo", "secret", "set", "HF_TOKEN"],
        env=demo,
        input="demo-value\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout == (
        "Stored the secret HF_TOKEN (in the demo's memory, gone when the demo stops).\n"
    )
    assert run_cli(demo, "--demo", "secret", "list").stdout == "HF_TOKEN\n"


def test_a_store_without_a_keyring_says_memory_only() -> None:
    assert SecretStore(fail.Keyring()).place == "memory only"
