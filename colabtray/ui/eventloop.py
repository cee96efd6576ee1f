"""The one place that creates colabtray's event loop: asyncio on top of Qt, through qasync.

The tray, its menus and notifications live on Qt's event loop; the backend client, the local
proxies and the editor bridge are asyncio code. qasync's ``QEventLoop`` runs both on one
thread: asyncio callbacks are dispatched from Qt's loop, and sockets are watched by Qt socket
notifiers.

Why this file matters: that notifier path is where PySide6 6.12.0 aborts the interpreter
under sustained socket traffic (``Fatal Python error: none_dealloc`` from qasync's notifier
callback), while 6.10.3 and 6.11.3 survive. pyproject pins PySide6 below 6.12 for that, and
``tests/integration/test_event_loop_stress.py`` pushes that kind of traffic through the loop
made here, so that a Qt upgrade that brings the crash back fails the tests, not users' sessions.
Build every loop of the app with :func:`create_event_loop` (or :func:`run`) so that the test
keeps covering what the app really runs.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

import qasync
from PySide6.QtWidgets import QApplication

T = TypeVar("T")


def create_event_loop(app: QApplication) -> asyncio.AbstractEventLoop:
    """Return a new qasync loop driven by ``app``'s Qt event loop, set as the current loop."""
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    return loop


def run(app: QApplication, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a loop from :func:`create_event_loop`, then close it.

    Like :func:`asyncio.run`: tasks still pending when ``main`` returns are cancelled,
    asynchronous generators and the default executor are shut down, and Ctrl-C cancels
    ``main``.
    """
    try:
        with asyncio.Runner(loop_factory=lambda: create_event_loop(app)) as runner:
            return runner.run(main)
    finally:
        asyncio.set_event_loop(None)
        # The closed loop leaves Qt objects (its timer, socket notifiers) in reference
        # cycles. Collect them here, on this (the GUI) thread: collected later on another
        # thread, Qt cannot stop their timers there and one may fire on freed memory.
        gc.collect()
