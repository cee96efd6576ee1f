"""Google sign-in: the consent page, the token endpoint, revocation and userinfo.

Strict where Google is (client credentials, the exact redirect URI, single-use codes that
expire after 60 s, PKCE) and stricter where colabtray wants to be held to it: PKCE with S256
is required, and redirect URIs must be loopback (the desktop-app flow).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import ipaddress
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from colabtray.emulator.guards import authenticate
from colabtray.emulator.state import EmulatorState
from colabtray.emulator.tokens import SCOPE_EMAIL, SCOPE_PROFILE, normalize_scopes
from colabtray.emulator.wire import html_page, oauth_error

CODE_TTL = 60.0
REQUEST_TTL = 600.0
PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class AuthRequest:
    """An authorization request waiting for the person at the browser."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str
    state: str | None
    login_hint: str | None
    expires_at: float


@dataclass
class AuthCode:
    email: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str
    expires_at: float


class AuthError(Exception):
    """A bad authorization request: Google shows an error page, it does not redirect."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def loopback_redirect(uri: str) -> bool:
    """``http://127.0.0.1:<port>[/path]``, ``http://[::1]:…`` or ``http://localhost…``."""
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return False
    if parts.scheme != "http" or parts.fragment or parts.username or parts.password:
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback and port is not None
    except ValueError:
        return False


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuth:
    """Handlers for accounts.google.com, oauth2.googleapis.com and the userinfo API."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._requests: dict[str, AuthRequest] = {}
        self._codes: dict[str, AuthCode] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/o/oauth2/v2/auth", self.authorize),
            web.get("/o/oauth2/auth", self.authorize),
            web.post("/o/oauth2/approval", self.approval),
            web.post("/token", self.token),
            web.post("/revoke", self.revoke),
            web.get("/oauth2/v2/userinfo", self.userinfo),
            web.get("/tokeninfo", self.tokeninfo),
            web.post("/tokeninfo", self.tokeninfo),
        ]

    # -- the consent page --------------------------------------------------------------------

    def _parse_request(self, request: web.Request) -> AuthRequest:
        q = request.query
        if q.get("client_id") != self.state.client_id:
            raise AuthError("invalid_client", "The OAuth client was not found.", 401)
        redirect_uri = q.get("redirect_uri", "")
        if not loopback_redirect(redirect_uri):
            raise AuthError(
                "redirect_uri_mismatch",
                "The redirect URI in the request does not match the ones authorized for the "
                "OAuth client (loopback http://127.0.0.1:PORT or http://localhost only).",
            )
        if q.get("response_type") != "code":
            raise AuthError("unsupported_response_type", "response_type must be 'code'.")
        if "scope" not in q:
            raise AuthError("invalid_request", "Missing required parameter: scope")
        scopes = normalize_scopes(q["scope"])
        if scopes is None:
            raise AuthError("invalid_scope", "Some requested scopes were invalid.")
        if q.get("code_challenge_method") != "S256":
            raise AuthError("invalid_request", "code_challenge_method must be S256.")
        challenge = q.get("code_challenge", "")
        if len(challenge) != 43 or not PKCE_RE.fullmatch(challenge):
            raise AuthError("invalid_request", "Invalid code_challenge.")
        if q.get("access_type", "offline") not in ("online", "offline"):
            raise AuthError("invalid_request", "Invalid access_type.")
        prompts = set(q.get("prompt", "").split())
        if not prompts <= {"none", "consent", "select_account"}:
            raise AuthError("invalid_request", "Invalid prompt.")
        return AuthRequest(
            client_id=q["client_id"],
            redirect_uri=redirect_uri,
            scopes=scopes,
            challenge=challenge,
            state=q.get("state"),
            login_hint=(q.get("login_hint") or "").lower() or None,
            expires_at=time.monotonic() + REQUEST_TTL,
        )

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        try:
            auth = self._parse_request(request)
        except AuthError as exc:
            return html_page(
                exc.status,
                f"Error {exc.status}: {exc.error}",
                f"<p id='error' data-error='{exc.error}'>{html.escape(exc.description)}</p>",
            )
        if self.state.config.auto_approve:
            email = auth.login_hint if auth.login_hint in self.state.accounts else None
            return self._redirect_with_code(auth, email or self.state.default_email)
        request_id = secrets.token_urlsafe(24)
        self._prune()
        self._requests[request_id] = auth
        choices = []
        for email, account in self.state.accounts.items():
            preferred = auth.login_hint or self.state.default_email
            checked = " checked" if email == preferred else ""
            choices.append(
                f'<label><input type="radio" name="account" value="{html.escape(email)}"'
                f"{checked}> {html.escape(account.name)} &lt;{html.escape(email)}&gt;</label><br>"
            )
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in auth.scopes)
        body = (
            "<p>Choose an account to continue to colabtray. It will be able to:</p>"
            f"<ul>{scopes}</ul>"
            '<form method="post" action="/o/oauth2/approval">'
            f'<input type="hidden" name="request" value="{request_id}">'
            + "".join(choices)
            + '<button type="submit" name="decision" value="allow" id="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
            "</form>"
        )
        return html_page(200, "Sign in with Google (emulator)", body)

    async def approval(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        auth = self._requests.pop(str(form.get("request", "")), None)
        if auth is None or auth.expires_at <= time.monotonic():
            return html_page(
                400, "Error 400: invalid_request", "<p>This sign-in request expired.</p>"
            )
        if form.get("decision") != "allow":
            query = {"error": "access_denied"}
            if auth.state is not None:
                query["state"] = auth.state
            raise web.HTTPFound(str(URL(auth.redirect_uri).update_query(query)))
        email = str(form.get("account", ""))
        if email not in self.state.accounts:
            return html_page(400, "Error 400: invalid_request", "<p>Unknown account.</p>")
        return self._redirect_with_code(auth, email)

    def _redirect_with_code(self, auth: AuthRequest, email: str) -> web.StreamResponse:
        code = "4/0Aemu" + secrets.token_urlsafe(40)
        self._codes[code] = AuthCode(
            email=email,
            client_id=auth.client_id,
            redirect_uri=auth.redirect_uri,
            scopes=auth.scopes,
            challenge=auth.challenge,
            expires_at=time.monotonic() + CODE_TTL,
        )
        query = {"code": code, "scope": " ".join(auth.scopes), "authuser": "0"}
        if auth.state is not None:
            query["state"] = auth.state
        raise web.HTTPFound(str(URL(auth.redirect_uri).update_query(query)))

    def expire_codes(self) -> int:
        """Make every unredeemed authorization code expire now (admin API); returns how many."""
        now = time.monotonic()
        live = [c for c in self._codes.values() if c.expires_at > now]
        for code in live:
            code.expires_at = now
        return len(live)

    def _prune(self) -> None:
        now = time.monotonic()
        self._requests = {k: r for k, r in self._requests.items() if r.expires_at > now}
        self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now}

    # -- the token endpoint ------------------------------------------------------------------

    def _client(self, request: web.Request, form: dict[str, str]) -> web.Response | str:
        """The authenticated client id, or the error response (body or HTTP Basic creds)."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return oauth_error(400, "invalid_request", "Malformed Authorization header.")
            client_id, _, secret = decoded.partition(":")
        if not client_id:
            return oauth_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        if client_id != self.state.client_id:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not secret:
            return oauth_error(400, "invalid_request", "client_secret is missing.")
        if not secrets.compare_digest(secret, self.state.client_secret):
            return oauth_error(401, "invalid_client", "Unauthorized")
        return client_id

    async def token(self, request: web.Request) -> web.Response:
        if request.content_type != FORM_TYPE:
            return oauth_error(400, "invalid_request", f"Content-Type must be {FORM_TYPE}.")
        form = {k: str(v) for k, v in (await request.post()).items()}
        client = self._client(request, form)
        if isinstance(client, web.Response):
            return client
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(client, form)
        if grant_type == "refresh_token":
            return self._refresh_grant(client, form)
        if not grant_type:
            return oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _code_grant(self, client_id: str, form: dict[str, str]) -> web.Response:
        value = form.get("code")
        if not value:
            return oauth_error(400, "invalid_request", "Missing required parameter: code")
        # Single use: any redemption attempt spends the code, successful or not.
        code = self._codes.pop(value, None)
        if code is None or code.expires_at <= time.monotonic() or code.client_id != client_id:
            return oauth_error(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if not verifier:
            return oauth_error(400, "invalid_grant", "Missing code verifier.")
        if not PKCE_RE.fullmatch(verifier) or not secrets.compare_digest(
            s256(verifier), code.challenge
        ):
            return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        grant = self.state.tokens.grant(code.email, client_id, code.scopes)
        access = self.state.tokens.mint(grant)
        return self._token_reply(access.value, grant.scopes, refresh_token=grant.refresh_token)

    def _refresh_grant(self, client_id: str, form: dict[str, str]) -> web.Response:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        access = self.state.tokens.refresh(refresh_token, client_id)
        if access is None:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        return self._token_reply(access.value, access.scopes, refresh_token=None)

    def _token_reply(
        self, access_token: str, scopes: tuple[str, ...], refresh_token: str | None
    ) -> web.Response:
        body: dict[str, object] = {
            "access_token": access_token,
            "expires_in": max(1, round(self.state.tokens.access_ttl)),
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- revocation and userinfo ---------------------------------------------------------------

    async def revoke(self, request: web.Request) -> web.Response:
        form = await request.post() if request.content_type == FORM_TYPE else {}
        token = str(form.get("token") or request.query.get("token") or "")
        if not token:
            return oauth_error(400, "invalid_request", "Missing required parameter: token")
        if not self.state.tokens.revoke(token):
            return oauth_error(400, "invalid_token", "Token expired or revoked")
        return web.json_response({})

    async def tokeninfo(self, request: web.Request) -> web.Response:
        """What a token holds, as oauth2.googleapis.com/tokeninfo says (GET with the token in
        the query, or POST with it in the form)."""
        form = await request.post() if request.content_type == FORM_TYPE else {}
        value = str(form.get("access_token") or request.query.get("access_token") or "")
        token = self.state.tokens.check(value)
        if isinstance(token, str) or token.email not in self.state.accounts:
            return oauth_error(400, "invalid_token", "Invalid Value")
        account = self.state.accounts[token.email]
        left = self.state.tokens.expires_in(token)
        body: dict[str, str] = {
            "azp": token.grant.client_id,
            "aud": token.grant.client_id,
            "sub": account.id,
            "scope": " ".join(token.scopes),
            "exp": str(int(time.time()) + left),
            "expires_in": str(left),
            "access_type": "offline" if token.grant.refresh_token else "online",
        }
        if SCOPE_EMAIL in token.scopes:
            body.update(email=account.email, email_verified="true")
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def userinfo(self, request: web.Request) -> web.Response:
        token = authenticate(request, self.state, "userinfo")
        account = self.state.accounts[token.email]
        body: dict[str, object] = {"id": account.id}
        if SCOPE_EMAIL in token.scopes:
            body.update(email=account.email, verified_email=True)
        if SCOPE_PROFILE in token.scopes:
            given, _, family = account.name.partition(" ")
            body.update(name=account.name, given_name=given)
            if family:
                body["family_name"] = family
        return web.json_response(body)
