"""Where a bridged runtime is and with which proxy token, kept fresh from the bridge's thread.

The runtime registry and the backend client live on the app's main loop; the bridge runs on
a loop of its own in a worker thread. :class:`MainLoopBackend` carries calls across with
``asyncio.run_coroutine_threadsafe``; :class:`Upstream` caches one runtime's address and
proxy token on the bridge loop, refreshes it before it expires (in the background and, if
needed, before a request), and forces a refresh once when the runtime answers 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from colabtray.colab import errors
from colabtray.colab.models import PropagationResult, Runtime
from colabtray.colab.wire import PROXY_TOKEN_LEAD

log = logging.getLogger(__name__)

# What a bridged runtime's URL answers (502) once it is no longer bridged, and why.
GONE_SENTENCE = "this Colab runtime was disconnected"
SIGNED_OUT_SENTENCE = "this Colab runtime's account was signed out of colabtray"

T = TypeVar("T")

# Refresh when this much of the token's life is left (at most the renewal lead), so short
# test tokens (20 s) are refreshed at 5 s left rather than on every request.
AHEAD_SHARE = 0.25
AHEAD_MAX = PROXY_TOKEN_LEAD
# A broken connection to the runtime asks the backend whether it still exists, at most this
# often (seconds).
VERIFY_EVERY = 10.0


class RuntimeBackend(Protocol):
    """What the bridge needs from the rest of the app; awaited on the bridge's loop."""

    async def fresh_runtime(self, endpoint: str, *, force: bool, ahead: float) -> Runtime:
        """The runtime with a proxy token valid ``ahead`` seconds; RuntimeGoneError if gone."""
        ...

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult: ...

    async def notebook_secret(self, endpoint: str, name: str) -> dict[str, object]:
        """google.colab.userdata's reply: ``{"exists", "access", "payload"}``."""
        ...

    async def may_open_consent(self, endpoint: str, auth_type: str) -> bool:
        """Whether the person lets the runtime open Google's consent page."""
        ...


class Asks(Protocol):
    """What the person is asked on a runtime's behalf (the core, on its loop)."""

    async def notebook_secret(self, endpoint: str, name: str) -> dict[str, object]: ...

    async def may_open_consent(self, endpoint: str, auth_type: str) -> bool: ...

    @property
    def question_time(self) -> float:
        """How long a question may wait for its answer (seconds)."""
        ...


class RegistryLike(Protocol):
    """The runtimes of every account (``core.fleet.Fleet``), or of one (a registry)."""

    async def fresh_runtime(
        self, endpoint: str, *, force: bool = False, ahead: float = ...
    ) -> Runtime: ...

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult: ...


