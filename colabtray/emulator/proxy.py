"""The runtime proxy: the one door to a runtime's Jupyter server, on its own loopback port.

Plays the part of Colab's ``https://8080-<endpoint>...prod.colab.dev`` host: it admits a
request only with a live runtime proxy token (header ``X-Colab-Runtime-Proxy-Token`` or query
``colab-runtime-proxy-token``), swaps it for the Jupyter token, and streams HTTP bodies and
WebSocket frames both ways without buffering. ``GET /api/colab/resources`` it answers itself.
Like every listener here it takes only a path and a query from a client (the Jupyter server's
address is never the client's to choose) and holds its connections under a guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import weakref
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from colabtray.emulator.requestlog import make_request_log
from colabtray.emulator.ssh import RuntimeSsh
from colabtray.emulator.state import EmulatorState, Runtime
from colabtray.emulator.terminal import RuntimeTerminal
from colabtray.listen import targets
from colabtray.listen.connections import ConnectionGuard, listening_socket
from colabtray.listen.http import BUSY, GuardedSite, middleware, server_log
from colabtray.listen.targets import Target

log = logging.getLogger("colabtray.emulator.proxy")

PROXY_TOKEN_HEADER = "X-Colab-Runtime-Proxy-Token"
PROXY_TOKEN_QUERY = "colab-runtime-proxy-token"
CHUNK = 256 * 1024

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: the proxy decides these itself.
_REQUEST_DROP = _HOP_BY_HOP | {"host", "authorization", PROXY_TOKEN_HEADER.lower(), "expect"}
_WS_DROP = _REQUEST_DROP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "content-length",
}
# Query parameters that carry our token or would override the Jupyter token.
_QUERY_DROP = frozenset({PROXY_TOKEN_QUERY, "token"})


def _forward_headers(headers: CIMultiDict[str] | Any, drop: frozenset[str]) -> CIMultiDict[str]:
    named_in_connection = {
        part.strip().lower() for part in headers.get("Connection", "").split(",") if part.strip()
    }
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in drop or lower in named_in_connection:
            continue
        out.add(name, value)
    return out


def upstream_query(query: str) -> str:
    """The raw (still percent-encoded) query, minus the token parameters."""
    return "&".join(
        pair
        for pair in query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in _QUERY_DROP
    )


def _meminfo() -> tuple[int, int]:
    """(total, available) bytes of this machine's RAM, read without psutil."""
    values: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    values[key] = int(parts[0]) * 1024
    except (OSError, ValueError):  # not Linux: total from sysconf, availability unknown
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            total = 0
        return total, total // 2
    total = values.get("MemTotal", 0)
    return total, values.get("MemAvailable", values.get("MemFree", 0))


def resources(runtime: Runtime) -> dict[str, Any]:
    """The ``/api/colab/resources`` reply: real RAM and disk, a plausible GPU."""
    total, free = _meminfo()
    disk = shutil.disk_usage(runtime.root_dir)
    reply: dict[str, Any] = {
        "memory": {"totalBytes": total, "freeBytes": free},
        "disks": [
            {"filesystem": {"label": "kernel", "totalBytes": disk.total, "usedBytes": disk.used}}
        ],
    }
    accelerator = runtime.accelerator
    if accelerator.gpu_name:
        reply["gpus"] = [
            {
                "name": accelerator.gpu_name,
                "memoryUsedBytes": 0,
                "memoryTotalBytes": accelerator.gpu_memory_bytes,
                "gpuUtilization": 0.0,
                "memoryUtilization": 0.0,
                "everUsed": False,
            }
        ]
    return reply


