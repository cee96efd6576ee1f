"""One runtime served as a plain Jupyter server on a loopback port of its own.

Every request passes :mod:`colabtray.bridge.guard` first; a refused one gets 403 and a
one-line reason, and nothing reaches the runtime. Admitted requests go to the runtime's proxy
URL with the runtime proxy token added and the bridge's secret, cookies and origin removed;
bodies stream both ways in large chunks (never read whole), compressed bytes pass as they are,
and WebSocket frames are copied one by one (text and binary, the subprotocol the runtime
chose), with kernel channels watched for Colab's credentials requests. A runtime that is gone
answers 502 "this Colab runtime was disconnected".

A port per runtime (rather than a path per runtime on one port) keeps the runtime's own
absolute paths (``/lab``, ``/static/…``, ``/api/…``) valid, so JupyterLab's page works through
the bridge unchanged, and the URL is a plain server URL for every editor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
import weakref
from collections.abc import AsyncIterator, Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import unquote_plus, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from colabtray.bridge import guard
from colabtray.bridge.kernel_messages import V1_PROTOCOL, Credentials, KernelChannel
from colabtray.bridge.upstream import Upstream
from colabtray.colab import errors
from colabtray.colab.models import Runtime

log = logging.getLogger(__name__)

PROXY_TOKEN_HEADER = "X-Colab-Runtime-Proxy-Token"
GONE_SENTENCE = "this Colab runtime was disconnected"
UNTRUSTED_SENTENCE = (
    "the Colab runtime's TLS certificate is not trusted, so nothing was sent to it "
    "(the system's certificates and the ca_file setting decide)"
)
# How much of a large body may wait in the bridge (read side and write side) before it stops
# reading: big enough for few wake-ups per megabyte, small enough to bound memory.
CHUNK = 1024 * 1024
# Replies up to this size (with a known length) are sent in one piece rather than streamed.
SMALL_BODY = 64 * 1024
# Bodies up to this size are read first, so a request the runtime refuses with 401 (token
# revoked early) can be sent again with a fresh token; bigger ones stream and are not retried.
RETRY_BODY_LIMIT = 1024 * 1024

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded to the runtime: the bridge's own credentials and the browser's context
# (the bridge has checked Origin itself; the runtime sees a client like Google's extension).
_REQUEST_DROP = _HOP_BY_HOP | {
    "host",
    "authorization",
    "cookie",
    "origin",
    "referer",
    "expect",
    PROXY_TOKEN_HEADER.lower(),
}
_WS_DROP = _REQUEST_DROP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "content-length",
}
_RESPONSE_DROP = _HOP_BY_HOP | {PROXY_TOKEN_HEADER.lower()}
# Query parameters that would carry the bridge secret or a runtime token from the client.
_QUERY_DROP = frozenset({guard.TOKEN_PARAM, "colab-runtime-proxy-token"})
_KERNEL_CHANNELS = re.compile(r"^/api/kernels/([^/]+)/channels$")


def upstream_path(raw_path: str) -> str:
    """The raw (still percent-encoded) path and query, minus the token parameters."""
    path, sep, query = raw_path.partition("?")
    if not sep:
        return path
    kept = [
        pair
        for pair in query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in _QUERY_DROP
    ]
    return path + ("?" + "&".join(kept) if kept else "")


def environment_proxy(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, unless
    ``NO_PROXY`` exempts its host, as the rest of colabtray honours them.

    Asked once per runtime address rather than by aiohttp on every request (its
    ``trust_env`` looks up the environment and netrc in a worker thread each time, which
    cost the small REST call about half a millisecond).
    """
    parts = urlsplit(url)
    proxies = getproxies_environment()
    if not parts.hostname or proxy_bypass_environment(parts.hostname, proxies):
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None


def _forward_headers(headers: CIMultiDictProxy[str], drop: frozenset[str]) -> CIMultiDict[str]:
    named = {p.strip().lower() for p in headers.get("Connection", "").split(",") if p.strip()}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in drop and lower not in named:
            out.add(name, value)
    return out


