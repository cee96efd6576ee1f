"""The editor bridge as a whole: a loop in a thread of its own, one server per runtime.

The bridge's network work runs on its own asyncio loop in a worker thread, away from the Qt
loop (docs/testing-notes.md §1: heavy socket traffic on the qasync loop can crash
PySide6, and a busy download must not make the tray stutter). Every public method of
:class:`Bridge` may be called from any thread and returns at once.

Each runtime keeps its port and secret while it lives, also across restarts of the app
(:mod:`colabtray.bridge.store`); when it goes, its URL answers 502 "this Colab runtime was
disconnected" for a while and then closes, and its server file and address are forgotten.

The ports listen from the start, but the HTTP machinery (aiohttp, about 14 MB of resident
memory) is loaded only when an editor first connects to one of them: a tray with runtimes that
no editor uses stays light (benchmarks/tray.py). The first connection waits in the port's
backlog meanwhile and is then served like any other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import shlex
import socket
import time
import webbrowser
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colabtray.bridge.discovery import Discovery
from colabtray.bridge.kernel_messages import DRIVE_REPLY_WITHIN, Credentials
from colabtray.bridge.store import Address, AddressBook
from colabtray.bridge.upstream import (
    GONE_SENTENCE,
    SIGNED_OUT_SENTENCE,
    Asks,
    MainLoopBackend,
    RuntimeBackend,
    Upstream,
)
from colabtray.core.registry import RuntimeRemoved
from colabtray.listen.connections import ConnectionGuard, listening_socket
from colabtray.settings import Settings
from colabtray.system import tasks, trust
from colabtray.system.loop_thread import LoopThread

if TYPE_CHECKING:
    import aiohttp

    from colabtray.bridge.proxy import RuntimeServer
    from colabtray.core.fleet import Runtimes

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# The variable jupyter_server's GatewayClient takes its auth_token from.
GATEWAY_TOKEN_ENV = "JUPYTER_GATEWAY_AUTH_TOKEN"
# How long a disconnected runtime's URL keeps answering 502 before its port closes (seconds).
GONE_GRACE = 300.0
# Connections a port holds while the bridge loads its HTTP machinery.
BACKLOG = 128


@dataclass
class _Port:
    """One runtime's listening socket, and its server once an editor has connected."""

    sock: socket.socket
    port: int
    secret: str
    server: RuntimeServer | None = None
    gone: bool = False
    why: str = ""  # once gone: what its 502 says (the proxy's sentences)


