"""How many connections a listener holds, and how long it waits on one that asks nothing.

A :class:`ConnectionGuard` wraps a listener's protocol factory (for ``loop.create_server`` or
``loop.create_unix_server``); the listener says when it is busy with a request on a
connection (:meth:`ConnectionGuard.serving`). Then:

* a connection that has not delivered a complete request within ``head_timeout`` of
  connecting, or that sits idle ``idle_timeout`` after its last answer, is closed. The clock
  runs from the connection, not from its last byte, so a head sent a byte at a time is
  closed on time too;
* at most ``limit`` connections are open at once. One more closes an idle one to make room:
  first the oldest that never completed a request (a flood's), then the one idle longest
  between requests. So a flood of idle or half-sent connections crowds out neither a client
  with work in hand nor its kept-alive connections; if every connection is busy, the
  newcomer gets ``refusal`` and is closed;
* a flood is logged once when it starts and once when it is over, never per connection.

Busy connections (a request being answered, an open WebSocket) are never closed by the guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Seconds a new connection has to deliver its first complete request head.
HEAD_TIMEOUT = 10.0
# Seconds a connection may sit idle between requests (keep-alive) before it is closed.
IDLE_TIMEOUT = 30.0


def default_limit(share: int = 4, ceiling: int = 256) -> int:
    """A connection cap that leaves room under the process's file-descriptor limit: at most
    ``ceiling``, at most 1/``share`` of the soft limit (macOS starts at 256), at least 16."""
    try:
        import resource  # not on Windows, whose sockets have no such small limit
    except ImportError:
        return ceiling
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return ceiling
    if soft == resource.RLIM_INFINITY:
        return ceiling
    return max(16, min(ceiling, soft // share))


def listening_socket(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A bound, listening, non-blocking TCP socket; OSError if the address is taken.

    Nobody else may bind the same address while it listens: SO_REUSEADDR only where it means
    "reuse a port still in TIME_WAIT" (POSIX); on Windows it would let another program take
    the port over, so there the port is claimed exclusively.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
        if exclusive is not None:
            sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class _Connection:
    transport: asyncio.BaseTransport
    idle_since: float
    busy: int = 0
    served: bool = False  # has completed a request head at least once
    timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """Limits and deadlines for the connections of one listener; see the module docstring.

    Used on one event loop (the listener's); not thread-safe.
    """

    def __init__(
        self,
        name: str,
        *,
        limit: int | None = None,
        head_timeout: float = HEAD_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        refusal: bytes = b"",
    ) -> None:
        self.name = name
        self.limit = limit if limit is not None else default_limit()
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self._refusal = refusal
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self._flooding = False
        self._turned_away = 0  # closed or refused to make room, during the current flood

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def protocols(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """``factory`` for a server call, with every connection it makes under this guard."""

        def make() -> asyncio.Protocol:
            return _Watched(factory(), self)

        return make

    @contextlib.contextmanager
    def serving(self, transport: asyncio.BaseTransport | None) -> Iterator[None]:
        """The listener is answering a request on ``transport``: no deadline meanwhile."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is None:  # not ours, or already closed
            yield
            return
        connection.busy += 1
        connection.served = True
        _cancel(connection)
        try:
            yield
        finally:
            connection.busy -= 1
            if connection.busy == 0 and transport in self._open:
                self._arm(connection, self.idle_timeout)

    # ---- called by _Watched -----------------------------------------------------------------

    def _opened(self, transport: asyncio.BaseTransport) -> bool:
        """Admit a new connection (True), or refuse it (False: it is being closed)."""
        if len(self._open) >= self.limit and not self._close_longest_idle():
            self._flood_started()
            self._turned_away += 1
            if self._refusal and isinstance(transport, asyncio.WriteTransport):
                transport.write(self._refusal)
            transport.close()
            return False
        connection = _Connection(transport, asyncio.get_running_loop().time())
        self._open[transport] = connection
        self._arm(connection, self.head_timeout)
        return True

    def _closed(self, transport: asyncio.BaseTransport) -> None:
        connection = self._open.pop(transport, None)
        if connection is not None:
            _cancel(connection)
        if self._flooding and len(self._open) <= self.limit // 2:
            self._flooding = False
            log.warning(
                "%s: the flood of connections is over; %d were closed or refused to keep "
                "serving the others",
                self.name,
                self._turned_away,
            )
            self._turned_away = 0

    # ---- internals --------------------------------------------------------------------------

    def _arm(self, connection: _Connection, seconds: float) -> None:
        _cancel(connection)
        loop = asyncio.get_running_loop()
        connection.idle_since = loop.time()
        connection.timer = loop.call_later(seconds, self._expire, connection)

    def _expire(self, connection: _Connection) -> None:
        connection.timer = None
        if connection.busy == 0 and connection.transport in self._open:
            _abort(connection.transport)

    def _close_longest_idle(self) -> bool:
        idle = [c for c in self._open.values() if c.busy == 0]
        if not idle:
            return False
        self._flood_started()
        self._turned_away += 1
        oldest = min(idle, key=lambda c: (c.served, c.idle_since))
        self._open.pop(oldest.transport, None)
        _cancel(oldest)
        _abort(oldest.transport)
        return True

    def _flood_started(self) -> None:
        if not self._flooding:
            self._flooding = True
            log.warning(
                "%s: more than %d connections at once; closing the idle ones to keep serving "
                "(logged once until it is over)",
                self.name,
                self.limit,
            )


def _abort(transport: asyncio.BaseTransport) -> None:
    """Abort, not close: an idle peer that reads nothing must not keep a closing connection
    (and its buffers) around either. Every stream transport a server makes can."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


def _cancel(connection: _Connection) -> None:
    if connection.timer is not None:
        connection.timer.cancel()
        connection.timer = None


class _Watched(asyncio.Protocol):
    """A listener's protocol, seen by its guard when the connection opens and closes."""

    __slots__ = ("_guard", "_inner", "_refused", "_transport")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._refused = False
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._guard._opened(transport):
            self._inner.connection_made(transport)
        else:
            self._refused = True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard._closed(self._transport)
        if not self._refused:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._refused:
            return None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if not self._refused:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if not self._refused:
            self._inner.resume_writing()
