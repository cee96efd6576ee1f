"""The one-shot loopback receiver that catches Google's redirect after sign-in.

It listens on 127.0.0.1 at a port the OS picks, answers exactly one redirect that carries the
expected ``state``, and then closes. Anything else a local process or web page sends gets an
error page and changes nothing: the real redirect still completes afterwards. Its connections
are held under a guard (:mod:`colabtray.listen`) like every listener's.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
from importlib import resources

from aiohttp import web

from colabtray.auth.errors import SignInDeclinedError, SignInError
from colabtray.listen.connections import ConnectionGuard, listening_socket
from colabtray.listen.http import BUSY, GuardedSite, guarded, server_log
from colabtray.listen.targets import Target

log = logging.getLogger(__name__)

_PAGES = resources.files("colabtray.resources")


def _page(title: str, text: str, color: str) -> str:
    """The one result page, filled in (HTML-escaped)."""
    page = (_PAGES / "signin-page.html").read_text(encoding="utf-8")
    for key, value in {"title": title, "text": text, "color": color}.items():
        page = page.replace("{{" + key + "}}", html.escape(value))
    return page


def _success_page() -> str:
    return _page(
        "You are signed in",
        "colabtray is signed in to Google. You can close this tab and go back to your editor.",
        "#1e8e3e",
    )


def _declined_page() -> str:
    return _page(
        "You declined",
        "colabtray was not given access. Nothing changed; you can close this tab and sign in "
        "again from the tray whenever you like.",
        "#b06000",
    )


def _error_page(reason: str) -> str:
    return _page(
        "Sign-in did not complete",
        f"{reason} You can close this tab and start again from the tray.",
        "#c5221f",
    )


class LoopbackReceiver:
    """Waits for ``GET /?state=…&code=…`` on ``http://127.0.0.1:PORT/``."""

    def __init__(self, expected_state: str | None = None) -> None:
        self._state = expected_state
        self._result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._runner: web.ServerRunner | None = None
        self.port = 0

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def expect(self, state: str) -> None:
        self._state = state

    async def start(self) -> str:
        """Bind to 127.0.0.1 on a free port; returns the redirect URI."""
        guard = ConnectionGuard("sign-in receiver", limit=64, refusal=BUSY)
        # handler_cancellation: a client that hangs up early cancels only its own handler.
        server = web.Server(
            guarded(guard, self._handle),
            access_log=None,
            logger=server_log,
            handler_cancellation=True,
            max_field_size=16 * 1024,
        )
        self._runner = web.ServerRunner(server)
        await self._runner.setup()
        sock = listening_socket("127.0.0.1", 0)
        await GuardedSite(self._runner, sock, guard).start()
        self.port = sock.getsockname()[1]
        return self.redirect_uri

    async def wait(self) -> str:
        """The authorization code; SignInDeclinedError or SignInError from the redirect."""
        return await asyncio.shield(self._result)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if not self._result.done():
            self._result.cancel()

    async def _handle(self, request: web.BaseRequest, target: Target) -> web.Response:
        if request.method != "GET":
            return _html(405, _error_page("Only GET is allowed here."), headers={"Allow": "GET"})
        if target.path != "/":
            return _html(404, _error_page("There is nothing here."))
        if request.headers.get("Host") not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return _html(400, _error_page("Unexpected Host header."))
        query = request.query
        state = query.get("state", "")
        if self._state is None or not hmac.compare_digest(
            state.encode("utf-8", "surrogateescape"), self._state.encode()
        ):
            log.info("loopback receiver: ignored a request without the expected state")
            return _html(400, _error_page("This sign-in link is not valid."))
        if self._result.done():
            return _html(400, _error_page("Sign-in has already finished."))
        error = query.get("error")
        code = query.get("code", "")
        if error == "access_denied":
            self._result.set_exception(SignInDeclinedError())
            return _html(200, _declined_page())
        if error or not code:
            self._result.set_exception(
                SignInError(f"Google did not sign you in ({(error or 'no code')[:60]}).")
            )
            return _html(400, _error_page("Google did not sign you in."))
        self._result.set_result(code)
        return _html(200, _success_page())


def _html(status: int, body: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Frame-Options": "DENY",
            **(headers or {}),
        },
    )
