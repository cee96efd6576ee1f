"""The keyring child process: what it does when the keyring cannot be used, and with bad input.

The round trip through the real Secret Service is in tests/e2e/test_signin.py; here the child
runs for real too, on a desktop without a keyring or as a helper that fails.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keyring
from pydantic import SecretStr

from colabtray.auth.tokens import NO_KEYRING, SecretStore
from colabtray.auth.vault import ChildVault, serve

CHILD = [sys.executable, "-m", "colabtray.auth.vault"]


def test_a_desktop_without_a_secret_service_keeps_the_sign_in_in_memory() -> None:
    # The child sees a session bus that does not exist, as on a desktop with no keyring.
    no_bus = ["env", "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus", *CHILD]
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
    for request in ("not json", "[]", '{"op": "get"}', '{"op": "drop", "account": "a"}',
                    '{"op": "set", "account": "a"}'):  # fmt: skip
        done = subprocess.run(CHILD, input=request, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"unavailable": "a malformed request"}
        assert done.stderr == ""


def test_serve_reads_writes_and_deletes_through_the_backend() -> None:
    from keyring.backends import fail

    from colabtray.auth.vault import BackendVault

    refused = serve({"op": "get", "account": "a"}, BackendVault(fail.Keyring()))
    assert refused == {"unavailable": "no usable keyring backend (Keyring)"}
