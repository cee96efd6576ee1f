"""The control channel through which a second ``colabtray`` and the CLI talk to the running app.

The running instance holds the lock of :mod:`colabtray.system.instance` and listens on a Unix socket
next to it (in the user's 0700 runtime directory). A second ``colabtray`` finds the lock
held, sends ``show`` and exits.

Wire format: one JSON line each way, then the connection closes::

    → {"v": 1, "cmd": "show", "args": {}}
    ← {"v": 1, "ok": true, "result": {...}}   or   {"v": 1, "ok": false, "error": "sentence"}

A client first makes sure the lock is held (:func:`colabtray.system.instance.instance_running`):
without a live instance it connects nowhere. Over a UNIX socket (in the user's 0700 directory)
each side checks, on Linux, that the other is the same user (SO_PEERCRED). A loopback port
(Windows, a runtime dir too deep for a socket's path, or forced: see
:mod:`colabtray.system.instance`) is open to every local user, so there both sides prove they
know the secret in the instance's 0600 file before the request, without sending it::

    → {"v": 1, "hello": CLIENT_NONCE}
    ← {"v": 1, "nonce": SERVER_NONCE, "proof": HMAC(secret, "server" label, both nonces)}
    → {"v": 1, "cmd": ..., "args": ..., "proof": HMAC(secret, "client" label, both nonces)}

The client sends its command only after the server's proof checks out (HMAC-SHA256, nonces of
32 random bytes in hex, compared in constant time); whatever else listens on that port gets the
greeting, nothing more, and the person reads that something else is listening.

Requests are validated strictly (version, known command, object arguments, one line of at
most 64 KiB; greeting and request read within 5 s). The socket, the file and the lock are
touched every hour, so a cleaner of old files in the runtime dir leaves them alone. Every
request line gets one JSON reply, however malformed (too deep, not UTF-8, not an object…), and
the socket holds at most MAX_CONNECTIONS connections (:mod:`colabtray.listen.connections`).
Commands are a small registry: ``server.register("url", handler)`` adds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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

from colabtray.errors import UserError, bug_sentence, describe_os_error
from colabtray.listen.connections import ConnectionGuard
from colabtray.system.instance import (
    InstanceError,
    InstanceLock,
    instance_running,
    is_unix_socket,
    socket_path,
)

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024
READ_TIMEOUT = 5.0
MAX_CONNECTIONS = 32
TOUCH_EVERY = 3600.0  # XDG: files in the runtime dir untouched for 6 hours may be removed
NONCE_BYTES = 32
# What each side's proof covers besides both nonces: one side's proof never passes for the other's.
SERVER_PROVES = b"colabtray control channel: the server knows the secret\0"
CLIENT_PROVES = b"colabtray control channel: the client knows the secret\0"
MIN_SECRET = 32  # characters; the server makes 43 (token_urlsafe(32))
BUSY = "colabtray is busy with other requests; try again."

Reply = dict[str, Any]
Handler = Callable[[dict[str, Any]], Reply | Awaitable[Reply]]


class IpcError(InstanceError):
    """The channel failed; ``message`` is a sentence for the user."""


class NotRunningError(IpcError):
    def __init__(self) -> None:
        super().__init__("colabtray is not running.")


class ImpostorError(IpcError):
    """Whatever answers on the channel did not prove it is the colabtray that holds the lock."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"Something else is listening on colabtray's control {where}; nothing was sent "
            "(restart colabtray to get a channel of its own)."
        )


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
            refusal=_line(_error(BUSY)),
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
            from colabtray.system.jsonfile import write_atomically  # the server's side only

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
                reply = await self._answer(reader, writer)
            except Exception:  # a bug of ours: still an answer, and the traceback in the log
                log.exception("control request failed")
                reply = _error(bug_sentence("to answer"))
            writer.write(_line(reply))
            async with asyncio.timeout(READ_TIMEOUT):
                await writer.drain()
        except (OSError, TimeoutError) as exc:
            log.info("control connection dropped: %s", type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Reply:
        try:
            async with asyncio.timeout(READ_TIMEOUT):  # greeting and request alike
                secret = self._secret
                proof = await self._handshake(reader, writer, secret) if secret else None
                line = await reader.readline()
            name, args = self._validate(line, proof)
        except TimeoutError:
            return _error("No request arrived in time.")
        except IpcError as exc:
            return _error(exc.message)
        except ValueError:  # a line longer than MAX_LINE
            return _error("The request is too long.")
        with self._guard.serving(writer.transport):  # a command may take its time
            return await self._run(name, args)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: str
    ) -> str:
        """Over a loopback port: answer the client's greeting with this side's proof; return the
        proof the client's request must carry."""
        hello = _parse(await reader.readline())
        client_nonce = _nonce(hello.get("hello"))
        if set(hello) != {"v", "hello"} or not _is_version(hello["v"]) or client_nonce is None:
            raise IpcError(
                "The connection must begin with colabtray's greeting (a version and a nonce)."
            )
        server_nonce = secrets.token_bytes(NONCE_BYTES)
        proof = _proof(secret, SERVER_PROVES, client_nonce, server_nonce)
        writer.write(_line({"v": PROTOCOL_VERSION, "nonce": server_nonce.hex(), "proof": proof}))
        await writer.drain()
        return _proof(secret, CLIENT_PROVES, client_nonce, server_nonce)

    async def _run(self, name: str, args: dict[str, Any]) -> Reply:
        try:
            result = self._handlers[name](args)
            if inspect.isawaitable(result):
                result = await result
        except UserError as exc:
            return _error(exc.message)
        except Exception as exc:
            log.error("control command %s failed", name, exc_info=exc)
            return _error(bug_sentence(f"to run {name!r}", type(exc).__name__))
        if not isinstance(result, dict):
            log.error("control command %s returned %s", name, type(result).__name__)
            return _error(bug_sentence(f"to run {name!r}"))
        return {"v": PROTOCOL_VERSION, "ok": True, "result": result}

    def _validate(self, line: bytes, proof: str | None) -> tuple[str, dict[str, Any]]:
        message = _parse(line)
        if proof is not None and not _same(message.pop("proof", None), proof):
            raise IpcError("The request lacks colabtray's secret.")
        unknown = set(message) - {"v", "cmd", "args"}
        if unknown:
            names = ", ".join(repr(name) for name in sorted(unknown))
            raise IpcError(f"Unknown fields in the request: {names}.")
        version = message.get("v")
        if not _is_version(version):
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
        return json.dumps(_error(bug_sentence("to answer"))).encode() + b"\n"


