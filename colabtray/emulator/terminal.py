"""A runtime's ``/colab/tty``: a login shell on a pseudo-terminal, over a WebSocket.

As on Colab the shell is bash inside tmux (plain bash when tmux is not installed), started in
the runtime's ``/content``. Frames are JSON text both ways (docs/protocol.md §12):
``{"data": "…"}`` carries keystrokes in and output out, ``{"cols": N, "rows": M}`` sets the
terminal's size (applied to the pty, so the shell and tmux see SIGWINCH). Each connection has
its own shell and its own tmux server (a private socket name); when the socket closes, the
shell ends, or the runtime stops, all of it is killed: every process that carries the
connection's mark in its environment, wherever it was reparented to (a background job whose
bash went on the pty's hangup without passing SIGHUP on is one). The proxy token is checked
before this module is reached.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import itertools
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import WSMsgType, web

from colabtray.emulator.state import Runtime

log = logging.getLogger("colabtray.emulator.terminal")

READ = 64 * 1024
GRACE = 2.0  # how long the shell gets to end after SIGHUP before it is killed
MAX_SIZE = 1000  # columns or rows beyond this are not a terminal
MARK = "COLABTRAY_TERMINAL"  # in the environment of everything a connection's shell starts
PROC = Path("/proc")


def set_size(fd: int, cols: int, rows: int) -> None:
    """Give the pty behind ``fd`` a size (the kernel tells its foreground group: SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def size_of(message: dict[str, object]) -> tuple[int, int] | None:
    """``(cols, rows)`` of a resize frame, or None when it is not a sensible one."""
    cols, rows = message.get("cols"), message.get("rows")
    if not isinstance(cols, int) or not isinstance(rows, int) or isinstance(cols, bool):
        return None
    if not (0 < cols <= MAX_SIZE and 0 < rows <= MAX_SIZE):
        return None
    return cols, rows


class RuntimeTerminal:
    """One runtime's terminal door: any number of shells, each its own."""

    def __init__(self, runtime: Runtime, *, binary: Callable[[], bool] = lambda: False) -> None:
        self._runtime = runtime
        self._binary = binary  # send output as binary frames (the admin API's switch)
        self._numbers = itertools.count(1)
        self._shells: set[_Shell] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(max_msg_size=1 << 20, compress=False, autoping=True)
        if not socket.can_prepare(request).ok:
            return web.Response(status=400, text="a WebSocket is expected here\n")
        label = f"colabtray-{os.getpid()}-{self._runtime.endpoint}-{next(self._numbers)}"
        try:
            shell = _Shell.start(self._content_dir(), label[:80])
        except OSError as exc:
            log.warning("runtime %s: no shell: %s", self._runtime.endpoint, exc)
            return web.Response(status=502, text="terminal unavailable\n")
        self._shells.add(shell)
        try:
            await socket.prepare(request)
            await _relay(socket, shell, self._binary)
        finally:
            self._shells.discard(shell)
            with contextlib.suppress(Exception):
                await socket.close()
            await shell.end()
        return socket

    def _content_dir(self) -> Path:
        content = self._runtime.root_dir / "content"
        return content if content.is_dir() else self._runtime.root_dir

    def stop(self) -> None:
        """Kill every shell of this runtime now (the runtime is going)."""
        for shell in list(self._shells):
            shell.kill()


class _Shell:
    """A shell process on a pty: its master end, its process group, its tmux server."""

    def __init__(
        self, process: subprocess.Popen[bytes], master: int, tmux: str | None, label: str
    ) -> None:
        self.process = process
        self.master = master
        self._tmux = tmux
        self._mark = f"{MARK}={label}".encode()
        self._closed = False

    @classmethod
    def start(cls, cwd: Path, label: str) -> _Shell:
        tmux = shutil.which("tmux")
        setsid = shutil.which("setsid")
        if tmux:
            # A private server, no user config; the pane runs a login bash in /content.
            argv = [tmux, "-L", label, "-f", os.devnull, "new-session", "-c", str(cwd)]
            argv += ["bash", "-l"]
        else:
            argv = ["bash", "-l"]
        if setsid:  # a session of its own with the pty as controlling terminal (job control)
            argv = [setsid, "-c", *argv]
        master, slave = os.openpty()
        try:
            set_size(master, 80, 24)
            env = dict(os.environ, TERM="xterm-256color", **{MARK: label})
            env.pop("TMUX", None)
            process = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                close_fds=True,
                start_new_session=not setsid,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return cls(process, master, label if tmux else None, label)

    async def end(self) -> None:
        """SIGHUP to the shell's group (as a terminal closing does) and to every process it
        started, then SIGKILL to what is left after GRACE; the tmux server is killed with it."""
        self._signal(signal.SIGHUP)
        await asyncio.to_thread(self._kill_tmux)
        await asyncio.to_thread(self._end_marked)
        try:
            async with asyncio.timeout(GRACE):
                await asyncio.to_thread(self.process.wait)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await asyncio.to_thread(self.process.wait)
        self._close()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self._kill_tmux()
        self._signal_marked(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)

    def _marked(self) -> list[int]:
        """Live processes with this shell's mark in their environment (none where there is no
        /proc to look in: there the shell's group and tmux server are all that is ended)."""
        found = []
        for entry in PROC.glob("[0-9]*"):
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_bytes().rpartition(b")")[2].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X") and self._mark in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def _signal_marked(self, number: int) -> None:
        for pid in self._marked():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, number)

    def _end_marked(self) -> None:
        """SIGHUP to every marked process, SIGKILL to those still there after GRACE."""
        self._signal_marked(signal.SIGHUP)
        deadline = time.monotonic() + GRACE
        while self._marked() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_marked(signal.SIGKILL)

    def _kill_tmux(self) -> None:
        if self._tmux is None:
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["tmux", "-L", self._tmux, "kill-server"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=5,
                check=False,
            )

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.master)


async def _relay(socket: web.WebSocketResponse, shell: _Shell, binary: Callable[[], bool]) -> None:
    """Frames in to the pty, the pty's output out, until either side ends."""
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes | None] = asyncio.Queue()

    def readable() -> None:
        try:
            piece = os.read(shell.master, READ)
        except BlockingIOError:
            return
        except OSError:  # EIO: every process holding the pty has gone
            piece = b""
        if not piece:
            loop.remove_reader(shell.master)
        output.put_nowait(piece or None)

    loop.add_reader(shell.master, readable)

    async def inward() -> None:
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
            try:
                frame = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            data = frame.get("data")
            if isinstance(data, str) and data:
                await _write(shell.master, data.encode("utf-8", "replace"))
            size = size_of(frame)
            if size is not None:
                set_size(shell.master, *size)

    async def outward() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while (piece := await output.get()) is not None:
            if binary():
                await socket.send_bytes(piece)
                continue
            text = decoder.decode(piece)
            if text:
                await socket.send_str(json.dumps({"data": text}))

    tasks = {asyncio.create_task(inward()), asyncio.create_task(outward())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(shell.master)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _write(fd: int, data: bytes) -> None:
    """All of ``data`` to the non-blocking pty master, waiting while its buffer is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        view = view[written:]
