"""An asyncio loop of its own in a daemon thread.

Socket work stays off the Qt loop (the bridge's ports; desktop-notifier's D-Bus connection,
whose signals never arrive on the qasync loop): each such part owns one of these and hands it
coroutines from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """``submit(coro)`` from any thread; the loop starts on first use (or ``start()``).

    ``stop()`` runs ``cleanup`` on the loop (if given), cancels what is still pending, closes
    the loop and joins the thread; a later ``submit`` starts a fresh loop.
    """

    def __init__(
        self, name: str, cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        self._name = name
        self._cleanup = cleanup
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, or None before start and after stop."""
        return self._loop

    def start(self, timeout: float = 10.0) -> asyncio.AbstractEventLoop:
        """Start the thread unless it runs; its loop. RuntimeError if it does not come up."""
        with self._lock:
            if self._loop is not None:
                return self._loop
            ready = threading.Event()
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=self._serve, args=(loop, ready), name=self._name)
            thread.daemon = True
            thread.start()
            if not ready.wait(timeout):
                raise RuntimeError(f"the {self._name} thread did not start")
            self._loop, self._thread = loop, thread
            return loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.start())

    def stop(self, timeout: float = 10.0) -> None:
        """Clean up, end the loop and the thread. Idempotent; callable from any thread but
        the loop's own."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if self._cleanup is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._cleanup(), loop).result(timeout)
        with contextlib.suppress(RuntimeError):  # already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
