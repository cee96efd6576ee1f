"""Who is signed in, and the access token of the active account.

Accounts are listed in ``accounts.json`` in the config directory (emails and which one is
active: nothing secret). Each account's refresh token is in the OS keyring; access tokens
live in memory only and are refreshed shortly before they expire, once for all callers.
An account whose refresh token is missing or was refused (``invalid_grant``) needs a new
sign-in; the others are untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from colabtray.auth.errors import (
    InvalidGrantError,
    NotSignedInError,
    SignInAgainError,
    SignInTimeoutError,
)
from colabtray.auth.tokens import SecretStore
from colabtray.auth.userinfo import fetch_email
from colabtray.core.jsonfile import read_json, write_json
from colabtray.settings import Settings

if TYPE_CHECKING:  # imported when first needed: aiohttp and Authlib weigh ~25 MB resident
    from colabtray.auth.oauth import GoogleOAuth, Grant

log = logging.getLogger(__name__)

# Refresh an access token this long before it expires (Google's own clients use 5 minutes).
REFRESH_AHEAD_SECONDS = 300


class AccountState(StrEnum):
    SIGNED_IN = "signed-in"
    NEEDS_SIGN_IN = "needs-sign-in"  # listed, but its sign-in was revoked, expired or lost


@dataclass(frozen=True)
class Account:
    email: str
    state: AccountState
    active: bool


class Session:
    """The accounts, the active one, and a ``TokenSource`` for the Colab client."""

    def __init__(
        self, settings: Settings, store: SecretStore, oauth: GoogleOAuth | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        self._oauth = oauth
        self._path = settings.config_dir / "accounts.json"
        self._emails, self._active = self._load()
        self._grants: dict[str, Grant] = {}
        self._refreshing: dict[str, asyncio.Future[Grant]] = {}
        self._needs_sign_in: set[str] = set()
        self._listeners: list[Callable[[], None]] = []

    # ---- what the rest of the app reads ---------------------------------------------------

    @property
    def active_email(self) -> str | None:
        return self._active

    @property
    def keyring_warning(self) -> str | None:
        return self._store.warning

    def accounts(self) -> list[Account]:
        return [
            Account(
                email,
                AccountState.NEEDS_SIGN_IN
                if email in self._needs_sign_in
                else AccountState.SIGNED_IN,
                email == self._active,
            )
            for email in self._emails
        ]

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of accounts or their state."""
        self._listeners.append(listener)

    async def check_stored(self) -> None:
        """Mark accounts whose refresh token is no longer in the keyring."""
        changed = False
        for email in self._emails:
            if email not in self._needs_sign_in and await self._store.aget(email) is None:
                self._needs_sign_in.add(email)
                changed = True
        if changed:
            self._changed()

    # ---- signing in and out ---------------------------------------------------------------

    async def sign_in(
        self,
        open_url: Callable[[str], object],
        *,
        login_hint: str | None = None,
        wait_seconds: float = 300.0,
    ) -> str:
        """Run the loopback flow to the end; returns the email that is now active.

        Cancelling the task that awaits this closes the port at once.
        """
        oauth = self._require_oauth()
        from colabtray.auth.loopback import LoopbackReceiver

        receiver = LoopbackReceiver()
        try:
            redirect_uri = await receiver.start()
            request = oauth.authorization_request(redirect_uri, login_hint=login_hint)
            receiver.expect(request.state)
            await asyncio.to_thread(open_url, request.url)
            try:
                code = await asyncio.wait_for(receiver.wait(), wait_seconds)
            except TimeoutError:
                raise SignInTimeoutError(wait_seconds) from None
        finally:
            await receiver.close()
        grant = await oauth.exchange_code(request, code)
        email = await fetch_email(self._settings, grant.access_token.get_secret_value())
        assert grant.refresh_token is not None  # exchange_code guarantees it
        await self._store.aset(email, grant.refresh_token)
        self._grants[email] = grant
        self._needs_sign_in.discard(email)
        if email not in self._emails:
            self._emails.append(email)
        self._active = email
        self._save()
        self._changed()
        return email

    def switch(self, email: str) -> None:
        """Make another listed account the active one."""
        if email not in self._emails:
            raise NotSignedInError()
        self._active = email
        self._save()
        self._changed()

    async def sign_out(self, email: str | None = None, *, everyone: bool = False) -> list[str]:
        """Revoke (best effort) and forget one account, or all; returns who was signed out."""
        targets = list(self._emails) if everyone else [email or self._active or ""]
        targets = [t for t in targets if t in self._emails]
        for target in targets:
            refresh_token = await self._store.aget(target)
            if refresh_token is not None and self._oauth is not None:
                await self._oauth.revoke(refresh_token)
            await self._store.adelete(target)
            self._grants.pop(target, None)
            self._needs_sign_in.discard(target)
            self._emails.remove(target)
        if self._active not in self._emails:
            self._active = self._emails[0] if self._emails else None
        self._save()
        self._changed()
        return targets

    # ---- TokenSource ----------------------------------------------------------------------

    async def access_token(self) -> str:
        email = self._active
        if email is None:
            raise NotSignedInError()
        if email in self._needs_sign_in:
            raise SignInAgainError(email)
        grant = self._grants.get(email)
        if grant is None or grant.expires_within(REFRESH_AHEAD_SECONDS):
            grant = await self._refresh(email)
        return grant.access_token.get_secret_value()

    async def token_rejected(self, token: str) -> str | None:
        email = self._active
        if email is None:
            return None
        grant = self._grants.get(email)
        if grant is not None and grant.access_token.get_secret_value() != token:
            return grant.access_token.get_secret_value()  # someone refreshed meanwhile
        self._grants.pop(email, None)
        try:
            return (await self._refresh(email)).access_token.get_secret_value()
        except InvalidGrantError:
            raise SignInAgainError(email) from None

    async def _refresh(self, email: str) -> Grant:
        """One refresh per account at a time; concurrent callers share its result."""
        pending = self._refreshing.get(email)
        if pending is None:
            pending = asyncio.ensure_future(self._do_refresh(email))
            self._refreshing[email] = pending
            pending.add_done_callback(lambda _: self._refreshing.pop(email, None))
        return await asyncio.shield(pending)

    async def _do_refresh(self, email: str) -> Grant:
        refresh_token = await self._store.aget(email)
        if refresh_token is None:
            self._mark_needs_sign_in(email)
            raise SignInAgainError(email)
        try:
            grant = await self._require_oauth().refresh(refresh_token)
        except InvalidGrantError:
            await self._store.adelete(email)  # it will never work again
            self._mark_needs_sign_in(email)
            raise
        self._grants[email] = grant
        return grant

    # ---- plumbing -------------------------------------------------------------------------

    def _require_oauth(self) -> GoogleOAuth:
        if self._oauth is None:
            from colabtray.auth.oauth import GoogleOAuth

            self._oauth = GoogleOAuth(self._settings)
        return self._oauth

    def _mark_needs_sign_in(self, email: str) -> None:
        self._grants.pop(email, None)
        if email not in self._needs_sign_in:
            log.info("an account needs to sign in again")
            self._needs_sign_in.add(email)
            self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def _load(self) -> tuple[list[str], str | None]:
        data = read_json(self._path)
        if not isinstance(data, dict):
            return [], None
        emails = [e for e in data.get("accounts", []) if isinstance(e, str) and "@" in e]
        active = data.get("active")
        return emails, active if active in emails else (emails[0] if emails else None)

    def _save(self) -> None:
        write_json(self._path, {"accounts": self._emails, "active": self._active})
