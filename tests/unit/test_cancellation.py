"""A stop always stops: colabtray never waits with ``asyncio.wait_for``.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just after the
awaited thing finished but before the waiting task resumed (CPython gh-86296, fixed in 3.12).
A loop that waits on a wake-up event, as keep-alive and the registry do, then goes on running
after it was cancelled, and quitting hangs: the suite met it when a test cancelled keep-alive
right after the network came back and woke it. ``asyncio.timeout`` has no such gap.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "colabtray"

Wait = Callable[[asyncio.Event], Awaitable[None]]


async def with_wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 30)


async def with_timeout(event: asyncio.Event) -> None:
    async with asyncio.timeout(30):
        await event.wait()


async def stopped_after_a_wake_up(wait: Wait, turns: int) -> bool:
    """A loop like keep-alive's, woken and then cancelled ``turns`` loop turns later: whether
    it ended."""
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            event.clear()
            with contextlib.suppress(TimeoutError):
                await wait(event)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # it waits now
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1)
    if not done:
        task.cancel()  # a second cancellation does end it
        await asyncio.gather(task, return_exceptions=True)
    return bool(done)


@pytest.mark.parametrize("turns", range(4))
async def test_a_loop_waiting_with_asyncio_timeout_stops_however_the_cancel_falls(turns: int):
    assert await stopped_after_a_wake_up(with_timeout, turns)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="gh-86296 is fixed from 3.12 on")
async def test_asyncio_wait_for_loses_such_a_cancel_on_this_python():
    """Why the rule below exists (drop it when the project needs Python 3.12)."""
    results = [await stopped_after_a_wake_up(with_wait_for, turns) for turns in range(4)]
    assert not all(results)


def test_no_module_waits_with_asyncio_wait_for() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "wait_for"
                and isinstance(node.value, ast.Name)
                and node.value.id == "asyncio"
            ):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert found == [], "use `async with asyncio.timeout(...)` instead"
