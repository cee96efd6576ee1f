"""Sustained socket traffic through the app's event loop must not kill the interpreter.

PySide6 6.12.0 aborts the interpreter (``Fatal Python error: none_dealloc``) under this kind of
load on a qasync loop (docs/testing-notes.md §1); 6.11.3 survives it. The server half
runs in a subprocess, on the loop that :mod:`colabtray.ui.eventloop` builds, so that an abort
fails this test instead of killing pytest. It serves:

- a plain asyncio relay in front of an asyncio line source: the repro's load, 20 connections
  of 50 rounds of 2,000 short lines each;
- an aiohttp app, as the app's own servers are: streamed responses, an aiohttp reverse proxy
  in front of them (like the runtime proxy), echoed request bodies and a WebSocket echo.

This process drives both at once and checks every round came back whole. The abort comes
from a reference to None lost on each socket-notifier callback, until None is deallocated; so
the server also reports how many references to None it lost under the load, which fails the
test even where the load is too light to abort. That needs Python 3.11: from 3.12 on None is
immortal, its count does not move, and 6.12.0 survived this load there.

To try a PySide6 release before raising the pin in pyproject.toml, point the server half at
another interpreter (a venv with that PySide6, qasync and aiohttp)::

    COLABTRAY_STRESS_PYTHON=/tmp/candidate/bin/python .venv/bin/python -m pytest \\
        tests/integration/test_event_loop_stress.py

or, without pytest, from the repository root: ``python -m tests.integration.test_event_loop_stress
[--python PYTHON] [--repeat N]``. ``... serve`` runs the server half alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.test_event_loop_stress"  # run with -m from REPO_ROOT
HOST = "127.0.0.1"

# The repro's load: CONNECTIONS connections one after another, each ROUNDS request lines,
# each answered with LINES short lines and an END line.
CONNECTIONS = 20
ROUNDS = 50
LINES = 2000
# aiohttp traffic alongside: each round is a proxied streamed GET of LINES lines, an echoed
# POST and WS_MESSAGES WebSocket echoes.
HTTP_ROUNDS = 300
WS_MESSAGES = 20
POST_BODY = os.urandom(64 * 1024)

# References to None the server may lose under the load (6.11.3: it gains 500 to 1,800;
# 6.12.0 loses about 9,000 in a quarter of the load, and aborts at about 21,000).
NONE_REFS_LOST_LIMIT = 2000

DRIVE_TIMEOUT = 120.0  # seconds; about 8 s on PySide6 6.11.3
SERVER_DEADLINE = DRIVE_TIMEOUT + 30.0  # the server stops by itself after this


def _line(i: int) -> bytes:
    return b"x" * 60 + b"%d\n" % i


# --- the server half: runs in the subprocess, on the app's loop ----------------------------


async def _serve() -> int:
    """Serve until POST /shutdown (exit 0) or SERVER_DEADLINE (exit 3).

    Prints the ports as a JSON line when ready, and how many references to None were lost
    in between as another one at the end.
    """
    shutdown = asyncio.Event()

    async def line_source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            for i in range(LINES):
                writer.write(_line(i))
            writer.write(b"END\n")
            await writer.drain()
        writer.close()

    source = await asyncio.start_server(line_source, HOST, 0)
    source_port = source.sockets[0].getsockname()[1]

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, source_port)
        await asyncio.gather(
            pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True
        )

    relay_server = await asyncio.start_server(relay, HOST, 0)

    async def lines(request: web.Request) -> web.StreamResponse:
        count = int(request.match_info["count"])
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for start in range(0, count, 100):
            await response.write(b"".join(_line(i) for i in range(start, min(count, start + 100))))
        await response.write_eof()
        return response

    async def proxy(request: web.Request) -> web.StreamResponse:
        upstream_url = f"http://{HOST}:{http_port}/{request.match_info['tail']}"
        async with session.get(upstream_url) as upstream:
            response = web.StreamResponse(status=upstream.status)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(65536):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def stop(_request: web.Request) -> web.Response:
        shutdown.set()
        return web.Response(text="bye")

    app = web.Application()
    app.router.add_get("/lines/{count}", lines)
    app.router.add_get("/proxy/{tail:.*}", proxy)
    app.router.add_post("/echo", echo)
    app.router.add_get("/ws", ws_echo)
    app.router.add_post("/shutdown", stop)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    http_port = runner.addresses[0][1]

    async with aiohttp.ClientSession(auto_decompress=False) as session:
        ready = {"relay_port": relay_server.sockets[0].getsockname()[1], "http_port": http_port}
        print(json.dumps(ready), flush=True)
        none_refs = sys.getrefcount(None)
        try:
            await asyncio.wait_for(shutdown.wait(), SERVER_DEADLINE)
            print(json.dumps({"none_refs_lost": none_refs - sys.getrefcount(None)}), flush=True)
        except TimeoutError:
            print(f"no shutdown within {SERVER_DEADLINE:.0f} s", file=sys.stderr)
            return 3
        finally:
            await runner.cleanup()
            relay_server.close()
            source.close()
    return 0


def serve() -> int:
    """Entry point of the subprocess: a QApplication and the app's own loop."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from colabtray.ui import eventloop

    app = QApplication([])
    return eventloop.run(app, _serve())


