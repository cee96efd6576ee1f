"""Google OAuth for an installed app: authorization URL with PKCE, code exchange, refresh, revoke.

Authlib writes the OAuth messages (the authorization URL, the token request bodies, the PKCE
challenge); httpx2 sends them; this module adds Google's parameters and turns the outcomes
into typed errors with sentences. (Authlib's httpx integration would also send them, but
importing it loads OAuth 1, JWT assertions and ``cryptography``: 13 MB of resident memory
in a tray app that needs none of them; see benchmarks/tray.py.) Tokens are handed around as
``SecretStr`` so that a stray repr or log line shows stars.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pydantic import SecretStr

from colabtray.auth.client_file import OAuthClient, configured_client
from colabtray.auth.errors import InvalidGrantError, NoSignInMethodError, SignInError
from colabtray.colab.errors import BackendUnavailableError, connection_failed
from colabtray.settings import Settings
from colabtray.system import trust

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


class GoogleOAuth:
    """Sign-in with an OAuth client of the user's (:mod:`colabtray.auth.client_file` says
    which); NoSignInMethodError, listing the other ways, when there is none."""

    def __init__(self, settings: Settings, client: OAuthClient | None = None) -> None:
        client = client or configured_client(settings)
        if client is None:
            from colabtray.auth.methods import other_ways

            raise NoSignInMethodError(other_ways())
        self._settings = settings
        self.client = client
        # The endpoints a setting names win; else the client file's; else Google's.
        chosen = settings.model_fields_set
        self._auth_url = (
            client.auth_uri
            if client.auth_uri and "oauth_auth_url" not in chosen
            else settings.oauth_auth_url
        )
        self._token_url = (
            client.token_uri
            if client.token_uri and "oauth_token_url" not in chosen
            else settings.oauth_token_url
        )

    def _client_credentials(self) -> dict[str, str]:
        """Google's installed-app clients send their id (and secret) in the form body."""
        fields = {"client_id": self.client.client_id}
        if self.client.client_secret:
            fields["client_secret"] = self.client.client_secret.get_secret_value()
        return fields

    def authorization_request(
        self, redirect_uri: str, login_hint: str | None = None
    ) -> AuthorizationRequest:
        """A fresh URL with a 256-bit state and a PKCE S256 challenge."""
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
        url = prepare_grant_uri(
            self._auth_url,
            self.client.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(self._settings.oauth_scopes),
            # Keep what this client was granted before (a scope added later is asked for
            # alone, and the account's earlier consent stays).
            include_granted_scopes="true",
            state=state,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            access_type="offline",
            prompt="consent",
            login_hint=login_hint,  # left out when None
        )
        return AuthorizationRequest(url, state, verifier, redirect_uri)

    async def exchange_code(self, request: AuthorizationRequest, code: str) -> Grant:
        """Trade the authorization code (with its PKCE verifier) for tokens."""
        body = prepare_token_request(
            "authorization_code",
            redirect_uri=request.redirect_uri,
            code=code,
            code_verifier=request.code_verifier,
            **self._client_credentials(),
        )
        token = await self._token_request(
            "finishing sign-in",
            body,
            refused=SignInError(
                "Google refused the sign-in code (already used or expired); sign in again."
            ),
        )
        grant = _grant(token)
        if grant.refresh_token is None:
            raise SignInError("Google did not grant offline access; sign in again.")
        return grant

    async def refresh(self, refresh_token: SecretStr) -> Grant:
        """A new access token; InvalidGrantError when the grant was revoked or expired."""
        body = prepare_token_request(
            "refresh_token",
            refresh_token=refresh_token.get_secret_value(),
            **self._client_credentials(),
        )
        token = await self._token_request("renewing the sign-in", body, refused=InvalidGrantError())
        grant = _grant(token)
        if grant.refresh_token is None:  # Google does not rotate refresh tokens; keep ours
            grant = Grant(grant.access_token, grant.expires_at, refresh_token, grant.scope)
        return grant

    async def revoke(self, token: SecretStr) -> bool:
        """Best effort: True if Google confirmed the revocation."""
        form = {"token": token.get_secret_value(), **self._client_credentials()}
        try:
            async with self._http() as http:
                response = await http.post(self._settings.oauth_revoke_url, data=form)
        except httpx2.HTTPError as exc:
            log.info("could not revoke the token: %s", type(exc).__name__)
            return False
        return response.status_code == 200

    def _http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            timeout=self._settings.request_timeout,
            headers={"Accept": "application/json"},
            verify=trust.verification(self._settings),
        )

    async def _token_request(
        self, what: str, body: str, *, refused: SignInError
    ) -> dict[str, object]:
        """POST a token request; ``refused`` is raised when Google says the grant is no good."""
        try:
            async with self._http() as http:
                response = await http.post(
                    self._token_url,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
        except httpx2.TimeoutException:
            raise BackendUnavailableError(what, "timed out") from None
        except httpx2.TransportError as exc:
            raise connection_failed(what, exc, "connection failed") from None
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if isinstance(reply, dict) and isinstance(reply.get("error"), str):
            if reply["error"] in ("invalid_grant", "unauthorized_client", "invalid_client"):
                raise refused
            raise SignInError(f"Google refused {what} ({reply['error']}).")
        if response.status_code >= 500:
            raise BackendUnavailableError(what, f"HTTP {response.status_code}")
        if response.status_code != 200 or not isinstance(reply, dict):
            raise SignInError(f"Google answered {what} with something unreadable.")
        return reply


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
