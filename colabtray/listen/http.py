"""The aiohttp side of every HTTP listener: served through a ConnectionGuard, and the checks a
request passes before its handler sees it.

:func:`admit` answers, for any listener, what no handler should have to think about: an HTTP
version other than 1.0 or 1.1 (505, also when the parser refuses the version before any
handler runs), a method no Jupyter or OAuth client uses (405), a request target that is not a
path (400), a second ``Host`` or ``Origin`` header (400: which one would a check read?).
Everything else gets the parsed :class:`Target`.
Use :func:`guarded` around a low-level handler (``web.Server``) or :func:`middleware` in an
``Application``; serve either with :class:`GuardedSite`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from colabtray.listen import targets
from colabtray.listen.connections import ConnectionGuard
from colabtray.listen.targets import Target

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ALLOW = ", ".join(sorted(METHODS))
# Headers a request may carry once: the checks read one value, a client must not pick which.
_ONCE = ("Host", "Origin")
# What llhttp (aiohttp's C parser) says of a well-formed "HTTP/x.y" it does not speak, such as
# HTTP/1.2; aiohttp's pure-Python parser takes any x.y and leaves it to admit().
_UNSUPPORTED_VERSION = "Invalid HTTP version"


def _raw_answer(status: str, text: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, written before any parsing."""
    body = f"{status}: {text}\n".encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


# What a guard sends to a connection it has no room for.
BUSY = _raw_answer("503 Service Unavailable", "too many connections at once, try again")
_VERSION_REFUSAL = _raw_answer("505 HTTP Version Not Supported", "speak HTTP/1.1 here")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
TargetHandler = Callable[[web.BaseRequest, Target], Awaitable[web.StreamResponse]]


class _KindOnly(logging.Filter):
    """aiohttp logs a request it cannot parse with the raw request line, which may hold a
    secret (``?token=…``): keep the message and the error's kind, drop the details. A client's
    bad request is not colabtray's error, so it is logged at INFO. (Errors of colabtray's own
    handlers keep their traceback: no secret is part of what they raise.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()} ({type(error).__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


# The server side of every listener logs through this logger, never aiohttp.server. Its
# filter is installed by the first GuardedSite (every listener's), not when this is imported.
server_log = logging.getLogger("colabtray.listen.http")


def _quiet_server_log() -> None:
    """Give ``server_log`` its :class:`_KindOnly` filter, once."""
    if not any(isinstance(f, _KindOnly) for f in server_log.filters):
        server_log.addFilter(_KindOnly())


def refusal(status: int, sentence: str, **headers: str) -> web.Response:
    """A one-line plain-text refusal: ``"<status> <sentence>"``."""
    return web.Response(status=status, text=f"{status} {sentence}\n", headers=headers or None)


def admit(request: web.BaseRequest) -> Target | web.StreamResponse:
    """The request's target, or the response that refuses the request."""
    if request.version != HttpVersion11 and request.version != HttpVersion10:
        return _refuse_version(request)
    if request.method not in METHODS:
        return refusal(
            405, f"Method Not Allowed: {request.method} is not served here", Allow=_ALLOW
        )
    for name in _ONCE:
        if len(request.headers.getall(name, ())) > 1:
            return refusal(400, f"Bad Request: the request has more than one {name} header")
    target = targets.parse(request.raw_path)
    if target is None:
        return refusal(400, "Bad Request: the request target must be a path such as /api")
    return target


def _refuse_version(request: web.BaseRequest) -> web.StreamResponse:
    """505, said in HTTP/1.1 (aiohttp would answer in the version the client claimed)."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        transport.write(_VERSION_REFUSAL)
        transport.close()
    return web.Response(status=505)  # never written: the connection is closed


class _Protocol(RequestHandler):
    """aiohttp's connection protocol, except that a request line in an HTTP version the parser
    refuses (HTTP/1.2) is answered 505 like any other version but 1.0 and 1.1, not 400."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, BadStatusLine) and _UNSUPPORTED_VERSION in (message or ""):
            return _refuse_version(request)
        return super().handle_error(request, status, exc, message)


def _protocols(server: web.Server) -> Callable[[], RequestHandler]:
    """``server``'s protocol factory, making :class:`_Protocol` connections."""

    def make() -> RequestHandler:
        handler = server()
        if type(handler) is RequestHandler:
            handler.__class__ = _Protocol  # the same slots: only handle_error differs
        return handler

    return make


def guarded(guard: ConnectionGuard, handler: TargetHandler) -> Handler:
    """A low-level (``web.Server``) handler behind :func:`admit`, busy under ``guard``."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        with guard.serving(request.transport):
            verdict = admit(request)
            if isinstance(verdict, web.StreamResponse):
                return verdict
            return await handler(request, verdict)

    return handle


def middleware(guard: ConnectionGuard) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The same for an ``Application``; the target is in ``request["target"]``.

    A body that is not the text it claims to be (a form or JSON reader's UnicodeDecodeError)
    is the client's error, answered 400, whichever handler read it.
    """

    @web.middleware
    async def admitted(request: web.Request, handler: Handler) -> web.StreamResponse:
        with guard.serving(request.transport):
            verdict = admit(request)
            if isinstance(verdict, web.StreamResponse):
                return verdict
            request["target"] = verdict
            try:
                return await handler(request)
            except UnicodeDecodeError:
                return refusal(400, "Bad Request: the request body is not valid text")

    return admitted


class GuardedSite(web.BaseSite):
    """Serves a runner on a listening socket, every connection under ``guard``.

    Like aiohttp's ``SockSite``, but the protocol factory goes through the guard (and a TLS
    handshake must finish within the guard's head timeout).
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        guard: ConnectionGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._sock = sock
        self._guard = guard
        _quiet_server_log()

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocols(_protocols(server)),
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._guard.head_timeout if self._ssl_context else None,
        )
