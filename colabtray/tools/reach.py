"""How colabtray's own tools (``cp``, ``shell``, ``ssh``) reach a runtime: where it is and a
proxy token for it, asked of the running app (or a core made for the call) with the
``runtime`` command, and the ``activity`` heartbeat that makes keep-alive count the tool's use.

    runtime = await reach(ask, "T4 GPU")       # a UserError sentence if there is no such runtime
    runtime.url("/api/status")                  # https://…/api/status
    runtime.websocket_url("/colab/tty")         # wss://…/colab/tty?colab-runtime-proxy-token=…
    runtime.headers                             # {"X-Colab-Runtime-Proxy-Token": …}
    async with in_use(settings, runtime.endpoint):
        ...                                     # the app hears "in use" now and once a minute
    async with runtime_session(settings) as http:  # the one way a tool's HTTP client is made
        runtime, socket = await open_socket(http, runtime, ask, "T4 GPU", "/colab/tty")

The token is a secret: never log or show a URL from ``websocket_url`` (Colab demands the
token in the query of its WebSocket paths, so there it has to be).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from colabtray import __version__
from colabtray.colab.wire import RUNTIME_TOKEN_HEADER, RUNTIME_TOKEN_QUERY
from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.system import ipc, trust

log = logging.getLogger(__name__)

ACTIVITY_EVERY = 60.0

# A control command carried out for a tool: the CLI's (running app, or a core for the call).
Ask = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Reached:
    """One runtime as a tool reaches it: its name, endpoint, proxy base URL and token."""

    name: str
    endpoint: str
    base: str  # the runtime proxy's URL, no trailing slash
    token: str = field(repr=False)
    expires_at: datetime

    def url(self, path: str) -> URL:
        """An HTTP(S) URL on the runtime (``path`` starting with ``/``, already encoded)."""
        return URL(self.base + path, encoded=True)

    def websocket_url(self, path: str) -> URL:
        """A ws(s) URL on the runtime with the token in the query, as Colab demands for its
        WebSocket paths (``/colab/tty``, ``/colab/ssh``). Secret: never log it."""
        url = self.url(path)
        scheme = {"https": "wss", "http": "ws"}.get(url.scheme, url.scheme)
        return url.with_scheme(scheme).update_query({RUNTIME_TOKEN_QUERY: self.token})

    @property
    def headers(self) -> dict[str, str]:
        """The token as a request header (the way for plain HTTP requests)."""
        return {RUNTIME_TOKEN_HEADER: self.token}


async def reach(ask: Ask, query: str) -> Reached:
    """The runtime ``query`` names (a name or an endpoint), with a fresh token; the ``runtime``
    command's UserError (one sentence) if there is no such runtime."""
    reply = await ask("runtime", {"runtime": query})
    expires = datetime.fromisoformat(reply["proxy_expires_at"])
    return Reached(
        name=reply["name"],
        endpoint=reply["endpoint"],
        base=reply["proxy_url"].rstrip("/"),
        token=reply["proxy_token"],
        expires_at=expires if expires.tzinfo else expires.replace(tzinfo=UTC),
    )


async def tell_activity(settings: Settings, endpoint: str) -> None:
    """Tell the running app, now and about once a minute, that the runtime is in use. Without
    a running app nothing keeps runtimes alive, so there is nobody to tell."""
    while True:
        try:
            await ipc.request(settings.config_dir, "activity", {"runtime": endpoint})
        except (UserError, OSError) as exc:  # no app runs, or it is busy
            log.debug("activity not told: %s", exc)
        await asyncio.sleep(ACTIVITY_EVERY)


@contextlib.asynccontextmanager
async def in_use(settings: Settings, endpoint: str) -> AsyncIterator[None]:
    """While open, the runtime counts as in use (``tell_activity`` in a task)."""
    task = asyncio.create_task(tell_activity(settings, endpoint))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def runtime_session(settings: Settings, **options: Any) -> aiohttp.ClientSession:
    """An HTTP client for reaching runtimes, as every tool makes one: the app's trust (the
    demo's CA file too), the environment's proxy (``HTTPS_PROXY``…), no cookies kept, and
    colabtray's User-Agent. ``options`` go to aiohttp (timeouts, more headers…)."""
    headers = {"User-Agent": f"colabtray/{__version__}", **options.pop("headers", {})}
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=trust.verification(settings)),
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=True,
        **options,
    )


async def open_socket(
    http: aiohttp.ClientSession,
    runtime: Reached,
    ask: Ask,
    query: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    token_header: bool = False,
) -> tuple[Reached, aiohttp.ClientWebSocketResponse]:
    """The runtime's WebSocket at ``path`` (its token in the query, as Colab demands; with
    ``token_header`` in a header too), asked once more with a fresh token if the first is
    refused (401): the runtime as last reached, and the socket.

    A refusal after that raises ``aiohttp.WSServerHandshakeError`` (its text names the URL,
    token and all: never show it; its ``status`` says why); a failed connection its
    ``aiohttp.ClientError``, ``OSError`` or ``TimeoutError``. Each tool words them."""
    for attempt in range(2):
        sent = {**(headers or {}), **(runtime.headers if token_header else {})}
        try:
            socket = await http.ws_connect(
                runtime.websocket_url(path),  # secret: never logged or shown
                headers=sent,
                max_msg_size=0,
                compress=0,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status != 401 or attempt:
                raise
            runtime = await reach(ask, query)
            continue
        return runtime, socket
    raise AssertionError("unreachable")
