"""``colabtray shell``'s sentences for a handshake the runtime refuses (a real local server
answers ``/colab/tty`` with the status): 401 and 404 mean the session is lost (a 401 first
gets one more try with a fresh token), anything else is the status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from colabtray.settings import load_settings
from colabtray.tools.terminal import ShellError, shell


@pytest.fixture
async def refusing() -> AsyncIterator[tuple[str, list[int]]]:
    """A server whose ``/colab/tty`` answers the statuses in the list, one per handshake."""
    statuses: list[int] = []

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(status=statuses.pop(0))

    app = web.Application()
    app.router.add_get("/colab/tty", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", statuses
    await runner.cleanup()


@pytest.mark.parametrize(
    ("statuses", "asks", "sentence"),
    [
        (
            [404],
            1,
            "The terminal session on T4 GPU was lost (HTTP 404); check it with "
            "colabtray status and try again.",
        ),
        (
            [401, 401],
            2,
            "The terminal session on T4 GPU was lost (HTTP 401); check it with "
            "colabtray status and try again.",
        ),
        ([502], 1, "T4 GPU refused a terminal (HTTP 502)."),
    ],
)
async def test_a_refused_handshake_is_one_sentence(
    tmp_path: Path,
    refusing: tuple[str, list[int]],
    statuses: list[int],
    asks: int,
    sentence: str,
) -> None:
    url, queued = refusing
    queued.extend(statuses)
    asked: list[str] = []

    async def ask(name: str, _request: dict[str, Any]) -> dict[str, Any]:
        asked.append(name)
        return {
            "name": "T4 GPU",
            "endpoint": "gpu-t4-s-aaa",
            "proxy_url": url,
            "proxy_token": f"token-{len(asked)}",
            "proxy_expires_at": "2099-01-01T00:00:00+00:00",
        }

    settings = load_settings(config_dir=tmp_path / "config", state_dir=tmp_path / "state")
    with pytest.raises(ShellError) as raised:
        await shell(settings, "T4 GPU", ask)
    assert raised.value.message == sentence
    assert "token-" not in raised.value.message
    assert asked == ["runtime"] * asks
    assert not queued