# --- the client half: plain asyncio in this process ----------------------------------------


@dataclass
class Counts:
    relay_rounds: int = 0
    http_rounds: int = 0


async def _relay_load(port: int, counts: Counts) -> None:
    for _ in range(CONNECTIONS):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for _ in range(ROUNDS):
                writer.write(b"go\n")
                await writer.drain()
                received = 0
                while (line := await reader.readline()) != b"END\n":
                    if not line:
                        raise ConnectionError("the relay closed the connection mid-round")
                    received += 1
                if received != LINES:
                    raise AssertionError(f"relay round returned {received} lines, not {LINES}")
                counts.relay_rounds += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _http_load(port: int, counts: Counts) -> None:
    base = f"http://{HOST}:{port}"
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.ws_connect(f"{base}/ws", max_msg_size=0, compress=0) as ws,
    ):
        for _ in range(HTTP_ROUNDS):
            async with session.get(f"{base}/proxy/lines/{LINES}") as response:
                body = await response.read()
            if response.status != 200 or body.count(b"\n") != LINES:
                raise AssertionError(f"proxied GET: {response.status}, {len(body)} bytes")
            async with session.post(f"{base}/echo", data=POST_BODY) as response:
                if await response.read() != POST_BODY:
                    raise AssertionError("POST /echo did not echo the body")
            for i in range(WS_MESSAGES):
                payload = (b"%d," % i) * 100
                await ws.send_bytes(payload)
                message = await ws.receive()
                if message.data != payload:
                    raise AssertionError(f"WebSocket echo: {message!r}")
            counts.http_rounds += 1


@dataclass
class Outcome:
    """What one stress run saw."""

    returncode: int | None
    counts: Counts
    seconds: float
    none_refs_lost: int | None = None
    error: str = ""
    stderr: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0
            and not self.error
            and self.counts == Counts(CONNECTIONS * ROUNDS, HTTP_ROUNDS)
            and self.none_refs_lost is not None
            and self.none_refs_lost < NONE_REFS_LOST_LIMIT
        )

    def report(self) -> str:
        lines = [
            f"server exit code {self.returncode} after {self.seconds:.1f} s; "
            f"relay rounds {self.counts.relay_rounds}/{CONNECTIONS * ROUNDS}, "
            f"HTTP rounds {self.counts.http_rounds}/{HTTP_ROUNDS}; "
            f"references to None lost {self.none_refs_lost} (limit {NONE_REFS_LOST_LIMIT})",
        ]
        if self.error:
            lines.append(f"client: {self.error}")
        if self.stderr.strip():
            lines.append("server stderr (tail):\n" + "\n".join(self.stderr.splitlines()[-25:]))
        return "\n".join(lines)


async def stress(python: str = sys.executable) -> Outcome:
    """Start the server half under ``python``, drive it, shut it down; never raises."""
    counts = Counts()
    none_refs_lost = None
    error = ""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1"}
    started = time.monotonic()
    with tempfile.TemporaryFile() as stderr:
        server = await asyncio.create_subprocess_exec(
            python,
            "-m",
            MODULE,
            "serve",
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
        assert server.stdout is not None
        try:
            ready = json.loads(await asyncio.wait_for(server.stdout.readline(), 30) or "null")
            if not ready:
                raise ConnectionError("the server exited before it was ready")
            await asyncio.wait_for(
                asyncio.gather(
                    _relay_load(ready["relay_port"], counts),
                    _http_load(ready["http_port"], counts),
                ),
                DRIVE_TIMEOUT,
            )
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"http://{HOST}:{ready['http_port']}/shutdown") as response,
            ):
                await response.read()
            end = json.loads(await asyncio.wait_for(server.stdout.read(), 30) or "{}")
            none_refs_lost = end.get("none_refs_lost")
            await asyncio.wait_for(server.wait(), 30)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait(), 5)  # let an abort finish its report
        finally:
            if server.returncode is None:
                server.kill()
                await server.wait()
            stderr.seek(0)
            stderr_text = stderr.read().decode(errors="replace")
    seconds = time.monotonic() - started
    return Outcome(server.returncode, counts, seconds, none_refs_lost, error, stderr_text)


@pytest.mark.slow
async def test_sustained_socket_traffic_through_the_app_loop_does_not_crash() -> None:
    python = os.environ.get("COLABTRAY_STRESS_PYTHON", sys.executable)
    outcome = await stress(python)
    assert outcome.ok, outcome.report()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["serve", "drive"], default="drive")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the server")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        return serve()
    failures = 0
    for run in range(1, args.repeat + 1):
        outcome = asyncio.run(stress(args.python))
        failures += not outcome.ok
        print(f"run {run}: {'ok' if outcome.ok else 'FAILED'}: {outcome.report()}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
