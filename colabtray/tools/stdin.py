"""This process's stdin, read in pieces off the event loop (for shell and ssh-proxy)."""

from __future__ import annotations

import asyncio
import os
import threading

PIECE = 64 * 1024


class StdinPieces:
    """Reads stdin in a daemon thread (a read that never returns, stdin held open, must not
    hold up the exit) and hands the loop its pieces, then None at the end. At most ``ahead``
    pieces wait to be taken, so a slow receiver slows the reading."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ahead: int = 8) -> None:
        self._loop = loop
        self._pieces: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._room = threading.Semaphore(ahead)
        threading.Thread(target=self._read, name="colabtray-stdin", daemon=True).start()

    async def next(self) -> bytes | None:
        """The next piece, or None once stdin has ended (or cannot be read)."""
        piece = await self._pieces.get()
        self._room.release()
        return piece

    def _read(self) -> None:
        # No coroutine is made here: the loop may end at any moment, and one it never ran
        # would be left unawaited.
        while True:
            self._room.acquire()
            try:
                piece = os.read(0, PIECE)
            except OSError:
                piece = b""
            try:
                self._loop.call_soon_threadsafe(self._pieces.put_nowait, piece or None)
            except RuntimeError:
                return  # the loop is closed
            if not piece:
                return
