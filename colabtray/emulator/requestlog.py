"""A bounded log of recent requests, with secrets removed, for tests to check wire details."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from colabtray.emulator.state import EmulatorState

log = logging.getLogger("colabtray.emulator")

# Header values worth seeing; every other header is listed by name with its value redacted.
PUBLIC_HEADERS = frozenset(
    h.lower()
    for h in (
        "Accept",
        "Accept-Encoding",
        "Content-Type",
        "Content-Length",
        "Connection",
        "Upgrade",
        "User-Agent",
        "Sec-WebSocket-Protocol",
        "X-Colab-Tunnel",
        "X-Colab-Client-Agent",
        "X-Colab-VS-Code-App-Name",
        "X-Colab-VS-Code-Extension-Version",
    )
)
SECRET_QUERY_KEYS = frozenset(
    {"token", "colab-runtime-proxy-token", "access_token", "code", "refresh_token", "state"}
)
REDACTED = "<redacted>"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_of(path: str) -> str | None:
    """Which remote party a path of the main server plays; None for the admin API."""
    if path.startswith("/_emulator/"):
        return None
    if path.startswith("/gapi/"):
        return "gapi"
    if path.startswith("/public/"):
        return "public"
    if path.startswith(("/tun/", "/vscode/")):
        return "colab"
    return "oauth"


def _headers(request: web.Request) -> dict[str, str]:
    seen: dict[str, str] = {}
    for raw_name, raw_value in request.raw_headers:
        name = raw_name.decode("latin-1")
        lower = name.lower()
        if lower in PUBLIC_HEADERS:
            value = raw_value.decode("latin-1")
        elif lower == "authorization":
            scheme = raw_value.decode("latin-1").split(" ", 1)[0]
            value = f"{scheme} {REDACTED}"
        else:
            value = REDACTED
        seen[name] = value
    return seen


def _query(request: web.Request) -> dict[str, str]:
    return {
        key: REDACTED if key.lower() in SECRET_QUERY_KEYS else value
        for key, value in request.query.items()
    }


def make_request_log(state: EmulatorState, host: str | None = None) -> Any:
    """Middleware recording each request of an app (``host`` fixed, or derived from the path)."""

    @web.middleware
    async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        party = host or host_of(request.path)
        if party is None:
            return await handler(request)
        state.request_seq += 1
        entry: dict[str, Any] = {
            "seq": state.request_seq,
            "time": time.time(),
            "host": party,
            "method": request.method,
            "path": request.path,
            "query": _query(request),
            "headers": _headers(request),
            "status": None,
        }
        state.request_log.append(entry)
        started = time.monotonic()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            entry["status"] = exc.status
            raise
        except Exception:
            entry["status"] = 500
            raise
        entry["status"] = response.status
        # Path only: query strings may hold tokens and never reach the log.
        log.info(
            "%s %s %s -> %s (%.0f ms)",
            party,
            request.method,
            request.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    return request_log
