"""Checks every backend request must pass: ``authuser=0``, a live bearer token, its scopes.

A failed check raises :class:`Rejected` carrying the exact response Google would give; the
``rejections`` middleware turns it into that response.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from colabtray.emulator.requestlog import Handler
from colabtray.emulator.state import EmulatorState
from colabtray.emulator.tokens import SCOPE_COLAB, SCOPE_EMAIL, AccessToken
from colabtray.emulator.wire import google_error

MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential."
)


class Rejected(Exception):
    """Stop handling a request and answer with ``response``."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def reject(status: int, message: str, reason: str | None = None) -> Rejected:
    return Rejected(google_error(status, message, reason))


@web.middleware
async def rejections(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Rejected as rejected:
        return rejected.response


def require_authuser(request: web.Request) -> None:
    """The colab host serves only requests naming browser account 0."""
    if request.query.getall("authuser", []) != ["0"]:
        raise reject(400, "The request must carry the query parameter authuser=0.")


def bearer_value(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(
    request: web.Request, state: EmulatorState, host: Literal["colab", "gapi", "userinfo"]
) -> AccessToken:
    """The live access token of the request, with the scopes ``host`` demands.

    The colab host wants ``userinfo.email`` (Google's CLI saw 401 without it); GAPI wants
    ``colaboratory`` (403 ``SCOPE_NOT_PERMITTED`` without it).
    """
    if "Authorization" not in request.headers:
        raise reject(401, MISSING_CREDENTIALS, "CREDENTIALS_MISSING")
    checked = state.tokens.check(bearer_value(request))
    if isinstance(checked, str) or checked.email not in state.accounts:
        reason = "ACCESS_TOKEN_EXPIRED" if checked == "expired" else None
        raise reject(401, INVALID_CREDENTIALS, reason)
    scope = {"colab": SCOPE_EMAIL, "gapi": SCOPE_COLAB}.get(host)
    if scope and scope not in checked.scopes:
        if host == "colab":
            raise reject(401, INVALID_CREDENTIALS)
        # What Colab's API host answered Google's own CLI without colaboratory (2026-04-30).
        raise reject(403, "Request had insufficient authentication scopes.", "SCOPE_NOT_PERMITTED")
    return checked
