"""The app's event loop runs asyncio and Qt together, and can be run more than once."""

from __future__ import annotations

import asyncio

import qasync
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from colabtray.ui import eventloop


async def _qt_and_asyncio_together() -> str:
    fired = asyncio.Event()
    QTimer.singleShot(10, fired.set)  # a Qt timer wakes an asyncio waiter
    await asyncio.wait_for(fired.wait(), 5)
    loop = asyncio.get_running_loop()
    assert isinstance(loop, qasync.QEventLoop)
    assert asyncio.get_event_loop() is loop
    return await loop.run_in_executor(None, lambda: "done")


def test_run_drives_a_coroutine_on_the_qt_loop(qapp: QApplication) -> None:
    assert eventloop.run(qapp, _qt_and_asyncio_together()) == "done"
    assert eventloop.run(qapp, _qt_and_asyncio_together()) == "done"


def test_run_cancels_what_is_left_and_closes_the_loop(qapp: QApplication) -> None:
    leftover: list[asyncio.Task[None]] = []

    async def main() -> asyncio.AbstractEventLoop:
        leftover.append(asyncio.create_task(asyncio.sleep(60)))
        return asyncio.get_running_loop()

    loop = eventloop.run(qapp, main())
    assert leftover[0].cancelled()
    assert loop.is_closed()