class _KindOnly(logging.Filter):
    """aiohttp's server logs a malformed request with its raw request line, which may hold
    ``?token=…``: keep the message and the error's kind, drop the details. A client's bad
    request is not colabtray's error, so it is logged at INFO. (Errors of the bridge itself
    keep their traceback: the secret is never part of what it raises.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()} ({type(error).__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


# The server side of every bridge port logs through this logger, never aiohttp.server.
_server_log = logging.getLogger("colabtray.bridge.http")
_server_log.addFilter(_KindOnly())


async def _replayable_body(request: web.BaseRequest) -> bytes | AsyncIterator[bytes] | None:
    """The request's body: bytes when it is small enough to send twice (again after a 401),
    else a stream that can go once."""
    if not request.body_exists:
        return None
    length = request.content_length
    if length is not None:
        return await request.read() if length <= RETRY_BODY_LIMIT else _stream(request.content)
    # Chunked, so no length was given: read up to the limit to find out.
    try:
        head = await request.content.readexactly(RETRY_BODY_LIMIT + 1)
    except asyncio.IncompleteReadError as whole:
        return whole.partial
    return _stream(request.content, head)


async def _stream(rest: aiohttp.StreamReader, head: bytes = b"") -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest.iter_chunked(CHUNK):
        yield chunk


async def _continue(request: web.BaseRequest) -> None:
    """Tell a client that waits before sending its body to go ahead (as aiohttp's router
    does; the bridge uses the low-level server, which leaves it to the handler)."""
    if request.version >= aiohttp.HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the reply proper has not started


def _refusal(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=f"{status} {reason}\n")


class RuntimeServer:
    """The listener and forwarding of one bridged runtime (runs on the bridge's loop)."""

    def __init__(
        self,
        endpoint: str,
        *,
        secret: str,
        upstream: Upstream,
        session: aiohttp.ClientSession,
        credentials: Credentials,
        client_agent: str,
        on_activity: Callable[[str], None],
        on_gone: Callable[[str], None],
    ) -> None:
        self.endpoint = endpoint
        self.port = 0
        self._secret = secret
        self._upstream = upstream
        self._session = session
        self._credentials = credentials
        self._client_agent = client_agent
        self._on_activity = on_activity
        self._on_gone = on_gone
        self.gone = False
        self._runner: web.ServerRunner | None = None
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._runtime_cookies: set[str] = {"_xsrf"}
        self._answered: dict[tuple[str, str], float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._proxies: dict[str, str | None] = {}  # runtime proxy URL → HTTP proxy to use

    # ---- lifecycle ------------------------------------------------------------------------

    async def start_on(self, sock: socket.socket) -> None:
        """Serve the listening socket ``sock`` (bound by the caller, closed by :meth:`stop`)."""
        # aiohttp's low-level server: every path comes to _handle, with no router or
        # middleware in between. (aiohttp sets TCP_NODELAY on each connection it serves or
        # opens; kernel round trips depend on it, test-environment.md.)
        server = web.Server(
            self._handle,
            max_field_size=65536,
            access_log=None,
            logger=_server_log,
            auto_decompress=False,
        )
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        self._upstream.start_refreshing()

    def mark_gone(self) -> None:
        """From now on every request is answered 502 (the runtime was disconnected)."""
        if not self.gone:
            self.gone = True
            for ws in list(self._sockets):
                task = asyncio.create_task(ws.close(code=1001, message=GONE_SENTENCE.encode()))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        """Close every WebSocket and the listener; idempotent."""
        await self._upstream.stop()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"bridge closed"), 1)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- requests -------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        verdict = guard.check(
            port=self.port,
            secret=self._secret,
            host=request.headers.get("Host"),
            origin=request.headers.get("Origin"),
            query_tokens=request.query.getall(guard.TOKEN_PARAM, []),
            authorization=request.headers.get("Authorization"),
            cookie=request.headers.get("Cookie"),
        )
        if not verdict.ok:
            log.info("refused %s %s on %s: %s", request.method, request.path, self.endpoint,
                     verdict.reason)  # fmt: skip
            return _refusal(403, f"Forbidden: {verdict.reason}")
        if self.gone:
            return _refusal(502, f"Bad Gateway: {GONE_SENTENCE}")
        self._on_activity(self.endpoint)
        if request.headers.get("Expect", "").lower() == "100-continue":
            await _continue(request)
        path = upstream_path(request.raw_path)
        try:
            if (
                request.method == "GET"
                and request.headers.get("Upgrade", "").lower() == "websocket"
            ):
                response = await self._websocket(request, path)
            else:
                response = await self._http(request, path, set_cookie=verdict.by_query)
        except errors.RuntimeGoneError:
            self._gone()
            return _refusal(502, f"Bad Gateway: {GONE_SENTENCE}")
        except errors.ColabError as exc:
            return _refusal(503, f"Service Unavailable: {exc.message}")
        finally:
            self._on_activity(self.endpoint)
        return response

    def _gone(self) -> None:
        self.mark_gone()
        self._on_gone(self.endpoint)

    def _headers(self, request: web.BaseRequest, runtime: Runtime, drop: frozenset[str]) -> Any:
        headers = _forward_headers(request.headers, drop)
        cookies = self._cookies_for_runtime(request.headers.get("Cookie"))
        if cookies:
            headers["Cookie"] = cookies
        assert runtime.proxy is not None
        headers[PROXY_TOKEN_HEADER] = runtime.proxy.token.get_secret_value()
        headers["X-Colab-Client-Agent"] = self._client_agent
        return headers

    def _cookies_for_runtime(self, header: str | None) -> str:
        """Only cookies the runtime itself set: not the bridge's, not other local apps'."""
        if not header:
            return ""
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            return ""
        return "; ".join(
            f"{name}={morsel.coded_value}"
            for name, morsel in jar.items()
            if name in self._runtime_cookies
        )

    def _url(self, runtime: Runtime, path: str) -> URL:
        assert runtime.proxy is not None
        return URL(runtime.proxy.url.rstrip("/") + path, encoded=True)

    def _via(self, runtime: Runtime) -> str | None:
        """The HTTP proxy between the bridge and this runtime, if the environment names one."""
        assert runtime.proxy is not None
        base = runtime.proxy.url
        if base not in self._proxies:
            self._proxies = {base: environment_proxy(base)}  # one address at a time
        return self._proxies[base]

    async def _broken(self, exc: aiohttp.ClientError) -> web.Response:
        """The runtime's proxy did not answer: gone, untrusted, or just unreachable?"""
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            # The handshake failed, so no request (and no runtime token) went out.
            log.warning(
                "runtime %s: its TLS certificate is not trusted (%s)",
                self.endpoint,
                getattr(exc.certificate_error, "verify_message", None) or "verification failed",
            )
            return _refusal(502, f"Bad Gateway: {UNTRUSTED_SENTENCE}")
        if not await self._upstream.still_there():
            raise errors.RuntimeGoneError(self.endpoint)
        log.info("runtime %s unreachable (%s)", self.endpoint, type(exc).__name__)
        return _refusal(502, "Bad Gateway: the Colab runtime did not answer")

    async def _http(self, request: web.BaseRequest, path: str, *, set_cookie: bool) -> Any:
        body = await _replayable_body(request)
        runtime = await self._upstream.get()
        for attempt in (1, 2):
            try:
                upstream = await self._session.request(
                    request.method,
                    self._url(runtime, path),
                    headers=self._headers(request, runtime, _REQUEST_DROP),
                    data=body,
                    proxy=self._via(runtime),
                    allow_redirects=False,
                )
            except aiohttp.ClientError as exc:
                return await self._broken(exc)
            if upstream.status == 401 and attempt == 1:
                if body is not None and not isinstance(body, bytes):
                    # Its body is spent, so this one gets the 401; but the next request must
                    # not go out with the refused token again (until something else renews it).
                    await self._renew_refused(runtime)
                    break
                upstream.release()
                runtime = await self._upstream.get(stale=runtime)
                continue
            break
        async with upstream:
            return await self._relay(request, upstream, runtime, set_cookie)

    async def _renew_refused(self, runtime: Runtime) -> None:
        """Replace a token the runtime refused; a failure is left to the next request."""
        try:
            await self._upstream.get(stale=runtime)
        except errors.ColabError as exc:
            log.info("token refresh for %s failed: %s", self.endpoint, exc.message)

    async def _relay(
        self,
        request: web.BaseRequest,
        upstream: aiohttp.ClientResponse,
        runtime: Runtime,
        set_cookie: bool,
    ) -> web.StreamResponse:
        assert runtime.proxy is not None
        base = runtime.proxy.url.rstrip("/")
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in upstream.headers.items():
            lower = name.lower()
            if lower in _RESPONSE_DROP:
                continue
            if lower == "location" and value.startswith(base):
                value = value[len(base) :] or "/"  # keep the editor on the bridge
            elif lower == "set-cookie":
                self._remember_cookie(value)
            headers.add(name, value)
        length = upstream.content_length
        small = length is not None and length <= SMALL_BODY and "Content-Type" in headers
        response: web.StreamResponse
        if small and request.method != "HEAD":
            # Headers and body in one write: a small reply costs one hop, not two.
            del headers["Content-Length"]
            response = web.Response(
                status=upstream.status,
                reason=upstream.reason,
                headers=headers,
                body=await upstream.read(),
            )
        else:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            response.headers.extend(headers)
        if set_cookie:
            response.set_cookie(
                guard.cookie_name(self.port),
                self._secret,
                httponly=True,
                samesite="Strict",
                path="/",
            )
        if isinstance(response, web.Response):
            return response
        try:
            await response.prepare(request)
            transport = request.transport
            if transport is not None:  # fewer pauses while shovelling large bodies
                transport.set_write_buffer_limits(high=2 * CHUNK)
            # Whatever has arrived, up to CHUNK. (Relaying readchunk()'s pieces as they are,
            # which would save a join, broke JupyterLab's page after its first 204/201 replies;
            # tests/integration/test_bridge_jupyterlab.py catches that.)
            async for chunk in upstream.content.iter_chunked(CHUNK):
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionResetError, aiohttp.ClientError) as exc:
            log.debug("stream on %s ended early: %s", self.endpoint, type(exc).__name__)
        return response

    def _remember_cookie(self, header: str) -> None:
        name = header.split("=", 1)[0].strip()
        if name and not name.startswith("colabtray-bridge-") and len(self._runtime_cookies) < 64:
            self._runtime_cookies.add(name)

    # ---- WebSockets -----------------------------------------------------------------------

    async def _websocket(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        requested = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        runtime = await self._upstream.get()
        upstream: aiohttp.ClientWebSocketResponse | None = None
        for attempt in (1, 2):
            try:
                upstream = await self._session.ws_connect(
                    self._url(runtime, path),
                    protocols=requested,
                    headers=self._headers(request, runtime, _WS_DROP),
                    proxy=self._via(runtime),
                    max_msg_size=0,
                    compress=0,
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                )
                break
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401 and attempt == 1:
                    runtime = await self._upstream.get(stale=runtime)
                    continue
                status = exc.status if 400 <= exc.status < 600 else 502
                return _refusal(status, "the runtime refused the WebSocket")
            except aiohttp.ClientError as exc:
                return await self._broken(exc)
        assert upstream is not None
        chosen = upstream.protocol
        client = web.WebSocketResponse(
            protocols=(chosen,) if chosen else (),
            max_msg_size=0,
            compress=False,
            autoping=True,
        )
        try:
            await client.prepare(request)
        except Exception:
            await upstream.close()
            raise
        self._sockets.add(client)
        channel = self._kernel_channel(request, path, chosen, upstream)
        try:
            await self._splice(client, upstream, channel)
        finally:
            self._sockets.discard(client)
            if channel is not None:
                await channel.close()
            await upstream.close()
            await client.close()
        return client

    def _kernel_channel(
        self,
        request: web.BaseRequest,
        path: str,
        protocol: str | None,
        upstream: aiohttp.ClientWebSocketResponse,
    ) -> KernelChannel | None:
        match = _KERNEL_CHANNELS.match(request.path)
        if match is None:
            return None

        async def send(frame: str | bytes) -> None:
            if isinstance(frame, str):
                await upstream.send_str(frame)
            else:
                await upstream.send_bytes(frame)

        return KernelChannel(
            self.endpoint,
            match.group(1),
            v1=protocol == V1_PROTOCOL,
            client_session=request.query.get("session_id", ""),
            credentials=self._credentials,
            send_to_runtime=send,
            answered=self._answered,
        )

    async def _splice(
        self,
        client: web.WebSocketResponse,
        upstream: aiohttp.ClientWebSocketResponse,
        channel: KernelChannel | None,
    ) -> None:
        to_runtime = asyncio.create_task(self._pump(client, upstream, channel, outward=True))
        to_client = asyncio.create_task(self._pump(upstream, client, channel, outward=False))
        done, pending = await asyncio.wait(
            {to_runtime, to_client}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        finished = done.pop()
        code = None
        with contextlib.suppress(Exception):
            code = finished.result()
        other: Any = upstream if finished is to_runtime else client
        with contextlib.suppress(Exception):
            await other.close(code=code if code and code not in (1005, 1006) else 1000)

    async def _pump(
        self, source: Any, sink: Any, channel: KernelChannel | None, *, outward: bool
    ) -> int | None:
        """Copy frames until ``source`` closes; returns its close code."""
        activity = self._on_activity
        endpoint = self.endpoint
        last = 0.0
        async for message in source:
            kind = message.type
            if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
                data = message.data
                if channel is not None:
                    if outward:
                        channel.from_client(data)
                    elif channel.from_runtime(data):
                        continue
                if kind == WSMsgType.TEXT:
                    await sink.send_str(data)
                else:
                    await sink.send_bytes(data)
                now = time.monotonic()
                if now - last > 1.0:  # activity needs no finer grain than this
                    last = now
                    activity(endpoint)
            elif kind == WSMsgType.CLOSE or kind == WSMsgType.ERROR:
                break
        return source.close_code