def _parse(line: bytes) -> dict[str, Any]:
    """One request line as a JSON object, else IpcError with the sentence that says why."""
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
    return message


def _is_version(value: object) -> bool:
    return type(value) is int and value == PROTOCOL_VERSION


def _nonce(value: object) -> bytes | None:
    """A nonce as sent: exactly NONCE_BYTES in lowercase hex, else None."""
    digits = "0123456789abcdef"
    if not isinstance(value, str) or len(value) != 2 * NONCE_BYTES:
        return None
    if any(char not in digits for char in value):
        return None
    return bytes.fromhex(value)


def _proof(secret: str, label: bytes, client_nonce: bytes, server_nonce: bytes) -> str:
    message = label + client_nonce + server_nonce
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _same(given: object, expected: str) -> bool:
    """``given`` is the string ``expected``, compared in constant time."""
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode()
    )


def _peer_uid(sock: socket.socket | None) -> int | None:
    """The uid at the other end of a UNIX socket, where the OS tells it (Linux), else None."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if sock is None or peercred is None or sock.family != getattr(socket, "AF_UNIX", None):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid


def _same_user(sock: socket.socket | None) -> bool:
    """The peer is this user, where the OS tells (a UNIX socket on Linux); elsewhere the 0700
    directory guards a UNIX socket, and the proofs of the secret a loopback port."""
    uid = _peer_uid(sock)
    return uid is None or uid == os.getuid()


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

    ``wait_for_server``: keep trying to connect that long (an instance may be starting: the
    lock not yet held, or its channel not yet open). Nothing is sent unless a live instance
    holds the lock and, over a loopback port, what listens there proved it knows the secret.
    Raises NotRunningError, ImpostorError or IpcError with a sentence.
    """
    path = socket_path(config_dir)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_for_server
    while True:
        try:
            reader, writer, secret, where = await _connect(config_dir, path, answer_within)
            break
        except (FileNotFoundError, ConnectionRefusedError, NotRunningError):
            if loop.time() >= deadline:
                raise NotRunningError() from None
            await asyncio.sleep(0.05)
        except TimeoutError:
            raise IpcError(f"colabtray did not answer within {answer_within:.0f} s.") from None
        except OSError:
            raise IpcError("The connection to colabtray failed.") from None
    try:
        message: dict[str, Any] = {"v": PROTOCOL_VERSION, "cmd": command, "args": args or {}}
        if secret is not None:
            message["proof"] = await _prove(reader, writer, secret, where, answer_within)
        writer.write(_line(message))
        async with asyncio.timeout(answer_within):
            await writer.drain()
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