class Bridge:
    """One local Jupyter URL per runtime; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        backend: RuntimeBackend,
        *,
        jupyter_runtime_dir: Path | None = None,
        open_browser: Callable[[str], bool] = webbrowser.open,
        consent_timeout: float = 300.0,
        drive_reply_within: float = DRIVE_REPLY_WITHIN,
        gone_grace: float = GONE_GRACE,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._book = AddressBook(settings.state_dir)
        self._discovery = Discovery(jupyter_runtime_dir)
        self._credentials = Credentials(
            backend.propagate_credentials,
            open_browser,
            ask=backend.may_open_consent,
            consent_timeout=consent_timeout,
            drive_reply_within=drive_reply_within,
        )
        self._secrets = backend.notebook_secret
        self._gone_grace = gone_grace
        self._ports: dict[str, _Port] = {}  # only touched on the bridge loop
        self._urls: dict[str, tuple[int, str]] = {}  # replaced whole: safe to read anywhere
        self._activity: dict[str, float] = {}
        self._runner = LoopThread("colabtray-bridge", cleanup=self._shut_down)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # serving ports, closing retired ones
        self._published: dict[str, str] = {}  # endpoint → name in its server file
        self._sync_lock = asyncio.Lock()  # binds to the bridge loop on first use
        # One budget of connections for all ports, so that more runtimes do not mean more
        # file descriptors for a flood to take.
        self._connections: ConnectionGuard | None = None  # made on the bridge loop

    # ---- what the rest of the app calls (any thread) --------------------------------------

    def start(self) -> None:
        """Start the bridge's thread and loop; removes server files a crashed run left."""
        if self._runner.loop is not None:
            return
        removed = self._discovery.clean_stale()
        if removed:
            log.info("removed %d stale Jupyter server file(s) of colabtray", removed)
        try:
            self._runner.start()
        except RuntimeError:
            raise RuntimeError("the editor bridge did not start") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Close every server, remove the server files, end the thread. Idempotent."""
        self._runner.stop(timeout)
        self._discovery.withdraw_all()

    def sync(
        self,
        runtimes: Mapping[str, str],
        *,
        complete: bool,
        signed_out: Collection[str] = (),
    ) -> concurrent.futures.Future[None]:
        """Bridge exactly these runtimes (endpoint → name).

        ``complete`` says the list is the backend's full answer, so remembered addresses of
        runtimes not in it may be forgotten. Those of ``signed_out`` that go were not
        disconnected: their account was signed out, and their 502 says so. Returns a future
        done once the ports listen.
        """
        loop = self._runner.loop
        if loop is None:
            raise RuntimeError("the editor bridge is not running")
        work = self._sync(dict(runtimes), complete, frozenset(signed_out))
        future = asyncio.run_coroutine_threadsafe(work, loop)
        future.add_done_callback(_log_failure)
        return future

    @property
    def running(self) -> bool:
        return self._runner.loop is not None

    def url_for(self, endpoint: str) -> str | None:
        """``http://127.0.0.1:PORT/?token=SECRET`` while the runtime is bridged, else None."""
        entry = self._urls.get(endpoint)
        return f"http://{HOST}:{entry[0]}/?token={entry[1]}" if entry else None

    def gateway_command(self, endpoint: str) -> str | None:
        """A ready shell line that runs ``jupyter lab`` with its kernels on the runtime.

        The secret goes in the environment (``JUPYTER_GATEWAY_AUTH_TOKEN``, which
        jupyter_server's GatewayClient reads), never in ``jupyter lab``'s arguments: every
        local user can read a process's argv.
        """
        entry = self._urls.get(endpoint)
        if entry is None:
            return None
        return (
            f"{GATEWAY_TOKEN_ENV}={shlex.quote(entry[1])} "
            f"jupyter lab --gateway-url=http://{HOST}:{entry[0]}"
        )

    def last_activity(self, endpoint: str) -> datetime | None:
        """When editor traffic last passed for the runtime (None: never in this run)."""
        seen = self._activity.get(endpoint)
        return datetime.fromtimestamp(seen, UTC) if seen is not None else None

    def bridged(self) -> set[str]:
        return set(self._urls)

    @property
    def serving(self) -> bool:
        """Whether an editor has connected yet (and the HTTP machinery is loaded)."""
        return self._session is not None

    # ---- the bridge's loop ----------------------------------------------------------------

    async def _shut_down(self) -> None:
        try:
            await self._close_all()
        finally:
            if self._session is not None:
                await self._session.close()
                self._session = None

    def _activity_seen(self, endpoint: str) -> None:
        self._activity[endpoint] = time.time()

    async def _sync(
        self, runtimes: dict[str, str], complete: bool, signed_out: frozenset[str]
    ) -> None:
        # One at a time: a sync that waits for a port to open must not race the next one
        # into opening a second server for the same runtime.
        async with self._sync_lock:
            await self._sync_now(runtimes, complete, signed_out)

    async def _sync_now(
        self, runtimes: dict[str, str], complete: bool, signed_out: frozenset[str]
    ) -> None:
        for endpoint in [ep for ep in self._ports if ep not in runtimes]:
            why = SIGNED_OUT_SENTENCE if endpoint in signed_out else GONE_SENTENCE
            self._retire(endpoint, forget_address=complete, why=why)
        for endpoint, name in runtimes.items():
            entry = self._ports.get(endpoint)
            if entry is None:
                await self._open(endpoint, name)
            elif not entry.gone and self._published.get(endpoint) != name:  # renamed
                self._publish(endpoint, name, entry.port, entry.secret)
        if complete:
            self._book.drop(self._book.endpoints() - set(runtimes))

    async def _open(self, endpoint: str, name: str) -> None:
        address = self._book.get(endpoint)
        taken = {entry.port for entry in self._ports.values()}
        sock = None
        if address.port and address.port not in taken:
            try:
                sock = _listen(address.port)
            except OSError:
                log.info("port %d of %s is taken now; choosing another", address.port, endpoint)
        if sock is None:
            sock = _listen(0)
        port = int(sock.getsockname()[1])
        entry = self._ports[endpoint] = _Port(sock, port, address.secret)
        if self.serving:
            await self._serve(endpoint, entry)
        else:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._editor_arrived)
        self._book.put(endpoint, Address(port, address.secret))
        self._publish(endpoint, name, port, address.secret)
        self._urls = {**self._urls, endpoint: (port, address.secret)}
        log.info("bridging runtime %s on port %d", endpoint, port)

    def _editor_arrived(self) -> None:
        """A first connection waits on a port: load the HTTP side and serve every port."""
        if not any(t.get_name() == "serve" for t in self._tasks):
            task = asyncio.create_task(self._serve_all(), name="serve")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve_all(self) -> None:
        async with self._sync_lock:
            if self._session is None:
                log.info("an editor connected: starting the bridge's HTTP side")
                self._session = _client_session(self._settings)
            for endpoint, entry in list(self._ports.items()):
                if entry.server is None:
                    await self._serve(endpoint, entry)

    async def _serve(self, endpoint: str, entry: _Port) -> None:
        from colabtray.bridge.proxy import RuntimeServer
        from colabtray.listen.http import BUSY

        assert self._session is not None
        if self._connections is None:
            self._connections = ConnectionGuard("editor bridge", refusal=BUSY)
        server = RuntimeServer(
            endpoint,
            secret=entry.secret,
            upstream=Upstream(endpoint, self._backend),
            session=self._session,
            credentials=self._credentials,
            secrets=self._secrets,
            client_agent=self._settings.client_agent,
            on_activity=self._activity_seen,
            on_gone=self._on_gone,
            connections=self._connections,
        )
        if entry.gone:
            server.mark_gone(entry.why)
        asyncio.get_running_loop().remove_reader(entry.sock.fileno())  # the server accepts now
        await server.start_on(entry.sock)
        entry.server = server

    def _publish(self, endpoint: str, name: str, port: int, secret: str) -> None:
        self._discovery.publish(endpoint, name, port, secret)
        self._published[endpoint] = name

    def _on_gone(self, endpoint: str) -> None:
        """A request found the runtime gone (before the registry told us)."""
        self._retire(endpoint, forget_address=True)

    def _retire(self, endpoint: str, *, forget_address: bool, why: str = GONE_SENTENCE) -> None:
        """Stop forwarding at once; answer 502 for a while; then close the port."""
        entry = self._ports.get(endpoint)
        if entry is None:
            return
        if not entry.gone:
            entry.gone, entry.why = True, why
        if entry.server is not None:
            entry.server.mark_gone(entry.why)
        self._urls = {ep: v for ep, v in self._urls.items() if ep != endpoint}
        self._discovery.withdraw(endpoint)
        self._published.pop(endpoint, None)
        if forget_address:
            self._book.drop({endpoint})
        if not any(t.get_name() == f"retire:{endpoint}" for t in self._tasks):
            retiring = self._close_later(endpoint, entry)
            tasks.held(self._tasks, asyncio.create_task(retiring, name=f"retire:{endpoint}"))
        log.info("runtime %s is no longer bridged", endpoint)

    async def _close_later(self, endpoint: str, entry: _Port) -> None:
        try:
            await asyncio.sleep(self._gone_grace)
        finally:
            if self._ports.get(endpoint) is entry:
                del self._ports[endpoint]
            await self._close(entry)

    async def _close(self, entry: _Port) -> None:
        if entry.server is not None:
            await entry.server.stop()  # closes the socket too
        else:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(entry.sock.fileno())
            entry.sock.close()

    async def _close_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        entries = list(self._ports.values())
        self._ports.clear()
        self._urls = {}
        await asyncio.gather(*(self._close(e) for e in entries), return_exceptions=True)
        self._discovery.withdraw_all()


