"""The ways colabtray holds a Google account's tokens, behind one interface.

* ``oauth``: colabtray's own sign-in (the loopback flow with an OAuth client); the refresh
  token is in the OS keyring;
* ``gcloud``: the Google Cloud CLI's sign-in; gcloud is asked for each token;
* ``adc``: Application Default Credentials, refreshed by google-auth.

Each :class:`Identity` gives a fresh access token and knows how to be forgotten; the session
(:mod:`colabtray.core.session`) caches tokens, refreshes them once for all callers, and marks
an account "sign in again" when its identity raises CredentialsRefusedError.
A ready token (:class:`ReadyToken`: ``COLABTRAY_ACCESS_TOKEN`` or one pasted in the sign-in
window) is not an account: it lives in the app's memory for one run and cannot be refreshed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from colabtray.auth import gcloud
from colabtray.auth.errors import InvalidGrantError, SignInAgainError
from colabtray.auth.tokens import SecretStore
from colabtray.colab.wire import expires_within

if TYPE_CHECKING:
    from colabtray.auth.adc import AdcCredentials
    from colabtray.auth.oauth import GoogleOAuth

# gcloud does not say when its token expires: ask it again after this long (it hands out
# its cached token until that nears expiry), and at once when Colab refuses the token.
GCLOUD_TOKEN_LIFE = timedelta(minutes=5)


class Source(StrEnum):
    OAUTH = "oauth"
    GCLOUD = "gcloud"
    ADC = "adc"


SOURCE_LABELS = {
    Source.OAUTH: "colabtray's Google sign-in",
    Source.GCLOUD: "gcloud",
    Source.ADC: "Application Default Credentials",
}


@dataclass(frozen=True)
class Token:
    """An access token and when it stops working."""

    value: SecretStr
    expires_at: datetime

    def expires_within(self, seconds: float) -> bool:
        return expires_within(self.expires_at, seconds)


class Identity(Protocol):
    source: Source

    async def fresh_token(self) -> Token:
        """A new access token. CredentialsRefusedError (with a sentence) when this identity
        gives none until the person acts; other ColabErrors for passing trouble."""
        ...

    async def forget(self) -> str | None:
        """Sign out here; a sentence about what was left alone elsewhere, if anything."""
        ...


READY_FROM_ENVIRONMENT = "a ready access token (COLABTRAY_ACCESS_TOKEN)"
READY_PASTED = "a ready access token (memory only)"
READY_IN_DEMO = "the demo's account, on the local emulator (no Google account)"


@dataclass
class ReadyToken:
    """A ready access token for this run: a token source that cannot refresh, and whose it
    is once Google was asked (``email``)."""

    token: str
    how: str = READY_FROM_ENVIRONMENT
    email: str | None = None

    async def access_token(self) -> str:
        return self.token

    async def token_rejected(self, token: str) -> str | None:
        return None


class OAuthIdentity:
    """colabtray's own sign-in: a refresh token in the keyring."""

    source = Source.OAUTH

    def __init__(self, email: str, store: SecretStore, oauth: Callable[[], GoogleOAuth]) -> None:
        self.email = email
        self._store = store
        self._oauth = oauth

    async def fresh_token(self) -> Token:
        refresh_token = await self._store.aget(self.email)
        if refresh_token is None:
            raise _lost(self.email)
        try:
            grant = await self._oauth().refresh(refresh_token)
        except InvalidGrantError:
            await self._store.adelete(self.email)  # it will never work again
            raise
        return Token(grant.access_token, grant.expires_at)

    async def forget(self) -> str | None:
        refresh_token = await self._store.aget(self.email)
        if refresh_token is not None:
            await self._oauth().revoke(refresh_token)
        await self._store.adelete(self.email)
        return None


class GcloudIdentity:
    """gcloud's sign-in of one account (``gcloud auth print-access-token --account``), or of
    gcloud's active account when ``account`` is None."""

    source = Source.GCLOUD

    def __init__(self, account: str | None) -> None:
        self.account = account

    async def fresh_token(self) -> Token:
        value = await gcloud.print_access_token(self.account)
        return Token(SecretStr(value), datetime.now(UTC) + GCLOUD_TOKEN_LIFE)

    async def forget(self) -> str | None:
        return f"gcloud's own sign-in of {self.account or 'its account'} is left as it is."


class AdcIdentity:
    """Application Default Credentials from one file."""

    source = Source.ADC

    def __init__(self, credentials: AdcCredentials) -> None:
        self._credentials = credentials

    @property
    def path(self) -> Path:
        return self._credentials.path

    async def fresh_token(self) -> Token:
        value, expires_at = await self._credentials.fresh_token()
        return Token(SecretStr(value), expires_at)

    async def forget(self) -> str | None:
        return f"The Application Default Credentials in {self.path} are left as they are."


def _lost(email: str) -> SignInAgainError:
    return SignInAgainError(
        email, f"{email} needs to sign in again (its sign-in is no longer in the keyring)."
    )
