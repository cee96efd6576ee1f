"""The OS keyring, asked from a short-lived child process: ``python -m colabtray.auth.vault``.

Why a child: the keyring package and its Secret Service backend load secretstorage, jeepney
and ``cryptography``, about 14 MB of resident memory that the tray would carry all day for a
refresh token it reads once at start and writes once per sign-in (benchmarks/tray.py). The
child does one operation and exits; the request (the secret, for a write) goes over its stdin
and the reply over its stdout, never on its command line or in the environment.

:class:`BackendVault` is a keyring backend used in this process (by the child itself, and by
tests and the demo, which bring their own backend); :class:`ChildVault` runs the child. Both
raise :class:`KeyringUnavailable` when the keyring cannot be used (none, a plaintext one, a
locked one not unlocked, D-Bus gone…), and the caller then keeps the secret in memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from colabtray.errors import describe_os_error

if TYPE_CHECKING:
    import keyring.backend

SERVICE = "colabtray"
# The services colabtray keeps entries under: refresh tokens, and the notebooks' secrets.
SERVICES = frozenset({SERVICE, "colabtray-secrets"})
# A locked keyring asks the user to unlock it; the child waits that long for them.
TIMEOUT = 300.0


class KeyringUnavailable(Exception):
    """The keyring cannot be used; the message says why in a few words (no secrets)."""


def usable(backend: keyring.backend.KeyringBackend) -> bool:
    """False for the 'fail' backend, plaintext file backends and anything of zero priority."""
    names = {f"{cls.__module__}.{cls.__name__}".lower() for cls in type(backend).__mro__}
    if any("plaintext" in n or "keyrings.alt" in n or "keyring.backends.fail" in n for n in names):
        return False
    if type(backend).__name__ == "ChainerBackend":
        return bool(getattr(backend, "backends", ()))
    try:
        return float(backend.priority) > 0
    except Exception:
        return False


class BackendVault:
    """A keyring backend in this process (the system's unless one is given)."""

    def __init__(
        self, backend: keyring.backend.KeyringBackend | None = None, service: str = SERVICE
    ) -> None:
        import keyring
        import keyring.errors

        self._errors = keyring.errors
        self._backend = backend or keyring.get_keyring()
        self.usable = usable(self._backend)
        self._service = service

    @property
    def name(self) -> str:
        return type(self._backend).__name__

    def _check(self) -> None:
        if not self.usable:
            raise KeyringUnavailable(f"no usable keyring backend ({type(self._backend).__name__})")

    def get(self, account: str) -> str | None:
        self._check()
        try:
            return self._backend.get_password(self._service, account)
        except self._errors.KeyringError as exc:  # locked and not unlocked, D-Bus gone…
            raise KeyringUnavailable(type(exc).__name__) from None

    def set(self, account: str, secret: str) -> None:
        self._check()
        try:
            self._backend.set_password(self._service, account, secret)
        except self._errors.KeyringError as exc:
            raise KeyringUnavailable(type(exc).__name__) from None

    def delete(self, account: str) -> None:
        self._check()
        try:
            self._backend.delete_password(self._service, account)
        except self._errors.PasswordDeleteError:
            pass  # nothing stored for that account
        except self._errors.KeyringError as exc:
            raise KeyringUnavailable(type(exc).__name__) from None


class ChildVault:
    """The system keyring, one child process per operation (see the module docstring)."""

    def __init__(
        self, command: list[str] | None = None, timeout: float = TIMEOUT, service: str = SERVICE
    ) -> None:
        # `<python> -m MODULE` also works in the bundle (packaging/launcher.py runs it).
        self._command = command or [sys.executable, "-m", __name__]
        self._timeout = timeout
        self._service = service

    def get(self, account: str) -> str | None:
        secret = self._ask({"op": "get", "account": account}).get("secret")
        return secret if isinstance(secret, str) and secret else None

    def set(self, account: str, secret: str) -> None:
        self._ask({"op": "set", "account": account, "secret": secret})

    def delete(self, account: str) -> None:
        self._ask({"op": "delete", "account": account})

    def backend(self) -> str:
        """The name of the keyring backend the system offers (KeyringUnavailable if none)."""
        return str(self._ask({"op": "probe", "account": ""}).get("backend", "?"))

    def _ask(self, request: dict[str, str]) -> dict[str, Any]:
        request = {**request, "service": self._service}
        try:
            done = subprocess.run(
                self._command,
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise KeyringUnavailable("no answer in time") from None
        except OSError as exc:
            raise KeyringUnavailable(f"could not start ({describe_os_error(exc)})") from None
        try:
            reply = json.loads(done.stdout)
        except ValueError:
            reply = None
        if done.returncode != 0 or not isinstance(reply, dict):
            raise KeyringUnavailable(f"the keyring helper failed (exit status {done.returncode})")
        if isinstance(reply.get("unavailable"), str):
            raise KeyringUnavailable(reply["unavailable"])
        return reply


def serve(request: dict[str, Any], vault: BackendVault | None = None) -> dict[str, Any]:
    """Carry out one request (the child's whole job); never raises for a keyring problem."""
    account, op = request.get("account"), request.get("op")
    service = request.get("service", SERVICE)
    if not isinstance(account, str) or op not in ("get", "set", "delete", "probe"):
        return {"unavailable": "a malformed request"}
    if service not in SERVICES:
        return {"unavailable": "a malformed request"}
    try:
        vault = vault or BackendVault(service=service)
        if op == "probe":
            vault._check()
            return {"backend": vault.name}
        if op == "get":
            return {"secret": vault.get(account)}
        if op == "set":
            secret = request.get("secret")
            if not isinstance(secret, str) or not secret:
                return {"unavailable": "a malformed request"}
            vault.set(account, secret)
        else:
            vault.delete(account)
        return {}
    except KeyringUnavailable as exc:
        return {"unavailable": str(exc)}


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
    except ValueError:
        request = None
    reply = serve(request if isinstance(request, dict) else {})
    sys.stdout.write(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
