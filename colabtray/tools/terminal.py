"""``colabtray shell NAME``: this terminal connected to a shell on a runtime, through the
runtime's ``/colab/tty`` WebSocket (JSON text frames: ``{"data": …}`` both ways, and
``{"cols": N, "rows": M}`` on open and on every resize; docs/protocol.md §12).

* **On a terminal** the local terminal goes into raw mode (every key goes to the runtime,
  Ctrl-C and Ctrl-D included) and is put back however the session ends.
* **Piped** (stdin not a terminal) an EXIT trap that prints a marker with the shell's status
  is typed first, then what stdin gives, then ``exit`` (Colab's shell is bash in tmux, which
  takes a bare Ctrl-D literally). The session ends when the marker comes back (or the runtime
  closes the socket), however long the commands are quiet, and the status is colabtray's.
  The output is the terminal as tmux draws it: tmux redraws a screen rather than passing the
  shell's bytes on, so plain text cannot be had from ``/colab/tty`` (``colabtray ssh NAME
  CMD`` gives plain output).
* While open the running app hears about once a minute that the runtime is in use.
* Failures are one sentence; the socket's URL (the token is in its query) is never shown.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
from typing import Any

import aiohttp

from colabtray import hints
from colabtray.colab import errors
from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.tools import reach
from colabtray.tools.stdin import StdinPieces

log = logging.getLogger(__name__)

PATH = "/colab/tty"
READ = 64 * 1024
# Typed before a piped session's input: on any exit the shell prints its status between
# markers. The typed line's echo shows ``%s`` where the output has digits, so only the output
# matches ENDED.
TRAP = """ trap 'printf "\\n[colabtray-exit %s]\\n" "$?"' EXIT\n"""
ENDED = re.compile(r"\[colabtray-exit (\d{1,3})\]")
CLOSED = "Connection to Colab terminal closed."


class ShellError(UserError):
    """The shell could not start, or was lost: one sentence."""


async def shell(settings: Settings, query: str, ask: reach.Ask) -> int:
    """Connect this process's stdin and stdout to a shell on the runtime ``query`` names."""
    if os.name == "nt":
        raise ShellError("colabtray shell needs a POSIX terminal (Linux or macOS) for now.")
    runtime = await reach.reach(ask, query)
    async with reach.runtime_session(
        settings, timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.request_timeout)
    ) as http:
        runtime, socket = await _open(http, runtime, ask, query)
        try:
            async with reach.in_use(settings, runtime.endpoint):
                if sys.stdin.isatty():
                    await _interactive(socket)
                    status: int | None = 0
                else:
                    status = await _piped(socket)
        finally:
            await socket.close()
        if not await _answers(http, runtime):
            raise ShellError(f"{runtime.name} was disconnected, and its terminal with it.")
        if status is None:
            raise ShellError(
                f"{runtime.name}'s terminal closed before its shell said how it ended, so its "
                "exit status is unknown (colabtray ssh runs a command and gives its status)."
            )
    print(CLOSED, file=sys.stderr)
    return status


async def _open(
    http: aiohttp.ClientSession, runtime: reach.Reached, ask: reach.Ask, query: str
) -> tuple[reach.Reached, aiohttp.ClientWebSocketResponse]:
    """The upgraded socket (once more with a new token if the first was refused)."""
    try:
        return await reach.open_socket(http, runtime, ask, query, PATH)
    except aiohttp.WSServerHandshakeError as exc:  # its text names the URL: never shown
        if exc.status in (401, 404):
            raise ShellError(
                f"The terminal session on {runtime.name} was lost (HTTP {exc.status}); "
                f"check it with {hints.command('status')} and try again."
            ) from None
        raise ShellError(f"{runtime.name} refused a terminal (HTTP {exc.status}).") from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        failed = errors.connection_failed(f"runtime {runtime.name}", exc, type(exc).__name__)
        if isinstance(failed, errors.UntrustedCertificateError):
            raise failed from None
        raise ShellError(
            f"Could not reach {runtime.name}'s terminal ({type(exc).__name__})."
        ) from None