async def _connect(
    config_dir: Path, path: Path, within: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str | None, str]:
    """Open the channel of the live instance: reader, writer, the secret to prove over a
    loopback port (None over a UNIX socket), and where it is, for sentences.

    NotRunningError (nobody holds the lock), FileNotFoundError or ConnectionRefusedError (its
    channel is not open yet) before connecting anywhere.
    """
    try:
        running = instance_running(config_dir)
    except OSError as exc:
        sentence = f"colabtray's lock in {path.parent} cannot be read ({describe_os_error(exc)})."
        raise IpcError(sentence) from None
    if not running:
        raise NotRunningError()
    if is_unix_socket(path):
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE)
        if not _same_user(writer.get_extra_info("socket")):
            writer.close()
            raise ImpostorError(f"socket {path}")
        return reader, writer, None, f"socket {path}"
    port, secret = _address(path)
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=MAX_LINE)
    return reader, writer, secret, f"port (127.0.0.1:{port})"


async def _prove(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    secret: str,
    where: str,
    within: float,
) -> str:
    """Greet the server with a nonce and check its proof; return this side's proof for the
    request. ImpostorError if the answer is anything but the right proof: then nothing but the
    greeting was sent."""
    client_nonce = secrets.token_bytes(NONCE_BYTES)
    writer.write(_line({"v": PROTOCOL_VERSION, "hello": client_nonce.hex()}))
    try:
        async with asyncio.timeout(within):
            await writer.drain()
            raw = await reader.readline()
    except (OSError, ValueError):  # dropped, or a line longer than MAX_LINE
        raise ImpostorError(where) from None
    if raw == _line(_error(BUSY)):  # the connection limit's refusal comes before any greeting
        raise IpcError(BUSY)
    try:
        challenge = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        challenge = None
    if not isinstance(challenge, dict):
        raise ImpostorError(where)
    server_nonce = _nonce(challenge.get("nonce"))
    if server_nonce is None or not _same(
        challenge.get("proof"), _proof(secret, SERVER_PROVES, client_nonce, server_nonce)
    ):
        raise ImpostorError(where)
    return _proof(secret, CLIENT_PROVES, client_nonce, server_nonce)


def _address(path: Path) -> tuple[int, str]:
    """The port and secret in the instance's file; FileNotFoundError if there is none usable
    (the instance is starting; written atomically, it is never half there)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FileNotFoundError(path) from None
    if not isinstance(data, dict):
        raise FileNotFoundError(path)
    port, secret = data.get("port"), data.get("secret")
    if type(port) is not int or not 0 < port < 65536:
        raise FileNotFoundError(path)
    if not isinstance(secret, str) or len(secret) < MIN_SECRET:
        raise FileNotFoundError(path)  # never a proof anyone could make without the file
    return port, secret


def _read_reply(raw: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        reply = None
    if not isinstance(reply, dict) or reply.get("v") != PROTOCOL_VERSION:
        raise IpcError("colabtray answered something this version cannot read; restart it.")
    if reply.get("ok") is True and isinstance(reply.get("result"), dict):
        return reply["result"]
    error = reply.get("error")
    raise IpcError(error if isinstance(error, str) else "colabtray refused the command.")
