"""Background tasks whose outcome colabtray reads: an exception in one never reaches asyncio's
"Task exception was never retrieved" (a traceback on the person's console)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from colabtray.system.tasks import held, settle


async def _fails() -> None:
    raise ConnectionResetError("the editor went away")


async def _waits() -> None:
    await asyncio.sleep(3600)


async def _unretrieved(make: Any) -> list[dict[str, Any]]:
    """What the loop's exception handler is given after ``make()`` runs and is forgotten."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    await make()
    gc.collect()  # an unread exception is reported when its task is collected
    await asyncio.sleep(0)
    return reported


async def test_a_held_task_that_fails_is_read_and_let_go() -> None:
    tasks: set[asyncio.Task[Any]] = set()

    async def make() -> None:
        task = held(tasks, asyncio.create_task(_fails()))
        await asyncio.wait([task])
        del task

    assert await _unretrieved(make) == []
    assert tasks == set()


async def test_settle_reads_every_outcome() -> None:
    async def make() -> None:
        failing = asyncio.create_task(_fails())
        await asyncio.sleep(0)  # it has failed by now
        await settle([failing, asyncio.create_task(_waits())])

    assert await _unretrieved(make) == []


async def test_without_them_the_loop_would_report_it() -> None:
    """The check above can fail: a failed task nobody reads is reported."""

    async def make() -> None:
        task = asyncio.create_task(_fails())
        await asyncio.wait([task])
        del task

    assert [c["message"] for c in await _unretrieved(make)] == [
        "Task exception was never retrieved"
    ]
