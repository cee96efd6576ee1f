"""Google OAuth for an installed app: authorization URL with PKCE, code exchange, refresh, revoke.

Authlib does the OAuth; this module only adds Google's parameters and turns its outcomes
into typed errors with sentences. Tokens are handed around as ``SecretStr`` so that a stray
repr or log line shows stars.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from pydantic import SecretStr

from colabtray.auth.errors import InvalidGrantError, SignInError
from colabtray.colab.errors import BackendUnavailableError
from colabtray.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthorizationRequest:
    """One sign-in attempt: where to send the browser and what must come back."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str


@dataclass(frozen=True)
class Grant:
    """What the token endpoint gave us."""

    access_token: SecretStr
    expires_at: datetime
    refresh_token: SecretStr | None
    scope: str

    def expires_within(self, seconds: float) -> bool:
        return datetime.now(UTC) + timedelta(seconds=seconds) >= self.expires_at


class GoogleOAuth:
    """The OAuth client colabtray is registered as (``COLABTRAY_CLIENT_ID`` / ``_SECRET``)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.client_id:
            raise SignInError(
                "No OAuth client is configured: set COLABTRAY_CLIENT_ID (and "
                "COLABTRAY_CLIENT_SECRET) to a Google OAuth client for a desktop app."
            )
        self._settings = settings

    def _client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        secret = self._settings.client_secret
        return AsyncOAuth2Client(
            client_id=self._settings.client_id,
            client_secret=secret.get_secret_value() if secret else None,
            # Google's installed-app clients send the secret in the form body.
            token_endpoint_auth_method="client_secret_post" if secret else "none",
            revocation_endpoint_auth_method="client_secret_post" if secret else "none",
            scope=" ".join(self._settings.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self._settings.request_timeout,
        )

    def authorization_request(
        self, redirect_uri: str, login_hint: str | None = None
    ) -> AuthorizationRequest:
        """A fresh URL with a 256-bit state and a PKCE S256 challenge."""
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
        extra = {"access_type": "offline", "prompt": "consent"}
        if login_hint:
            extra["login_hint"] = login_hint
        url, _ = self._client(redirect_uri).create_authorization_url(
            self._settings.oauth_auth_url, state=state, code_verifier=verifier, **extra
        )
        return AuthorizationRequest(url, state, verifier, redirect_uri)

    async def exchange_code(self, request: AuthorizationRequest, code: str) -> Grant:
        """Trade the authorization code (with its PKCE verifier) for tokens."""
        async with self._client(request.redirect_uri) as client:
            token = await _call(
                "finishing sign-in",
                refused=SignInError(
                    "Google refused the sign-in code (already used or expired); sign in again."
                ),
                pending=client.fetch_token(
                    self._settings.oauth_token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=request.code_verifier,
                ),
            )
        grant = _grant(token)
        if grant.refresh_token is None:
            raise SignInError("Google did not grant offline access; sign in again.")
        return grant

    async def refresh(self, refresh_token: SecretStr) -> Grant:
        """A new access token; InvalidGrantError when the grant was revoked or expired."""
        async with self._client() as client:
            token = await _call(
                "renewing the sign-in",
                refused=InvalidGrantError(),
                pending=client.refresh_token(
                    self._settings.oauth_token_url,
                    refresh_token=refresh_token.get_secret_value(),
                ),
            )
        grant = _grant(token)
        if grant.refresh_token is None:  # Google does not rotate refresh tokens; keep ours
            grant = Grant(grant.access_token, grant.expires_at, refresh_token, grant.scope)
        return grant

    async def revoke(self, token: SecretStr) -> bool:
        """Best effort: True if Google confirmed the revocation."""
        try:
            async with self._client() as client:
                response = await client.revoke_token(
                    self._settings.oauth_revoke_url, token=token.get_secret_value()
                )
        except (httpx2.HTTPError, OAuthError) as exc:
            log.info("could not revoke the token: %s", type(exc).__name__)
            return False
        return response.status_code == 200


async def _call(what: str, *, refused: SignInError, pending: object) -> dict[str, object]:
    """Await an Authlib call; ``refused`` is raised when Google says the grant is no good."""
    try:
        return await pending  # type: ignore[misc]
    except OAuthError as exc:
        if exc.error in ("invalid_grant", "unauthorized_client", "invalid_client"):
            raise refused from None
        raise SignInError(f"Google refused {what} ({exc.error}).") from None
    except httpx2.TimeoutException:
        raise BackendUnavailableError(what, "timed out") from None
    except httpx2.TransportError:
        raise BackendUnavailableError(what, "connection failed") from None
    except ValueError:  # a reply that is not JSON
        raise SignInError(f"Google answered {what} with something unreadable.") from None


def _grant(token: dict[str, object]) -> Grant:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise SignInError("Google's reply had no access token; sign in again.")
    expires_in = token.get("expires_in")
    seconds = float(expires_in) if isinstance(expires_in, int | float | str) else 3600.0
    refresh = token.get("refresh_token")
    return Grant(
        access_token=SecretStr(access),
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        refresh_token=SecretStr(refresh) if isinstance(refresh, str) and refresh else None,
        scope=str(token.get("scope", "")),
    )
