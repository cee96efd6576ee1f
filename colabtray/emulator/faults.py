"""Injected trouble: random 500/503 answers and added latency on backend requests.

Applies to the colab host, GAPI and the OAuth token endpoint; never to browser pages or the
admin API. The rate and delay live in ``state.faults`` and can change at run time.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp import web

from colabtray.emulator.requestlog import Handler, host_of
from colabtray.emulator.state import EmulatorState
from colabtray.emulator.wire import google_error

# Browser-facing pages of the colab host (a person, not a client, loads them).
_BROWSER_PAGES = ("/tun/m/authorize-for-drive-credentials-ephem",)


def subject_to_faults(path: str) -> bool:
    host = host_of(path)
    if host in ("colab", "gapi"):
        return not path.startswith(_BROWSER_PAGES)
    return path == "/token"


def make_faults(state: EmulatorState) -> Any:
    """Middleware that delays and fails requests as ``state.faults`` says."""
    rng = random.SystemRandom()

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not subject_to_faults(request.path):
            return await handler(request)
        if state.faults.latency > 0:
            await asyncio.sleep(state.faults.latency)
        if state.faults.fault_rate > 0 and rng.random() < state.faults.fault_rate:
            status = rng.choice((500, 503))
            message = (
                "Internal error encountered."
                if status == 500
                else "The service is currently unavailable."
            )
            return google_error(status, message)
        return await handler(request)

    return faults