class RuntimeProxy:
    """One runtime's proxy listener."""

    def __init__(self, state: EmulatorState, runtime: Runtime, jupyter_token: str) -> None:
        self._state = state
        self._runtime = runtime
        self._jupyter_token = jupyter_token
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._ssh = RuntimeSsh(runtime, enabled=state.config.ssh)
        self._terminal = RuntimeTerminal(runtime, binary=lambda: state.faults.terminal_binary)

    def _upstream(self, target: Target) -> URL:
        """The Jupyter server's own address; only the path and query are the client's."""
        base = URL.build(scheme="http", host="127.0.0.1", port=self._runtime.jupyter_port)
        return targets.upstream_url(base, target.path, upstream_query(target.query))

    async def start(self, host: str) -> str:
        """Listen on a random port of ``host``; returns the runtime URL."""
        guard = ConnectionGuard(f"runtime proxy {self._runtime.endpoint}", refusal=BUSY)
        app = web.Application(
            middlewares=[middleware(guard), make_request_log(self._state, "runtime")]
        )
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        self._runner = web.AppRunner(
            app, access_log=None, logger=server_log, auto_decompress=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        tls = self._state.runtime_tls
        sock = listening_socket(host, 0)
        await GuardedSite(self._runner, sock, guard, ssl_context=tls).start()
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if tls else 'http'}://{shown}:{port}"

    async def stop(self) -> None:
        """Close the listener and every open WebSocket; idempotent."""
        self._ssh.stop()
        self._terminal.stop()
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await ws.close(code=1001, message=b"runtime gone")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get(PROXY_TOKEN_HEADER) or request.query.get(PROXY_TOKEN_QUERY)
        if not self._runtime.proxy_token_valid(token):
            return web.Response(status=401, text="Unauthorized: runtime proxy token required\n")
        if request["target"].decoded_path == "/api/colab/resources":
            if request.method != "GET":
                return web.Response(status=405, headers={"Allow": "GET"})
            return web.json_response(resources(self._runtime))
        if request["target"].decoded_path == "/colab/ssh":
            return await self._ssh.handle(request)
        if request["target"].decoded_path == "/colab/tty":
            return await self._terminal.handle(request)
        url = self._upstream(request["target"])
        if request.headers.get("Upgrade", "").lower() == "websocket" and request.method == "GET":
            return await self._websocket(request, url)
        return await self._http(request, url)

    async def _http(self, request: web.Request, url: URL) -> web.StreamResponse:
        assert self._session is not None
        headers = _forward_headers(request.headers, _REQUEST_DROP)
        headers["Authorization"] = f"token {self._jupyter_token}"
        data = request.content if request.body_exists else None
        try:
            upstream = await self._session.request(
                request.method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        except aiohttp.ClientError as exc:
            log.warning("runtime %s unreachable: %s", self._runtime.endpoint, type(exc).__name__)
            return web.Response(status=502, text="Bad Gateway: runtime unreachable\n")
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(CHUNK):
                await response.write(chunk)
            await response.write_eof()
        return response

    async def _websocket(self, request: web.Request, url: URL) -> web.StreamResponse:
        assert self._session is not None
        headers = _forward_headers(request.headers, _WS_DROP)
        headers["Authorization"] = f"token {self._jupyter_token}"
        requested = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        try:
            upstream = await self._session.ws_connect(
                url,
                protocols=requested,
                headers=headers,
                max_msg_size=0,
                compress=0,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            return web.Response(status=exc.status, text=f"{exc.status} {exc.message}\n")
        except aiohttp.ClientError:
            return web.Response(status=502, text="Bad Gateway: runtime unreachable\n")
        chosen = upstream.protocol
        client = web.WebSocketResponse(
            protocols=(chosen,) if chosen else (),
            max_msg_size=0,
            compress=False,
            autoping=True,
        )
        await client.prepare(request)
        self._sockets.add(client)
        try:
            await _splice(client, upstream)
        finally:
            self._sockets.discard(client)
            await upstream.close()
            await client.close()
        return client


async def _pump(source: Any, sink: Any) -> int | None:
    """Copy frames until ``source`` closes; returns its close code."""
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == WSMsgType.ERROR:
            break
    return source.close_code


async def _splice(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    to_upstream = asyncio.create_task(_pump(client, upstream))
    to_client = asyncio.create_task(_pump(upstream, client))
    done, pending = await asyncio.wait(
        {to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    finished = done.pop()
    code = None
    with contextlib.suppress(Exception):
        code = finished.result()
    other = upstream if finished is to_upstream else client
    with contextlib.suppress(Exception):
        await other.close(code=code if code and code not in (1005, 1006) else 1000)
