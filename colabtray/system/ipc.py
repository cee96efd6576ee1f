"""The control channel through which a second ``colabtray`` and the CLI talk to the running app.

The running instance holds the lock of :mod:`colabtray.system.instance` and listens on a Unix socket
next to it (in the user's 0700 runtime directory). A second ``colabtray`` finds the lock
held, sends ``show`` and exits.

Wire format: one JSON line each way, then the connection closes::

    → {"v": 1, "cmd": "show", "args": {}}
    ← {"v": 1, "ok": true, "result": {...}}   or   {"v": 1, "ok": false, "error": "sentence"}

Requests are validated strictly (version, known command, object arguments, one line of at
most 64 KiB, read within 5 s); over a UNIX socket on Linux the peer must also be the same user
(SO_PEERCRED); over a loopback port (Windows, or forced: :mod:`colabtray.system.instance`) every
request carries the ``secret`` from the instance's 0600 file. The socket, the file and the
lock are touched every hour, so a cleaner of old files in the runtime dir leaves them alone.
Every line gets one JSON reply, however malformed (too deep, not UTF-8, not an object…), and
the socket holds at most MAX_CONNECTIONS connections (:mod:`colabtray.listen.connections`).
Commands are a small registry: ``server.register("url", handler)`` adds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import json
import logging
import os
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from colabtray.core.jsonfile import read_json, write_atomically
from colabtray.errors import UserError
from colabtray.listen.connections import ConnectionGuard
from colabtray.system.instance import InstanceError, InstanceLock, is_unix_socket, socket_path

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024
READ_TIMEOUT = 5.0
MAX_CONNECTIONS = 32
TOUCH_EVERY = 3600.0  # XDG: files in the runtime dir untouched for 6 hours may be removed

Reply = dict[str, Any]
Handler = Callable[[dict[str, Any]], Reply | Awaitable[Reply]]


class IpcError(InstanceError):
    """The channel failed; ``message`` is a sentence for the user."""


class NotRunningError(IpcError):
    def __init__(self) -> None:
        super().__init__("colabtray is not running.")


# ---- the running app's side ----------------------------------------------------------------


class ControlServer:
    """The running instance: holds the lock, serves the registered commands."""

    def __init__(self, lock: InstanceLock) -> None:
        self.path = lock.socket
        self._lock: InstanceLock | None = lock
        self._handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None
        self._secret: str | None = None  # over a loopback port: what every request must carry
        self._toucher: asyncio.Task[None] | None = None
        self._guard = ConnectionGuard(
            "control socket",
            limit=MAX_CONNECTIONS,
            head_timeout=READ_TIMEOUT + 1,
            idle_timeout=READ_TIMEOUT,
            refusal=_line(_error("colabtray is busy with other requests; try again.")),
        )

    @classmethod
    def claim(cls, config_dir: Path) -> ControlServer | None:
        """Take the instance lock and serve for ``config_dir``; None if another one runs."""
        lock = InstanceLock.claim(config_dir)
        return cls(lock) if lock is not None else None

    def register(self, name: str, handler: Handler) -> None:
        """Answer command ``name`` with ``handler(args)`` (a dict, or an awaitable of one).

        The handler may raise IpcError (or any error with a ``message``) to answer with
        that sentence.
        """
        self._handlers[name] = handler

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a crash; the lock says it is stale
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=MAX_LINE, loop=loop)
            return asyncio.StreamReaderProtocol(reader, self._serve, loop=loop)

        if is_unix_socket(self.path):
            self._server = await loop.create_unix_server(
                self._guard.protocols(protocol), path=str(self.path)
            )
            self.path.chmod(0o600)
        else:
            self._server = await loop.create_server(self._guard.protocols(protocol), "127.0.0.1", 0)
            self._secret = secrets.token_urlsafe(32)
            port = self._server.sockets[0].getsockname()[1]
            write_atomically(self.path, json.dumps({"port": port, "secret": self._secret}))
        self._toucher = asyncio.create_task(self._touch_forever())

    async def _touch_forever(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_EVERY)
            lock = self._lock
            for path in (self.path, lock.path if lock is not None else None):
                if path is not None:
                    with contextlib.suppress(OSError):
                        os.utime(path)

    async def close(self) -> None:
        if self._toucher is not None:
            self._toucher.cancel()
            self._toucher = None
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _same_user(writer.get_extra_info("socket")):
                log.warning("refused a control connection from another user")
                return
            try:
                reply = await self._answer(reader, writer.transport)
            except Exception:  # a bug of ours: still an answer, and the traceback in the log
                log.exception("control request failed")
                reply = _error("colabtray failed to answer; see its log.")
            writer.write(_line(reply))
            async with asyncio.timeout(READ_TIMEOUT):
                await writer.drain()
        except (OSError, TimeoutError) as exc:
            log.info("control connection dropped: %s", type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(
        self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport
    ) -> Reply:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                line = await reader.readline()
        except TimeoutError:
            return _error("No request arrived in time.")
        except ValueError:  # longer than MAX_LINE
            return _error("The request is too long.")
        try:
            name, args = self._validate(line)
        except IpcError as exc:
            return _error(exc.message)
        with self._guard.serving(transport):  # a command may take its time
            return await self._run(name, args)

    async def _run(self, name: str, args: dict[str, Any]) -> Reply:
        try:
            result = self._handlers[name](args)
            if inspect.isawaitable(result):
                result = await result
        except UserError as exc:
            return _error(exc.message)
        except Exception as exc:
            log.error("control command %s failed", name, exc_info=exc)
            return _error(f"colabtray failed to run {name!r}; see its log.")
        if not isinstance(result, dict):
            log.error("control command %s returned %s", name, type(result).__name__)
            return _error(f"colabtray failed to run {name!r}; see its log.")
        return {"v": PROTOCOL_VERSION, "ok": True, "result": result}

    def _validate(self, line: bytes) -> tuple[str, dict[str, Any]]:
        if not line.endswith(b"\n"):
            raise IpcError("The request must be one line ending in a newline.")
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise IpcError("The request is not JSON.") from None
        except RecursionError:
            raise IpcError("The request is nested too deeply.") from None
        if not isinstance(message, dict):
            raise IpcError("The request must be a JSON object.")
        if self._secret is not None:
            given = message.pop("secret", None)
            if not isinstance(given, str) or not hmac.compare_digest(
                given.encode("utf-8", "surrogatepass"), self._secret.encode()
            ):
                raise IpcError("The request lacks colabtray's secret.")
        unknown = set(message) - {"v", "cmd", "args"}
        if unknown:
            names = ", ".join(repr(name) for name in sorted(unknown))
            raise IpcError(f"Unknown fields in the request: {names}.")
        version = message.get("v")
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise IpcError(
                f"This colabtray speaks protocol {PROTOCOL_VERSION}, not {version!r}; "
                "restart it after an upgrade."
            )
        name = message.get("cmd")
        if not isinstance(name, str) or name not in self._handlers:
            known = ", ".join(sorted(self._handlers))
            raise IpcError(f"Unknown command {name!r} (known: {known}).")
        args = message.get("args", {})
        if not isinstance(args, dict):
            raise IpcError("The command's arguments must be a JSON object.")
        return name, args


def _error(sentence: str) -> Reply:
    return {"v": PROTOCOL_VERSION, "ok": False, "error": sentence}


def _line(reply: Reply) -> bytes:
    try:
        return json.dumps(reply).encode() + b"\n"
    except (TypeError, ValueError):  # a handler's result JSON cannot carry
        log.exception("control reply could not be sent as JSON")
        return json.dumps(_error("colabtray failed to answer; see its log.")).encode() + b"\n"


def _same_user(sock: socket.socket | None) -> bool:
    """The peer's uid, where the OS tells it (Linux); elsewhere the 0700 directory guards."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if sock is None or peercred is None or sock.family != getattr(socket, "AF_UNIX", None):
        return True  # a loopback port: the secret in the 0600 file is the check
    raw = sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid == os.getuid()


