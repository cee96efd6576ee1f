"""One runtime served as a plain Jupyter server on a loopback port of its own.

Every request passes :mod:`colabtray.listen.http` (HTTP version, method, a path as target) and
:mod:`colabtray.bridge.guard` (secret, Host, Origin) first; a refused one gets a 4xx and a
one-line reason, and nothing reaches the runtime. Admitted requests go to the runtime's proxy
address, built from its parts with only the client's path and query (so no request can name
another host), with the runtime proxy token added and the bridge's secret, cookies and origin
removed; Jupyter's CORS headers are dropped from answers, and so is any ``Set-Cookie`` of a
name like the bridge's (browsers send a cookie to every port of 127.0.0.1, so a runtime could
otherwise set or shadow the cookie of its own bridge port or of another's);
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
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from colabtray.bridge import guard
from colabtray.bridge.kernel_messages import (
    V1_PROTOCOL,
    Credentials,
    GetSecret,
    KernelChannel,
    RuntimeRequests,
)
from colabtray.bridge.upstream import GONE_SENTENCE, Upstream
from colabtray.colab import errors
from colabtray.colab.models import Runtime
from colabtray.colab.wire import RUNTIME_TOKEN_HEADER, RUNTIME_TOKEN_QUERY
from colabtray.listen import targets
from colabtray.listen.connections import ConnectionGuard
from colabtray.listen.http import GuardedSite, guarded, refusal, server_log
from colabtray.listen.targets import Target
from colabtray.system import tasks
from colabtray.system.proxies import environment_proxy

log = logging.getLogger(__name__)

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
# A request body that stops arriving for this long (seconds) ends the request: 408.
BODY_TIMEOUT = 30.0

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
    RUNTIME_TOKEN_HEADER.lower(),
}
_WS_DROP = _REQUEST_DROP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "content-length",
}
_RESPONSE_DROP = _HOP_BY_HOP | {RUNTIME_TOKEN_HEADER.lower()}
# Query parameters that would carry the bridge secret or a runtime token from the client.
_QUERY_DROP = frozenset({guard.TOKEN_PARAM, RUNTIME_TOKEN_QUERY})
_KERNEL_CHANNELS = re.compile(r"^/api/kernels/([^/]+)/channels$")


def upstream_query(query: str) -> str:
    """The raw (still percent-encoded) query, minus the token parameters."""
    if not query:
        return query
    return "&".join(
        pair
        for pair in query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in _QUERY_DROP
    )


def _cookie_header(headers: CIMultiDictProxy[str]) -> str | None:
    """Every ``Cookie`` header as one (a client may send several; HTTP/2 gateways do)."""
    cookies = headers.getall("Cookie", [])
    return "; ".join(cookies) if cookies else None


def _forward_headers(headers: CIMultiDictProxy[str], drop: frozenset[str]) -> CIMultiDict[str]:
    named = {p.strip().lower() for p in headers.get("Connection", "").split(",") if p.strip()}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in drop and lower not in named:
            out.add(name, value)
    return out


class _BodyStalled(Exception):
    """The client stopped sending the body it announced."""


async def _replayable_body(request: web.BaseRequest) -> bytes | AsyncIterator[bytes] | None:
    """The request's body: bytes when it is small enough to send twice (again after a 401),
    else a stream that can go once. Raises _BodyStalled if the client stops sending."""
    if not request.body_exists:
        return None
    length = request.content_length
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            if length is not None:
                if length > RETRY_BODY_LIMIT:
                    return _stream(request.content)
                return await request.read()
            # Chunked, so no length was given: read up to the limit to find out.
            try:
                head = await request.content.readexactly(RETRY_BODY_LIMIT + 1)
            except asyncio.IncompleteReadError as whole:
                return whole.partial
    except TimeoutError:
        raise _BodyStalled from None
    return _stream(request.content, head)


async def _stream(rest: aiohttp.StreamReader, head: bytes = b"") -> AsyncIterator[bytes]:
    if head:
        yield head
    while True:
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                chunk = await rest.read(CHUNK)
        except TimeoutError:
            raise _BodyStalled from None
        if not chunk:
            return
        yield chunk


async def _continue(request: web.BaseRequest) -> None:
    """Tell a client that waits before sending its body to go ahead (as aiohttp's router
    does; the bridge uses the low-level server, which leaves it to the handler)."""
    if request.version >= aiohttp.HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the reply proper has not started


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
        secrets: GetSecret | None = None,
        client_agent: str,
        on_activity: Callable[[str], None],
        on_gone: Callable[[str], None],
        connections: ConnectionGuard,
    ) -> None:
        self.endpoint = endpoint
        self.port = 0
        self._connections = connections
        self._secret = secret
        self._upstream = upstream
        self._session = session
        self._credentials = credentials
        self._secrets = secrets
        self._client_agent = client_agent
        self._on_activity = on_activity
        self._on_gone = on_gone
        self.gone = False
        self._gone_why = GONE_SENTENCE
        self._runner: web.ServerRunner | None = None
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._runtime_cookies: set[str] = {"_xsrf"}
        self._answered = RuntimeRequests(endpoint)  # its kernels' requests, bounded
        self._closing: set[asyncio.Task[None]] = set()
        self._proxies: dict[str, str | None] = {}  # runtime proxy URL → HTTP proxy to use
        self._bases: dict[str, URL] = {}  # runtime proxy URL → parsed, for upstream_url

    # ---- lifecycle ------------------------------------------------------------------------

    async def start_on(self, sock: socket.socket) -> None:
        """Serve the listening socket ``sock`` (bound by the caller, closed by :meth:`stop`)."""
        # aiohttp's low-level server: every path comes to _handle, with no router or
        # middleware in between. (aiohttp sets TCP_NODELAY on each connection it serves or
        # opens; kernel round trips depend on it: docs/testing-notes.md §4.)
        server = web.Server(
            guarded(self._connections, self._handle),
            max_field_size=65536,
            access_log=None,
            logger=server_log,
            auto_decompress=False,
            # After an answer that left a body unread (a refusal, a stalled upload), read and
            # drop what still comes for this long so the client sees the answer, then close.
            lingering_time=2.0,
        )
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await GuardedSite(runner, sock, self._connections).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        self._upstream.start_refreshing()

    def mark_gone(self, why: str = GONE_SENTENCE) -> None:
        """From now on every request is answered 502 with ``why`` (the runtime was
        disconnected, or its account signed out)."""
        if not self.gone:
            self.gone = True
            self._gone_why = why
            for ws in list(self._sockets):
                closing = ws.close(code=1001, message=why.encode())
                tasks.held(self._closing, asyncio.create_task(closing))

    async def stop(self) -> None:
        """Close every WebSocket and the listener; idempotent."""
        await self._upstream.stop()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await ws.close(code=1001, message=b"bridge closed")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- requests -------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest, target: Target) -> web.StreamResponse:
        headers = request.headers
        verdict = guard.check(
            port=self.port,
            secret=self._secret,
            host=headers.get("Host"),
            origin=headers.get("Origin"),
            fetch_site=headers.get("Sec-Fetch-Site"),
            query_tokens=request.query.getall(guard.TOKEN_PARAM, []),
            authorization=headers.get("Authorization"),
            cookie=_cookie_header(headers),
        )
        if not verdict.ok:
            log.info(
                "refused %s %s on %s: %s",
                request.method,
                target.path,
                self.endpoint,
                verdict.reason,
            )
            return refusal(403, f"Forbidden: {verdict.reason}")
        if self.gone:
            return refusal(502, f"Bad Gateway: {self._gone_why}")
        self._on_activity(self.endpoint)
        if headers.get("Expect", "").lower() == "100-continue":
            await _continue(request)
        try:
            if request.method == "GET" and headers.get("Upgrade", "").lower() == "websocket":
                response = await self._websocket(request, target)
            else:
                response = await self._http(request, target, set_cookie=verdict.by_query)
        except errors.RuntimeGoneError:
            self._gone()
            return refusal(502, f"Bad Gateway: {GONE_SENTENCE}")
        except errors.ColabError as exc:
            return refusal(503, f"Service Unavailable: {exc.message}")
        except _BodyStalled:
            log.info(
                "%s %s on %s: the body stopped arriving", request.method, target.path, self.endpoint
            )
            response = refusal(408, "Request Timeout: the request body stopped arriving")
            response.force_close()
        finally:
            self._on_activity(self.endpoint)
        return response

    def _gone(self) -> None:
        self.mark_gone()
        self._on_gone(self.endpoint)

    def _headers(self, request: web.BaseRequest, runtime: Runtime, drop: frozenset[str]) -> Any:
        headers = _forward_headers(request.headers, drop)
        cookies = self._cookies_for_runtime(_cookie_header(request.headers))
        if cookies:
            headers["Cookie"] = cookies
        assert runtime.proxy is not None
        headers[RUNTIME_TOKEN_HEADER] = runtime.proxy.token.get_secret_value()
        headers["X-Colab-Client-Agent"] = self._client_agent
        return headers

    def _cookies_for_runtime(self, header: str | None) -> str:
        """Only cookies the runtime itself set: not the bridge's, not other local apps'."""
        if not header:
            return ""
        return "; ".join(
            f"{name}={value}"
            for name, value in guard.cookie_pairs(header)
            if name in self._runtime_cookies and not guard.is_bridge_cookie(name)
        )

    def _url(self, runtime: Runtime, target: Target) -> URL:
        """The runtime's own scheme, host and port; only the path and query are the client's."""
        assert runtime.proxy is not None
        base = self._bases.get(runtime.proxy.url)
        if base is None:
            base = URL(runtime.proxy.url)
            self._bases = {runtime.proxy.url: base}  # one address at a time
        return targets.upstream_url(base, target.path, upstream_query(target.query))

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
            return refusal(502, f"Bad Gateway: {UNTRUSTED_SENTENCE}")
        if not await self._upstream.still_there():
            raise errors.RuntimeGoneError(self.endpoint)
        log.info("runtime %s unreachable (%s)", self.endpoint, type(exc).__name__)
        return refusal(502, "Bad Gateway: the Colab runtime did not answer")

    async def _http(self, request: web.BaseRequest, target: Target, *, set_cookie: bool) -> Any:
        body = await _replayable_body(request)
        runtime = await self._upstream.get()
        for attempt in (1, 2):
            try:
                upstream = await self._session.request(
                    request.method,
                    self._url(runtime, target),
                    headers=self._headers(request, runtime, _REQUEST_DROP),
                    data=body,
                    proxy=self._via(runtime),
                    allow_redirects=False,
                )
            except aiohttp.ClientError as exc:
                if isinstance(exc.__cause__, _BodyStalled):  # raised by the streamed body
                    raise _BodyStalled from None
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
            if lower in _RESPONSE_DROP or lower.startswith("access-control-"):
                # CORS is the bridge's to answer, and it answers none: only its own origin
                # may use it (Jupyter's "Access-Control-Allow-Origin: *" must not pass).
                continue
            if lower == "location" and value.startswith(base):
                value = value[len(base) :] or "/"  # keep the editor on the bridge
            elif lower == "set-cookie":
                cookie = guard.set_cookie_name(value)
                if guard.is_bridge_cookie(cookie):
                    log.debug("runtime %s: dropped a bridge-named Set-Cookie", self.endpoint)
                    continue
                self._remember_cookie(cookie)
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

    def _remember_cookie(self, name: str) -> None:
        if name and len(self._runtime_cookies) < 64:
            self._runtime_cookies.add(name)

    # ---- WebSockets -----------------------------------------------------------------------

    async def _websocket(self, request: web.BaseRequest, target: Target) -> web.StreamResponse:
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
                    self._url(runtime, target),
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
                return refusal(status, "the runtime refused the WebSocket")
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
        channel = self._kernel_channel(request, target, chosen, upstream)
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
        target: Target,
        protocol: str | None,
        upstream: aiohttp.ClientWebSocketResponse,
    ) -> KernelChannel | None:
        match = _KERNEL_CHANNELS.match(target.decoded_path)
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
            secrets=self._secrets,
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
        pumps = {to_runtime, to_client}
        try:  # both may end at once (a socket reset), or this handler be cancelled
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await tasks.settle(pumps)  # every outcome read: no "exception never retrieved"
        finished = to_runtime if to_runtime in done else to_client
        code = None
        if not finished.cancelled() and finished.exception() is None:
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
