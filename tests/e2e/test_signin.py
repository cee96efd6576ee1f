"""Sign-in end to end: a real browser, the emulator's Google pages, our loopback receiver,
and the real OS keyring (gnome-keyring's Secret Service on the test session's bus)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import keyring
import pytest
from playwright.async_api import Browser

from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.emulator import Emulator


@pytest.fixture(autouse=True)
def secret_service_keyring() -> None:
    """These tests need the real keyring that scripts/test.sh starts; say so if it is absent."""
    backend = type(keyring.get_keyring())
    assert "SecretService" in backend.__module__, (
        f"keyring uses {backend.__name__}; run the tests through scripts/test.sh"
    )


class SignInProcess:
    """``colabtray signin`` as a user runs it, with $BROWSER recording the URL it opens."""

    def __init__(self, env: dict[str, str], tmp_path: Path, *args: str) -> None:
        self.url_file = tmp_path / "opened-url"
        script = tmp_path / "browser.sh"
        script.write_text(f'#!/bin/sh\nprintf %s "$1" > {self.url_file}\n')
        script.chmod(0o700)
        env = dict(env, BROWSER=f"{script} %s")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "colabtray", "-v", "signin", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    async def opened_url(self) -> str:
        deadline = time.monotonic() + 30
        while not (self.url_file.exists() and self.url_file.read_text()):
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, "the browser was never opened"
            await asyncio.sleep(0.05)
        return self.url_file.read_text()

    async def finish(self) -> tuple[int, str, str]:
        out, err = await asyncio.to_thread(self.process.communicate, timeout=60)
        return self.process.returncode, out, err


def files_containing(root: Path, secret: str) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and secret in path.read_text(errors="ignore")
    ]


async def test_allow_in_a_real_browser_signs_in_and_survives_a_restart(
    emulator: Emulator, tmp_path: Path, browser: Browser
):
    env = cli_env(emulator, tmp_path, with_token=False)
    signin = SignInProcess(env, tmp_path)
    url = await signin.opened_url()

    query = parse_qs(urlparse(url).query)
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert query["code_challenge_method"] == ["S256"] and len(query["state"][0]) >= 22
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]

    page = await browser.new_page()
    await page.goto(url)
    await page.check("input[value='ada@example.com']")
    await page.click("#allow")
    await page.wait_for_selector("text=You are signed in", timeout=30_000)

    code, out, err = await signin.finish()
    assert code == 0, err
    assert "Signed in as ada@example.com (kept in the system keyring)" in out
    refresh_token = keyring.get_password("colabtray", "ada@example.com")
    assert refresh_token, "the refresh token is not in the keyring"

    assert not files_containing(tmp_path, refresh_token), "a secret reached a file"

    # A second process, started afterwards, is signed in without a browser.
    status = run_cli(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["account"] == {"email": "ada@example.com"}

    signout = run_cli(env, "signout")
    assert signout.returncode == 0 and "Signed out ada@example.com" in signout.stdout
    assert keyring.get_password("colabtray", "ada@example.com") is None
    assert run_cli(env, "status").returncode == 1


async def test_deny_in_a_real_browser_says_you_declined(
    emulator: Emulator, tmp_path: Path, browser: Browser
):
    env = cli_env(emulator, tmp_path, with_token=False)
    signin = SignInProcess(env, tmp_path)
    page = await browser.new_page()
    await page.goto(await signin.opened_url())
    await page.click("#deny")
    await page.wait_for_selector("text=You declined", timeout=30_000)
    code, _, err = await signin.finish()
    assert code == 1 and "You declined the sign-in" in err
    assert keyring.get_password("colabtray", "ada@example.com") is None


async def test_ctrl_c_cancels_and_closes_the_port(emulator: Emulator, tmp_path: Path):
    signin = SignInProcess(cli_env(emulator, tmp_path, with_token=False), tmp_path)
    port = urlparse(parse_qs(urlparse(await signin.opened_url()).query)["redirect_uri"][0]).port
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens
    signin.process.send_signal(signal.SIGINT)
    code, _, err = await signin.finish()
    assert code == 130 and "cancelled" in err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_no_answer_times_out_with_a_sentence(emulator: Emulator, tmp_path: Path):
    env = dict(cli_env(emulator, tmp_path, with_token=False), COLABTRAY_SIGNIN_TIMEOUT="2")
    signin = SignInProcess(env, tmp_path, "--no-browser")
    code, out, err = await signin.finish()
    assert "Open this URL in your browser" in out
    assert code == 1 and "Sign-in timed out after 2 seconds" in err
    assert not signin.url_file.exists()  # --no-browser opened nothing


def test_the_app_trusts_this_keyring_and_would_refuse_a_plaintext_one():
    from keyring.backends import fail
    from pydantic import SecretStr

    from colabtray.auth.tokens import NO_KEYRING, SecretStore

    # The default store asks the Secret Service from a child process: a real round trip.
    store = SecretStore()
    store.set("probe@example.com", SecretStr("probe-refresh-value"))
    assert keyring.get_password("colabtray", "probe@example.com") == "probe-refresh-value"
    assert SecretStore().get("probe@example.com") == SecretStr("probe-refresh-value")
    store.delete("probe@example.com")
    assert keyring.get_password("colabtray", "probe@example.com") is None
    assert store.persistent and store.warning is None

    refused = SecretStore(fail.Keyring())
    assert not refused.persistent and refused.warning == NO_KEYRING
