"""Words that are true (issue 25, item 8): what colabtray says of where a secret is kept, whose
account the demo uses, an unreachable Google, the ways to sign in, a declined offer and a
closed pipe, each checked with real parts: the demo app and its emulator, the CLI, doctor's own
checks over this machine's resolver and sockets."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from keyring.backends import fail

from colabtray import doctor
from colabtray.auth.tokens import SecretStore
from colabtray.settings import load_settings
from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.emulator import Emulator
from tests.fixtures.environment import isolated_env
from tests.fixtures.gcloud import Gcloud
from tests.integration.test_one_truth import Lines

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def doctor_checks(config_dir: Path, **urls: str) -> dict[str, doctor.Check]:
    """What ``colabtray doctor`` finds, signed out, with these URLs."""
    settings = load_settings(
        config_dir=config_dir,
        state_dir=config_dir.parent / "state",
        log_dir=config_dir.parent / "log",
        **urls,
    )
    found = asyncio.run(doctor.run_checks(settings, doctor.Identity(None, None, "")))
    return {check.name: check for check in found}


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


def test_doctor_says_plainly_that_this_machine_cannot_reach_google(
    config_dir: Path, no_proxy: None
) -> None:
    """A name that never resolves (the reserved .invalid domain: nothing leaves the machine)
    and a local port nobody listens on."""
    checks = doctor_checks(
        config_dir,
        colab_url="https://colab.example.invalid",
        gapi_url="http://127.0.0.1:9",
        public_api_url="https://public.example.invalid",
    )
    colab, gapi = checks["colab host"], checks["GAPI host"]
    assert colab.ok is False and gapi.ok is False
    advice = "check the network connection, and the proxy if this network needs one"
    for check in (colab, gapi):
        assert check.sentence.startswith("This machine cannot reach Google: "), check.sentence
        assert check.sentence.endswith(f"; {advice} (set HTTPS_PROXY to it)."), check.sentence
    assert "colab.example.invalid cannot be resolved (DNS: " in colab.sentence
    assert "127.0.0.1:9 cannot be reached (Connection refused)" in gapi.sentence


def test_doctor_lists_the_ways_signin_lists(tmp_path: Path, no_proxy: None) -> None:
    """Signed out, with nothing set up: ``doctor`` names every way ``signin`` offers."""
    env = isolated_env(
        tmp_path,
        HOME=str(tmp_path / "home"),  # no ADC of the machine's own
        CLOUDSDK_CONFIG=str(tmp_path / "no-gcloud-config"),
        COLABTRAY_COLAB_URL="https://colab.example.invalid",
        COLABTRAY_GAPI_URL="https://gapi.example.invalid",
        COLABTRAY_PUBLIC_API_URL="https://public.example.invalid",
    )
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    signin = run_cli(env, "signin")
    assert signin.returncode == 2, signin.stderr
    offered = [line.split("    ")[0].strip() for line in signin.stderr.splitlines()[1:4]]
    assert offered == [
        "colabtray signin --gcloud",
        "colabtray signin --adc",
        "colabtray signin --client-file PATH",
    ]
    checked = run_cli(env, "doctor")
    (line,) = [line for line in checked.stdout.splitlines() if line.startswith("✗ sign-in: ")]
    assert line.startswith("✗ sign-in: Not signed in. Run one of: 'colabtray signin --gcloud' (")
    for command in offered:
        assert f"'{command}' (" in line, line
    assert line.endswith("; or set COLABTRAY_ACCESS_TOKEN."), line


def test_signin_adc_declined_says_what_happened_and_what_next(
    emulator: Emulator, tmp_path: Path, gcloud: Gcloud
) -> None:
    """No ADC file, gcloud installed, a terminal: the offer to run gcloud answered "n"."""
    env = {
        **cli_env(emulator, tmp_path, with_token=False),
        **gcloud.env,
        "HOME": str(tmp_path / "home"),  # no ADC of the machine's own
    }
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    session = pexpect.spawn(
        sys.executable,
        ["-m", "colabtray", "signin", "--adc"],
        env=env,
        timeout=60,
        dimensions=(24, 400),
        encoding="utf-8",
    )
    session.expect_exact("Run '")
    session.expect_exact("' now? [Y/n] ")
    session.sendline("n")
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 2
    echo, said = session.before.split(None, 1)
    said = " ".join(said.split())  # the terminal's line ends folded
    assert echo == "n"
    assert said.startswith(
        "colabtray: not signed in: gcloud was not run. Make the credentials "
        "with 'gcloud auth application-default login --scopes="
    ), said
    assert said.endswith(
        "and run 'colabtray signin --adc' again, or run 'colabtray signin' to see the other "
        "ways to sign in."
    ), said
    made = Path(env["CLOUDSDK_CONFIG"]) / "application_default_credentials.json"
    assert not made.exists()  # gcloud was not run


def with_stdout_closed(env: dict[str, str], *args: str) -> tuple[int, str]:
    """A command whose stdout is a real pipe nobody reads any more (``| head`` gone); its
    status and its stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "colabtray", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_a_closed_stdout_ends_each_command_quietly(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    for args in (("doctor", "--json"), ("status", "--json"), ("status",)):
        status, said = with_stdout_closed(env, *args)
        assert (status, said) == (141, ""), args  # 128 + SIGPIPE, as a shell reports it
