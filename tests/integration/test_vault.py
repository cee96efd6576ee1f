"""The keyring child process: what it does when the keyring cannot be used, and with bad input.

The round trip through the real Secret Service is in tests/e2e/test_signin.py; here the child
runs for real too, on a desktop without a keyring or as a helper that fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import keyring
from pydantic import SecretStr

from colabtray.auth.tokens import NO_KEYRING, SecretStore
from colabtray.auth.vault import ChildVault, serve
from tests.fixtures.colab import cli_env

CHILD = [sys.executable, "-m", "colabtray.auth.vault"]
NO_BUS = "unix:path=/nonexistent/bus"


def test_a_desktop_without_a_secret_service_keeps_the_sign_in_in_memory() -> None:
    # The child sees a session bus that does not exist, as on a desktop with no keyring.
    no_bus = ["env", f"DBUS_SESSION_BUS_ADDRESS={NO_BUS}", *CHILD]
    store = SecretStore(child=ChildVault(no_bus, timeout=60))
    store.set("vault-test@example.com", SecretStr("kept-in-memory"))
    assert store.warning == NO_KEYRING and not store.persistent
    assert store.get("vault-test@example.com") == SecretStr("kept-in-memory")
    assert keyring.get_password("colabtray", "vault-test@example.com") is None  # never written


def test_a_helper_that_fails_is_a_keyring_that_cannot_be_used() -> None:
    store = SecretStore(child=ChildVault([sys.executable, "-c", "import sys; sys.exit(3)"]))
    assert store.get("vault-test@example.com") is None
    assert store.warning == NO_KEYRING
    store.set("vault-test@example.com", SecretStr("kept-in-memory"))
    assert store.get("vault-test@example.com") == SecretStr("kept-in-memory")


def test_the_child_answers_bad_requests_with_a_reason_not_a_traceback() -> None:
    for request in (
        "not json",
        "[]",
        '{"op": "get"}',
        '{"op": "drop", "account": "a"}',
        '{"op": "set", "account": "a"}',
    ):
        done = subprocess.run(CHILD, input=request, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"unavailable": "a malformed request"}
        assert done.stderr == ""


def test_serve_reads_writes_and_deletes_through_the_backend() -> None:
    from keyring.backends import fail

    from colabtray.auth.vault import BackendVault

    refused = serve({"op": "get", "account": "a"}, BackendVault(fail.Keyring()))
    assert refused == {"unavailable": "no usable keyring backend (Keyring)"}


def test_the_cli_says_when_a_sign_in_stays_in_memory(emulator_factory: Any, tmp_path: Path) -> None:
    emulator = emulator_factory("--auto-approve")
    env = dict(cli_env(emulator, tmp_path, with_token=False), DBUS_SESSION_BUS_ADDRESS=NO_BUS)
    signin = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "signin", "--no-browser"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert signin.stdout is not None
    for line in signin.stdout:
        if line.startswith("http"):  # this test is the browser; the emulator approves at once
            httpx2.get(line.strip(), follow_redirects=True, timeout=30)
            break
    out, err = signin.communicate(timeout=60)
    assert signin.returncode == 0, err
    assert "(kept in memory only)" in out
    assert f"colabtray: {NO_KEYRING}" in err
