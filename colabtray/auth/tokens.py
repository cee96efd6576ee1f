"""Where refresh tokens live: the OS keyring, or this process's memory and nowhere else.

One keyring entry per account (service ``colabtray``, user = the email). A backend that
would write secrets to a plain file, or none at all, is refused: colabtray then keeps the
session in memory for this run and says so in one sentence (``SecretStore.warning``).
Keyring calls block on D-Bus, so the async methods run them in a worker thread. The keyring
package itself is imported only when a store is made (see ``core.app._KeyringOnDemand``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    import keyring.backend

log = logging.getLogger(__name__)

SERVICE = "colabtray"

NO_KEYRING = (
    "No secure system keyring is available, so colabtray keeps your sign-in in memory "
    "only and you will need to sign in again next time it starts."
)


def _usable(backend: keyring.backend.KeyringBackend) -> bool:
    """False for the 'fail' backend, plaintext file backends and anything of zero priority."""
    names = {f"{cls.__module__}.{cls.__name__}".lower() for cls in type(backend).__mro__}
    if any("plaintext" in n or "keyrings.alt" in n or "keyring.backends.fail" in n for n in names):
        return False
    if type(backend).__name__ == "ChainerBackend":
        return bool(getattr(backend, "backends", ()))
    try:
        return float(backend.priority) > 0  # type: ignore[arg-type]
    except Exception:
        return False


class SecretStore:
    """Refresh tokens by account email."""

    def __init__(self, backend: keyring.backend.KeyringBackend | None = None) -> None:
        import keyring
        import keyring.errors

        self._errors = keyring.errors
        candidate = backend or keyring.get_keyring()
        self._backend: keyring.backend.KeyringBackend | None = (
            candidate if _usable(candidate) else None
        )
        self._memory: dict[str, str] = {}
        self.warning: str | None = None if self._backend else NO_KEYRING
        if self._backend is None:
            log.info("no usable keyring backend (%s)", type(candidate).__name__)

    @property
    def persistent(self) -> bool:
        return self._backend is not None

    def _fall_back(self, exc: Exception) -> None:
        log.warning("the keyring failed (%s); keeping secrets in memory", type(exc).__name__)
        self._backend = None
        self.warning = NO_KEYRING

    def get(self, email: str) -> SecretStr | None:
        value = self._memory.get(email)
        if value is None and self._backend is not None:
            try:
                value = self._backend.get_password(SERVICE, email)
            except self._errors.KeyringError as exc:  # locked and not unlocked, D-Bus gone…
                self._fall_back(exc)
        return SecretStr(value) if value else None

    def set(self, email: str, token: SecretStr) -> None:
        if self._backend is not None:
            try:
                self._backend.set_password(SERVICE, email, token.get_secret_value())
                self._memory.pop(email, None)
                return
            except self._errors.KeyringError as exc:
                self._fall_back(exc)
        self._memory[email] = token.get_secret_value()

    def delete(self, email: str) -> None:
        self._memory.pop(email, None)
        if self._backend is not None:
            try:
                self._backend.delete_password(SERVICE, email)
            except self._errors.PasswordDeleteError:
                pass  # nothing stored for that account
            except self._errors.KeyringError as exc:
                self._fall_back(exc)

    async def aget(self, email: str) -> SecretStr | None:
        return await asyncio.to_thread(self.get, email)

    async def aset(self, email: str, token: SecretStr) -> None:
        await asyncio.to_thread(self.set, email, token)

    async def adelete(self, email: str) -> None:
        await asyncio.to_thread(self.delete, email)
