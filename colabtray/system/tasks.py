"""Background tasks whose outcome is always read: an exception nobody awaits would otherwise
reach the console as asyncio's "Task exception was never retrieved" and a traceback, for
events as ordinary as an editor closing its socket mid-send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


def held(tasks: set[asyncio.Task[Any]], task: asyncio.Task[Any]) -> asyncio.Task[Any]:
    """Keep ``task`` in ``tasks`` while it runs; when it ends, its exception (if any) is read
    and logged at debug level."""
    tasks.add(task)

    def ended(done: asyncio.Task[Any]) -> None:
        tasks.discard(done)
        if not done.cancelled() and (exc := done.exception()) is not None:
            log.debug("background task %s ended: %r", done.get_name(), exc)

    task.add_done_callback(ended)
    return task


async def settle(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them, reading every outcome (none is raised)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
