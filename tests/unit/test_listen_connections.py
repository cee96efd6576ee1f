"""ConnectionGuard on a real loopback server: deadlines for idle and half-sent connections, a
cap that sheds idle connections before busy ones, and a flood logged once.

The server speaks a line protocol: each line is a request; ``sleep S`` keeps the connection
busy for S seconds, then every request gets ``ok``. Timeouts are short so the tests are fast;
the production values are the module's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from colabtray.listen.connections import ConnectionGuard, listening_socket

HEAD = 0.5
IDLE = 0.8


@dataclass
class Served:
    guard: ConnectionGuard
    port: int
    clients: list[asyncio.StreamWriter]

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.clients.append(writer)
        return reader, writer


@contextlib.asynccontextmanager
async def line_server(limit: int = 8) -> AsyncIterator[Served]:
    guard = ConnectionGuard(
        "test listener", limit=limit, head_timeout=HEAD, idle_timeout=IDLE, refusal=b"busy\n"
    )
    loop = asyncio.get_running_loop()
    handlers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(writer)
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                with guard.serving(writer.transport):
                    words = line.split()
                    if words[:1] == [b"sleep"]:
                        await asyncio.sleep(float(words[1]))
                    writer.write(b"ok\n")
                    await writer.drain()

    def protocol() -> asyncio.StreamReaderProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), serve, loop=loop)

    sock = listening_socket("127.0.0.1", 0)
    server = await loop.create_server(guard.protocols(protocol), sock=sock)
    served = Served(guard, sock.getsockname()[1], [])
    try:
        yield served
    finally:
        server.close()
        for writer in [*served.clients, *handlers]:
            writer.transport.abort()
        await asyncio.sleep(0)  # let the transports finish closing
        await server.wait_closed()


async def closed_after(reader: asyncio.StreamReader, bound: float) -> tuple[bytes, float]:
    """Read until the server closes; what it sent and how long that took."""
    started = time.monotonic()
    async with asyncio.timeout(bound):
        data = await reader.read()
    return data, time.monotonic() - started


async def test_a_connection_that_sends_nothing_is_closed_after_the_head_timeout() -> None:
    async with line_server() as served:
        reader, _writer = await served.connect()
        data, took = await closed_after(reader, 5)
        assert data == b"" and HEAD * 0.8 <= took <= HEAD + 1.0
        assert served.guard.open_connections == 0


async def test_a_head_sent_a_byte_at_a_time_is_closed_on_time_too() -> None:
    async with line_server() as served:
        reader, writer = await served.connect()
        started = time.monotonic()

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        dripping = asyncio.create_task(trickle())
        await closed_after(reader, 5)
        dripping.cancel()
        assert time.monotonic() - started <= HEAD + 1.0


async def test_a_busy_connection_outlives_the_deadlines_then_idles_out() -> None:
    async with line_server() as served:
        reader, writer = await served.connect()
        writer.write(f"sleep {HEAD + IDLE + 0.5}\n".encode())
        async with asyncio.timeout(10):
            assert await reader.readline() == b"ok\n"
        writer.write(b"again\n")  # keep-alive: a second request is served
        async with asyncio.timeout(5):
            assert await reader.readline() == b"ok\n"
        _data, took = await closed_after(reader, 5)
        assert IDLE * 0.8 <= took <= IDLE + 1.0


async def test_at_the_cap_the_longest_idle_connection_makes_room() -> None:
    async with line_server(limit=3) as served:
        idle = [await served.connect() for _ in range(2)]
        busy_reader, busy_writer = await served.connect()
        busy_writer.write(b"sleep 1\n")
        await asyncio.sleep(0.1)
        # A fourth: the oldest idle one goes, the busy one stays, the newcomer is served.
        reader, writer = await served.connect()
        writer.write(b"hello\n")
        async with asyncio.timeout(5):
            assert await reader.readline() == b"ok\n"
        first_data, took = await closed_after(idle[0][0], 1)
        assert first_data == b"" and took < 0.3  # closed at once, not by its deadline
        async with asyncio.timeout(5):
            assert await busy_reader.readline() == b"ok\n"


async def test_when_every_connection_is_busy_a_newcomer_is_refused_and_told() -> None:
    async with line_server(limit=2) as served:
        busy = [await served.connect() for _ in range(2)]
        for _reader, writer in busy:
            writer.write(b"sleep 1.5\n")
        await asyncio.sleep(0.2)
        reader, _writer = await served.connect()
        data, _took = await closed_after(reader, 2)
        assert data == b"busy\n"
        for busy_reader, _writer in busy:
            async with asyncio.timeout(5):
                assert await busy_reader.readline() == b"ok\n"


async def test_a_flood_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="colabtray.listen.connections")
    async with line_server(limit=10) as served:
        for _ in range(200):
            await served.connect()
        # Everything beyond the cap closed an older idle connection; the rest idle out.
        async with asyncio.timeout(HEAD + 5):
            while served.guard.open_connections:  # noqa: ASYNC110 (the guard has no event)
                await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "colabtray.listen.connections"]
    assert len(lines) == 2, lines
    assert "more than 10 connections" in lines[0]
    assert "is over; 190 were closed or refused" in lines[1]


async def test_a_flood_makes_room_from_its_own_connections_before_a_served_one() -> None:
    """An editor's kept-alive connection, idle between requests, outlives a flood of
    connections that never sent a request."""
    async with line_server(limit=4) as served:
        reader, writer = await served.connect()
        writer.write(b"hello\n")
        async with asyncio.timeout(5):
            assert await reader.readline() == b"ok\n"
        flood = [await served.connect() for _ in range(20)]
        await asyncio.sleep(0.1)
        writer.write(b"still here\n")  # the kept-alive connection still works
        async with asyncio.timeout(5):
            assert await reader.readline() == b"ok\n"
        assert sum(r.at_eof() for r, _w in flood) >= 20 - 3