class MainLoopBackend:
    """Runs the registry's and the client's coroutines on the loop they belong to."""

    def __init__(
        self,
        registry: RegistryLike,
        loop: asyncio.AbstractEventLoop,
        *,
        asks: Asks | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._registry = registry
        self._loop = loop
        self._asks = asks
        self._timeout = timeout

    async def fresh_runtime(self, endpoint: str, *, force: bool, ahead: float) -> Runtime:
        return await self._call(
            lambda: self._registry.fresh_runtime(endpoint, force=force, ahead=ahead),
            f"a new access token for runtime {endpoint}",
        )

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult:
        return await self._call(
            lambda: self._registry.propagate_credentials(endpoint, auth_type, dry_run),
            f"credentials for runtime {endpoint}",
        )

    async def notebook_secret(self, endpoint: str, name: str) -> dict[str, object]:
        asks = self._asks
        if asks is None:  # nobody to ask: as if no such secret
            return {"exists": False, "access": False, "payload": ""}
        return await self._call(
            lambda: asks.notebook_secret(endpoint, name),
            f"the secret {name} for runtime {endpoint}",
            within=asks.question_time + self._timeout,
        )

    async def may_open_consent(self, endpoint: str, auth_type: str) -> bool:
        asks = self._asks
        if asks is None:
            return True  # no face to ask: the browser is the question (as before)
        return await self._call(
            lambda: asks.may_open_consent(endpoint, auth_type),
            f"consent for runtime {endpoint}",
            within=asks.question_time + self._timeout,
        )

    async def _call(
        self, make: Callable[[], Awaitable[T]], what: str, *, within: float | None = None
    ) -> T:
        async def run() -> T:
            return await make()

        try:
            future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        except RuntimeError:  # the main loop is closed: the app is going away
            raise errors.BackendUnavailableError(what, "colabtray is shutting down") from None
        try:
            async with asyncio.timeout(within or self._timeout):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()
            raise errors.BackendUnavailableError(what, "timed out") from None


def refresh_ahead(runtime: Runtime) -> float:
    """Seconds before expiry at which this runtime's token is renewed."""
    ttl = runtime.proxy.ttl_seconds if runtime.proxy is not None else AHEAD_MAX
    return min(AHEAD_MAX, ttl * AHEAD_SHARE)


class Upstream:
    """One runtime's address and proxy token, as fresh as requests need them."""

    def __init__(self, endpoint: str, backend: RuntimeBackend) -> None:
        self.endpoint = endpoint
        self._backend = backend
        self._runtime: Runtime | None = None
        self._renew_at = 0.0  # time.monotonic() from which the cached token needs renewing
        self._lock = asyncio.Lock()
        self._verified_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def get(self, *, stale: Runtime | None = None) -> Runtime:
        """A runtime whose token is not about to expire.

        With ``stale`` (the runtime whose token the runtime just refused), forces one refresh
        unless another caller has refreshed since. Raises RuntimeGoneError and the backend's
        other ColabErrors.
        """
        if stale is None and (cached := self._cached()) is not None:
            return cached
        async with self._lock:
            current = self._runtime
            if stale is not None and current is not None and current is not stale:
                return current  # someone refreshed while we waited
            if stale is None and (cached := self._cached()) is not None:
                return cached
            force = stale is not None
            ahead = refresh_ahead(current) if current is not None else AHEAD_MAX
            runtime = await self._backend.fresh_runtime(self.endpoint, force=force, ahead=ahead)
            if runtime.proxy is None:
                raise errors.RuntimeAccessError(self.endpoint, 0)
            self._runtime = runtime
            self._renew_at = _renewal_deadline(runtime)
            return runtime

    def _cached(self) -> Runtime | None:
        """The cached runtime while its token is not yet due for renewal."""
        return self._runtime if time.monotonic() < self._renew_at else None

    async def still_there(self) -> bool:
        """After a broken connection: does the backend still list the runtime?

        Asks at most every VERIFY_EVERY seconds; raises nothing but RuntimeGoneError.
        """
        if time.monotonic() - self._verified_at < VERIFY_EVERY:
            return True
        self._verified_at = time.monotonic()
        try:
            await self.get(stale=self._runtime)
        except errors.RuntimeGoneError:
            return False
        except errors.ColabError as exc:
            log.info("could not check runtime %s: %s", self.endpoint, exc.message)
        return True

    def start_refreshing(self) -> None:
        """Renew the token in the background shortly before it expires."""
        if self._task is None:
            self._task = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.get()
            except errors.RuntimeGoneError:
                return  # requests will find out and say so
            except errors.ColabError as exc:
                log.info("token refresh for %s failed: %s", self.endpoint, exc.message)
                await asyncio.sleep(30)
                continue
            # Wake just inside the refresh window; never spin on a token that stays short.
            await asyncio.sleep(max(self._renew_at - time.monotonic() + 0.5, 1.0))


def _renewal_deadline(runtime: Runtime) -> float:
    """When (on the monotonic clock) the runtime's token enters its refresh window; worked out
    once per token, as every request asks."""
    assert runtime.proxy is not None
    left = runtime.proxy.expires_at.timestamp() - time.time()
    return time.monotonic() + left - refresh_ahead(runtime)