def _listen(port: int) -> socket.socket:
    """A listening TCP socket on the loopback address; OSError if the port is taken."""
    return listening_socket(HOST, port, BACKLOG)


def _client_session(settings: Settings) -> aiohttp.ClientSession:
    """The one HTTP client of the bridge (made on its loop): bytes pass as they come."""
    import aiohttp

    from colabtray.bridge.proxy import CHUNK

    return aiohttp.ClientSession(
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=0, ssl=trust.verification(settings)),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=15),
        read_bufsize=CHUNK,
        # Headers the editor did not send are not made up for it.
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        # No trust_env: RuntimeServer passes the environment's proxy itself (see
        # colabtray.system.proxies), and netrc has no business with a runtime's requests.
        trust_env=False,
    )


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("the editor bridge could not follow the runtimes", exc_info=future.exception())


def bridge_registry(
    settings: Settings,
    registry: Runtimes,
    *,
    on_change: Callable[[], None] | None = None,
    asks: Asks | None = None,
    **options: Any,  # Bridge's keywords
) -> Bridge:
    """Start a bridge that follows ``registry``; call it on the registry's loop.

    The bridge asks the registry for fresh runtimes (and the backend for credentials) on that
    loop, and bridges whatever runtimes the registry lists after each of its events.
    ``on_change`` is called on that loop once the ports follow (URLs came or went).
    """
    loop = asyncio.get_running_loop()
    backend = MainLoopBackend(registry, loop, asks=asks)
    bridge = Bridge(settings, backend, **options)
    bridge.start()

    def synced(_done: object) -> None:
        if on_change is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(on_change)

    signed_out: set[str] = set()  # runtimes whose account was signed out, not yet retired

    def follow(event: object = None) -> None:
        if isinstance(event, RuntimeRemoved) and event.signed_out:
            signed_out.add(event.endpoint)
        if not bridge.running:
            return
        state = registry.state
        runtimes = {ep: registry.name_of(ep) for ep in state.runtimes}
        future = bridge.sync(runtimes, complete=state.loaded, signed_out=set(signed_out))
        signed_out.intersection_update(runtimes)  # kept until they have left the list
        future.add_done_callback(synced)

    registry.subscribe(follow)
    follow()
    return bridge
