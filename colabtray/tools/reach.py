"""How colabtray's own tools (``cp``, ``shell``, ``ssh``) reach a runtime: where it is and a
proxy token for it, asked of the running app (or a core made for the call) with the
``runtime`` command, and the ``activity`` heartbeat that makes keep-alive count the tool's use.

    runtime = await reach(ask, "T4 GPU")       # a UserError sentence if there is no such runtime
    runtime.url("/api/status")                  # https://…/api/status
    runtime.websocket_url("/colab/tty")         # wss://…/colab/tty?colab-runtime-proxy-token=…
    runtime.headers                             # {"X-Colab-Runtime-Proxy-Token": …}
    async with in_use(settings, runtime.endpoint):
        ...                                     # the app hears "in use" now and once a minute

The token is a secret: never log or show a URL from ``websocket_url`` (Colab demands the
token in the query of its WebSocket paths, so there it has to be).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from colabtray.colab.client import RUNTIME_TOKEN_HEADER
from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.system import ipc

log = logging.getLogger(__name__)

TOKEN_QUERY = "colab-runtime-proxy-token"
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
        return url.with_scheme(scheme).update_query({TOKEN_QUERY: self.token})

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
