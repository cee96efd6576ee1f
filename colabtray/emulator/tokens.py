"""Grants, access tokens and refresh tokens, as Google's token service keeps them.

A *grant* is one user's consent to one OAuth client; it carries the refresh token and every
access token minted from it. Revoking any of its tokens revokes the whole grant (Google's
semantics: revoking an access token also revokes the refresh token it came from).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
SCOPE_COLAB = "https://www.googleapis.com/auth/colaboratory"
_ALIASES = {"email": SCOPE_EMAIL, "profile": SCOPE_PROFILE}
KNOWN_SCOPES = frozenset(
    {
        "openid",
        SCOPE_EMAIL,
        SCOPE_PROFILE,
        SCOPE_COLAB,
        "https://www.googleapis.com/auth/colaboratory.readonly",
        "https://www.googleapis.com/auth/drive.file",
        "https://www.googleapis.com/auth/cloud-platform",
        # What ``gcloud auth login`` and ``gcloud auth application-default login`` ask for
        # besides the above, so a gcloud played against the emulator can ask as the real one.
        "https://www.googleapis.com/auth/appengine.admin",
        "https://www.googleapis.com/auth/sqlservice.login",
        "https://www.googleapis.com/auth/compute",
        "https://www.googleapis.com/auth/accounts.reauth",
    }
)

TokenProblem = Literal["missing", "unknown", "expired", "revoked"]


# The emulator's credentials have Google's shapes (made at run time, "emu" in each), so that
# colabtray's log redaction and the tests' leak scans meet what Google really sends.
ACCESS_PREFIX = "ya29.emu-"
REFRESH_PREFIX = "1//0e-emu-"
CLIENT_SECRET_PREFIX = "GOCSPX-emu-"


def normalize_scopes(raw: str) -> tuple[str, ...] | None:
    """Expand ``email``/``profile`` as Google does; None if any scope is unknown or none given."""
    scopes = []
    for item in raw.split():
        scope = _ALIASES.get(item, item)
        if scope not in KNOWN_SCOPES:
            return None
        if scope not in scopes:
            scopes.append(scope)
    return tuple(sorted(scopes)) if scopes else None


@dataclass
class Grant:
    """One account's consent to one client."""

    email: str
    client_id: str
    scopes: tuple[str, ...]
    refresh_token: str | None
    static: bool = False
    revoked: bool = False
    access_tokens: list[AccessToken] = field(default_factory=list)


@dataclass
class AccessToken:
    """A bearer token; ``expires_at`` is on the store's monotonic clock (inf = never)."""

    value: str
    grant: Grant
    expires_at: float

    @property
    def email(self) -> str:
        return self.grant.email

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.grant.scopes


class TokenStore:
    """Issues, checks, refreshes and revokes tokens."""

    def __init__(self, access_ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.access_ttl = access_ttl
        self._clock = clock
        self._grants: list[Grant] = []
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, Grant] = {}

    def grant(self, email: str, client_id: str, scopes: Iterable[str]) -> Grant:
        """Record a consent and give it a refresh token."""
        grant = Grant(email, client_id, tuple(scopes), REFRESH_PREFIX + secrets.token_urlsafe(40))
        assert grant.refresh_token is not None
        self._grants.append(grant)
        self._refresh[grant.refresh_token] = grant
        return grant

    def static_token(self, email: str, client_id: str, scopes: Iterable[str]) -> AccessToken:
        """A token that never expires (revocable all the same), for scripts and tests."""
        grant = Grant(email, client_id, tuple(scopes), None, static=True)
        self._grants.append(grant)
        return self._mint(grant, math.inf)

    def mint(self, grant: Grant) -> AccessToken:
        """A new access token of ``access_ttl`` seconds for a live grant."""
        return self._mint(grant, self._clock() + self.access_ttl)

    def _mint(self, grant: Grant, expires_at: float) -> AccessToken:
        self._prune()
        token = AccessToken(ACCESS_PREFIX + secrets.token_urlsafe(48), grant, expires_at)
        grant.access_tokens.append(token)
        self._access[token.value] = token
        return token

    def expires_in(self, token: AccessToken) -> int:
        """Seconds left; a static token, which never expires, says an hour as Google's do."""
        if math.isinf(token.expires_at):
            return 3599
        return max(0, int(token.expires_at - self._clock()))

    def check(self, value: str | None) -> AccessToken | TokenProblem:
        """The live access token for a bearer value, or why it is not one."""
        if not value:
            return "missing"
        token = self._access.get(value)
        if token is None:
            return "unknown"
        if token.grant.revoked:
            return "revoked"
        if token.expires_at <= self._clock():
            return "expired"
        return token

    def refresh(self, refresh_token: str, client_id: str) -> AccessToken | None:
        """A new access token for a live refresh token issued to this client, else None."""
        grant = self._refresh.get(refresh_token)
        if grant is None or grant.revoked or grant.client_id != client_id:
            return None
        return self.mint(grant)

    def revoke(self, value: str) -> bool:
        """Revoke the grant behind an access or refresh token; False if there is none live."""
        grant = self._refresh.get(value)
        if grant is None:
            token = self._access.get(value)
            grant = token.grant if token and token.expires_at > self._clock() else None
        if grant is None or grant.revoked:
            return False
        grant.revoked = True
        return True

    def revoke_account(self, email: str) -> int:
        """Revoke every grant of an account (the static token too); returns how many."""
        count = 0
        for grant in self._grants:
            if grant.email == email and not grant.revoked:
                grant.revoked = True
                count += 1
        return count

    def expire_access(self, email: str | None = None, *, include_static: bool = False) -> int:
        """Make live access tokens expire now (refresh tokens stay good); returns how many."""
        now = self._clock()
        count = 0
        for token in self._access.values():
            if email is not None and token.email != email:
                continue
            if token.grant.static and not include_static:
                continue
            if token.expires_at > now:
                token.expires_at = now
                count += 1
        return count

    def _prune(self) -> None:
        """Forget long-dead access tokens so memory stays bounded over a long demo."""
        if len(self._access) < 10_000:
            return
        horizon = self._clock() - 3600
        for value, token in list(self._access.items()):
            if token.expires_at < horizon:
                del self._access[value]
                token.grant.access_tokens.remove(token)
