"""Where refresh tokens live: the OS keyring, or this process's memory and nowhere else.

One keyring entry per account (service ``colabtray``, user = the email). A backend that
would write secrets to a plain file, or none at all, is refused: colabtray then keeps the
session in memory for this run and says so in one sentence (``SecretStore.warning``).
The system keyring is asked from a child process per operation (:mod:`colabtray.auth.vault`
says why); the calls block, so the async methods run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import SecretStr

from colabtray.auth.vault import SERVICE, BackendVault, ChildVault, KeyringUnavailable

if TYPE_CHECKING:
    import keyring.backend

log = logging.getLogger(__name__)

NO_KEYRING = (
    "No secure system keyring is available, so colabtray keeps your sign-in in memory "
    "only and you will need to sign in again next time it starts."
)


class SecretStore:
    """Refresh tokens by account email.

    Without ``backend``, the system keyring through :class:`ChildVault` (or ``child``);
    whether it is usable is known after the first operation. With one (tests, the demo),
    that backend in this process, judged at once.
    """

    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        *,
        child: ChildVault | None = None,
        service: str = SERVICE,
        place: str | None = None,
    ) -> None:
        self._vault: BackendVault | ChildVault | None
        self._memory: dict[str, str] = {}
        self._place = place
        self.warning: str | None = None
        self.service = service
        if backend is None:
            self._vault = child or ChildVault(service=service)
            return
        self._vault = BackendVault(backend, service=service)
        if not self._vault.usable:
            log.info("no usable keyring backend (%s)", type(backend).__name__)
            self._vault = None
            self.warning = NO_KEYRING

    @property
    def place(self) -> str:
        """Where what it holds is kept, to end "kept in …": the keyring, or memory only once
        the keyring is known not to be usable; ``place`` if given (the demo's memory)."""
        if self._place is not None:
            return self._place
        return "the system keyring" if self.warning is None else "memory only"

    @property
    def persistent(self) -> bool:
        """False once the keyring is known not to be usable."""
        return self._vault is not None

    def _fall_back(self, exc: KeyringUnavailable) -> None:
        log.warning("the keyring cannot be used (%s); keeping secrets in memory", exc)
        self._vault = None
        self.warning = NO_KEYRING

    def get(self, email: str) -> SecretStr | None:
        value = self._memory.get(email)
        if value is None and self._vault is not None:
            try:
                value = self._vault.get(email)
            except KeyringUnavailable as exc:
                self._fall_back(exc)
        return SecretStr(value) if value else None

    def set(self, email: str, token: SecretStr) -> None:
        if self._vault is not None:
            try:
                self._vault.set(email, token.get_secret_value())
                self._memory.pop(email, None)
                return
            except KeyringUnavailable as exc:
                self._fall_back(exc)
        self._memory[email] = token.get_secret_value()

    def delete(self, email: str) -> None:
        self._memory.pop(email, None)
        if self._vault is not None:
            try:
                self._vault.delete(email)
            except KeyringUnavailable as exc:
                self._fall_back(exc)

    async def aget(self, email: str) -> SecretStr | None:
        return await asyncio.to_thread(self.get, email)

    async def aset(self, email: str, token: SecretStr) -> None:
        await asyncio.to_thread(self.set, email, token)

    async def adelete(self, email: str) -> None:
        await asyncio.to_thread(self.delete, email)