async def _answers(http: aiohttp.ClientSession, runtime: reach.Reached) -> bool:
    """Whether the runtime still answers (after the socket closed: ended, or runtime gone?)."""
    try:
        async with http.get(
            runtime.url("/api/status"),
            headers=runtime.headers,
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


def _size() -> dict[str, int]:
    """The terminal's own size. Not COLUMNS and LINES first, as ``shutil`` reads them: where a
    shell exports them they stay fixed and would pin the remote size through every resize."""
    for fd in (1, 0):
        try:
            columns, lines = os.get_terminal_size(fd)
        except OSError:
            continue
        return {"cols": columns, "rows": lines}
    columns, lines = shutil.get_terminal_size()
    return {"cols": columns, "rows": lines}


def _out(data: str) -> None:
    view = memoryview(data.encode("utf-8", "replace"))
    while view:
        written = os.write(1, view)
        view = view[written:]


class _Ending:
    """Looks for ENDED in a piped session's output, which may split it across frames."""

    def __init__(self) -> None:
        self._tail = ""
        self.status: int | None = None

    def shown(self, data: str) -> str:
        """What of ``data`` to show: all of it, or what comes before the marker once it is
        there (what follows is tmux ending)."""
        text = self._tail + data
        found = ENDED.search(text)
        if found is None:
            self._tail = text[-40:]
            return data
        self.status = int(found.group(1))
        return data[: max(0, found.start() - len(self._tail))]


async def _show(socket: aiohttp.ClientWebSocketResponse, ending: _Ending | None = None) -> None:
    """The runtime's output to stdout as it comes, until the socket closes (or ``ending``
    has seen the shell's status). A binary frame is output too (the terminal's raw bytes, a
    character possibly split across frames), not the end of the session."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    async for message in socket:
        if message.type == aiohttp.WSMsgType.BINARY:
            data: object = decoder.decode(message.data)
        elif message.type == aiohttp.WSMsgType.TEXT:
            try:
                frame = json.loads(message.data)
            except ValueError:
                continue
            data = frame.get("data") if isinstance(frame, dict) else None
        else:
            break
        if not isinstance(data, str) or not data:
            continue
        if ending is None:
            _out(data)
            continue
        _out(ending.shown(data))
        if ending.status is not None:
            return


async def _interactive(socket: aiohttp.ClientWebSocketResponse) -> None:
    """Raw mode, keys out as they are typed, the size on open and on SIGWINCH."""
    import termios  # POSIX only
    import tty

    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    stop = asyncio.Event()

    def typed() -> None:
        try:
            piece = os.read(fd, READ)
        except OSError:
            piece = b""
        if not piece:
            loop.remove_reader(fd)
            frames.put_nowait(None)
            return
        if text := decoder.decode(piece):
            frames.put_nowait({"data": text})

    async def send_keys() -> None:
        await socket.send_str(json.dumps(_size()))
        while (frame := await frames.get()) is not None:
            await socket.send_str(json.dumps(frame))

    def resized() -> None:
        frames.put_nowait(_size())

    tty.setraw(fd, termios.TCSANOW)
    try:
        loop.add_reader(fd, typed)
        loop.add_signal_handler(signal.SIGWINCH, resized)
        for number in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(number, stop.set)
        tasks = {
            asyncio.create_task(_show(socket)),
            asyncio.create_task(send_keys()),
            asyncio.create_task(stop.wait()),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel(tasks)
    finally:
        loop.remove_reader(fd)
        for number in (signal.SIGWINCH, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(number)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        _out("\r\n")


async def _piped(socket: aiohttp.ClientWebSocketResponse) -> int | None:
    """Type TRAP, stdin, then ``exit``; over when the shell's status comes back (returned) or
    the socket closes first (None)."""
    loop = asyncio.get_running_loop()
    stdin = StdinPieces(loop)
    ending = _Ending()
    shown = asyncio.create_task(_show(socket, ending))

    async def send() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        await socket.send_str(json.dumps(_size()))
        await socket.send_str(json.dumps({"data": TRAP}))
        last = "\n"
        while (piece := await stdin.next()) is not None:
            if text := decoder.decode(piece):
                await socket.send_str(json.dumps({"data": text}))
                last = text[-1]
        rest = decoder.decode(b"", final=True) + ("" if last == "\n" else "\n")
        await socket.send_str(json.dumps({"data": rest + "exit\n"}))

    sending = asyncio.create_task(send())
    try:
        await shown
    finally:
        await _cancel({shown, sending})
    return ending.status


async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
