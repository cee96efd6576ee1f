"""A soak, bounded to about a minute: a thousand idle and half-sent connections held against a
running ``colabtray --headless`` while an editor keeps executing code through its bridge.

Nothing of this needs the bridge's secret: any local process can open connections. The bridge
must keep serving the editor, close every held connection on time (HEAD_TIMEOUT after it
opened, or sooner to make room), log the flood once, and stay within a bounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from colabtray.listen.connections import HEAD_TIMEOUT
from tests.fixtures.colab import headless_app, run_cli
from tests.fixtures.jupyter_client import KernelSession, split_url
from tests.fixtures.waiting import until

pytestmark = pytest.mark.slow

FLOOD = 1000
OPEN_OVER = 20.0  # seconds over which the flood's connections are opened
SLACK = 3.0  # seconds allowed beyond HEAD_TIMEOUT for a held connection to be closed
RSS_GROWTH_LIMIT = 40 * 1024 * 1024


@dataclass
class Held:
    opened: float
    closed: float | None = None


@dataclass
class Flood:
    port: int
    held: list[Held] = field(default_factory=list)

    async def hold(self, index: int) -> None:
        """One connection: idle, or a request head that never ends (a byte a second)."""
        entry = Held(time.monotonic())
        self.held.append(entry)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:  # refused outright: closed at once
            entry.closed = time.monotonic()
            return
        trickle = None
        if index % 2:
            writer.write(f"GET /api/kernels HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode())

            async def drip() -> None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    while True:
                        await asyncio.sleep(1)
                        writer.write(b"X")
                        await writer.drain()

            trickle = asyncio.create_task(drip())
        try:
            async with asyncio.timeout(HEAD_TIMEOUT * 3):
                with contextlib.suppress(ConnectionError):
                    while await reader.read(65536):
                        pass
        except TimeoutError:
            pass  # never closed: entry.closed stays None and the test fails
        else:
            entry.closed = time.monotonic()
        finally:
            if trickle is not None:
                trickle.cancel()
            writer.transport.abort()

    async def run(self) -> None:
        tasks = []
        for index in range(FLOOD):
            tasks.append(asyncio.create_task(self.hold(index)))
            await asyncio.sleep(OPEN_OVER / FLOOD)
        await asyncio.gather(*tasks)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_the_editor_keeps_working_through_a_flood_of_held_connections(
    headless_env: dict[str, str],
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * FLOOD:  # this process holds the flood's client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4 * FLOOD, hard), hard))
    env = headless_env
    made = run_cli(env, "new", "--cpu", "--json")
    assert made.returncode == 0, made.stderr
    name = json.loads(made.stdout)["name"]
    with headless_app(env) as app:
        answer = await until(lambda: _ok(run_cli(env, "url", name)), 60, interval=0.5)
        url = answer.stdout.strip()
        base, token = split_url(url)
        async with KernelSession(url) as kernel:
            assert (await kernel.execute("print(1)"))[0] == "1\n"
            baseline = rss(app.pid)
            flood = Flood(int(base.rsplit(":", 1)[1]))
            flooding = asyncio.create_task(flood.run())
            peak = baseline
            executed = 0
            async with httpx2.AsyncClient(base_url=base, timeout=30) as fresh:
                while not flooding.done():
                    output, reply = await kernel.execute(f"print({executed} * 2)")
                    assert (reply["status"], output) == ("ok", f"{executed * 2}\n")
                    # A new connection of the editor's gets through the flood too.
                    listed = await fresh.get(
                        "/api/kernels", params={"token": token}, headers={"Connection": "close"}
                    )
                    assert listed.status_code == 200, listed.text
                    executed += 1
                    peak = max(peak, rss(app.pid))
                    await asyncio.sleep(0.2)
            await flooding
            assert (await kernel.execute("print('after')"))[0] == "after\n"

    assert executed >= 20  # the editor really worked all along
    late = [h for h in flood.held if h.closed is None or h.closed - h.opened > HEAD_TIMEOUT + SLACK]
    assert not late, f"{len(late)} held connections were not closed on time"
    assert peak - baseline < RSS_GROWTH_LIMIT, f"RSS grew by {(peak - baseline) >> 20} MB"
    logged = (Path(env["COLABTRAY_LOG_DIR"]) / "colabtray.log").read_text()
    assert logged.count("more than") == 1 and logged.count("flood of connections is over") == 1


def _ok(result):  # type: ignore[no-untyped-def]
    return result if result.returncode == 0 else None