# ---- the CLI's side ------------------------------------------------------------------------


async def request(
    config_dir: Path,
    command: str,
    args: dict[str, Any] | None = None,
    *,
    answer_within: float = READ_TIMEOUT,
    wait_for_server: float = 0.0,
) -> dict[str, Any]:
    """Send one command to the running instance and return its result.

    ``wait_for_server``: keep trying to connect that long (an instance that holds the lock
    may still be starting). Raises NotRunningError or IpcError with a sentence.
    """
    path = socket_path(config_dir)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_for_server
    secret: str | None = None
    while True:
        try:
            if is_unix_socket(path):
                opening = asyncio.open_unix_connection(str(path), limit=MAX_LINE)
            else:
                port, secret = _address(path)
                opening = asyncio.open_connection("127.0.0.1", port, limit=MAX_LINE)
            async with asyncio.timeout(answer_within):
                reader, writer = await opening
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if loop.time() >= deadline:
                raise NotRunningError() from None
            await asyncio.sleep(0.05)
        except TimeoutError:
            raise IpcError(f"colabtray did not answer within {answer_within:.0f} s.") from None
    try:
        request: dict[str, Any] = {"v": PROTOCOL_VERSION, "cmd": command, "args": args or {}}
        if secret is not None:
            request["secret"] = secret
        line = json.dumps(request)
        writer.write(line.encode() + b"\n")
        async with asyncio.timeout(answer_within):
            await writer.drain()
        async with asyncio.timeout(answer_within):
            raw = await reader.readline()
    except TimeoutError:
        raise IpcError(f"colabtray did not answer within {answer_within:.0f} s.") from None
    except (OSError, ValueError):
        raise IpcError("The connection to colabtray failed.") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return _read_reply(raw)


def _address(path: Path) -> tuple[int, str]:
    """The port and secret in the instance's file; FileNotFoundError if there is none usable
    (the instance is starting, or gone)."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("port"), int):
        raise FileNotFoundError(path)
    secret = data.get("secret")
    return data["port"], secret if isinstance(secret, str) else ""


def _read_reply(raw: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        reply = None
    if not isinstance(reply, dict) or reply.get("v") != PROTOCOL_VERSION:
        raise IpcError("colabtray answered something this version cannot read; restart it.")
    if reply.get("ok") is True and isinstance(reply.get("result"), dict):
        return reply["result"]  # type: ignore[no-any-return]
    error = reply.get("error")
    raise IpcError(error if isinstance(error, str) else "colabtray refused the command.")
