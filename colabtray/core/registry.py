"""What is assigned: the account's runtimes, kept current by polling and after every change.

The registry polls the backend's listing, diffs it against what it knew and tells its
listeners what happened (a runtime added, removed by the user or reclaimed behind our back,
the backend lost and found again: once per episode, never once per poll). It also hands out
runtimes with a proxy token that is good for a while, refreshing it from the backend when it
is about to expire. Plain asyncio: the tray, ``--headless`` and the tests all drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from colabtray.auth.errors import InvalidGrantError, NotSignedInError
from colabtray.colab import errors
from colabtray.colab.client import ColabClient
from colabtray.colab.models import (
    ComputeUnits,
    Eligibility,
    PropagationResult,
    Runtime,
    RuntimeProxyInfo,
)
from colabtray.colab.wire import PROXY_TOKEN_LEAD
from colabtray.core.listeners import Listeners
from colabtray.core.naming import RuntimeNames
from colabtray.system import tasks

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RuntimeAdded:
    runtime: Runtime
    name: str
    by_user: bool  # created through colabtray in this process


@dataclass(frozen=True)
class RuntimeRemoved:
    endpoint: str
    name: str
    by_user: bool  # False: reclaimed by Colab or removed elsewhere
    signed_out: bool = False  # its account was signed out of colabtray (it may still run)


@dataclass(frozen=True)
class BackendLost:
    message: str
    untrusted: bool = False  # Colab's TLS certificate failed verification: waiting won't help


@dataclass(frozen=True)
class BackendBack:
    pass


@dataclass(frozen=True)
class SignInNeeded:
    message: str


@dataclass(frozen=True)
class StateChanged:
    """Anything the tray shows may have changed (names, compute units, tokens…)."""


Event = RuntimeAdded | RuntimeRemoved | BackendLost | BackendBack | SignInNeeded | StateChanged


@dataclass
class RegistryState:
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    compute_units: ComputeUnits | None = None
    eligibility: Eligibility | None = None
    plan: str | None = None  # as Colab last named it for this account (core/plans.py)
    loaded: bool = False  # a listing has succeeded at least once
    reachable: bool = True
    problem: str | None = None  # the sentence to show while something is wrong
    signed_out: bool = False


class PollPlan:
    """When to list the runtimes again: soon after something changed (then less and less
    soon), rarer while nothing changes, and never more often on average than once per
    ``interval``: every listing, whoever asked for it, spends one of a small budget that
    refills at that rate, and the background poll waits for the budget.
    """

    def __init__(
        self,
        interval: float,
        *,
        burst: float = 3.0,
        soon: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._burst = burst
        self._soon = min(soon, interval)
        self._clock = clock
        self._budget = burst
        self._at = clock()
        self._next_soon: float | None = None  # the wait after the next change-driven poll

    def _refill(self) -> None:
        now = self._clock()
        self._budget = min(self._burst, self._budget + (now - self._at) / self.interval)
        self._at = now

    def spent(self) -> None:
        """A listing went out."""
        self._refill()
        self._budget -= 1.0

    def changed(self) -> None:
        """Something changed (a runtime came or went): look again soon."""
        self._next_soon = self._soon

    def delay(self) -> float:
        """Seconds until the background poll should list again."""
        self._refill()
        if self._next_soon is not None:
            wanted = self._next_soon
            self._next_soon = wanted * 2 if wanted * 2 < 2 * self.interval else None
        else:
            wanted = 2 * self.interval  # nothing changes: rarer, saving budget for changes
        short = max(0.0, 1.0 - self._budget) * self.interval  # until one listing is affordable
        return max(wanted, short)


class RuntimeRegistry:
    def __init__(
        self,
        client: ColabClient,
        names: RuntimeNames,
        *,
        poll_interval: float = 60.0,
        remembered_plan: Callable[[], str | None] = lambda: None,
        remember_plan: Callable[[str], None] = lambda _tier: None,
        owner: str = "",
    ) -> None:
        """``owner``: the account whose runtimes these are, as the names file records it
        (names are shared by every account's registry, so that they stay unique)."""
        self._client = client
        self._owner = owner
        self._remembered_plan = remembered_plan  # what an earlier run learned, per account
        self._remember_plan = remember_plan
        self._names = names
        self.poll_interval = poll_interval
        self.plan = PollPlan(poll_interval)
        self.state = RegistryState()
        self._listeners = Listeners("the runtime registry")
        self._created_here: set[str] = set()
        self._removing: set[str] = set()
        self._refresh_lock = asyncio.Lock()
        self._token_locks: dict[str, asyncio.Lock] = {}
        self._renewal: asyncio.Task[dict[str, Runtime]] | None = None  # a listing for tokens
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._listed_at = -math.inf  # time.monotonic() of the last listing that succeeded

    @property
    def client(self) -> ColabClient:
        return self._client

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.add(listener)

    def name_of(self, endpoint: str) -> str:
        return self.state.names.get(endpoint, endpoint)

    def registry_of(self, endpoint: str) -> RuntimeRegistry | None:
        """Itself when it has the runtime (as :meth:`Fleet.registry_of
        <colabtray.core.fleet.Fleet.registry_of>` answers for every account)."""
        return self if endpoint in self.state.runtimes else None

    def release_names(self) -> None:
        """This account is no longer served: its runtimes' names may be given to others."""
        self._names.sync([], self._owner)

    def runtimes(self) -> list[tuple[str, Runtime]]:
        """(name, runtime) pairs in a stable order: by name."""
        return sorted(
            ((self.name_of(ep), rt) for ep, rt in self.state.runtimes.items()),
            key=lambda pair: pair[0].casefold(),
        )

    # ---- polling --------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled, as ``plan`` says; ``poke()`` polls at once (after a wake-up,
        the network back…)."""
        while True:
            await self.refresh()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.plan.delay()):
                    await self._wake.wait()

    def poke(self) -> None:
        self._wake.set()

    def age(self) -> float:
        """Seconds since the last listing that succeeded (inf: none yet)."""
        return time.monotonic() - self._listed_at

    async def refresh(self) -> None:
        """One listing (plus compute units); never raises for backend trouble."""
        async with self._refresh_lock:
            self.plan.spent()
            try:
                listed = await self._client.list_assignments()
            except (errors.SignedOutError, InvalidGrantError, NotSignedInError) as exc:
                self._signed_out(exc.message)
                return
            except errors.ColabError as exc:
                self._lost(exc.message, untrusted=isinstance(exc, errors.UntrustedCertificateError))
                return
            self._found()
            self._listed_at = time.monotonic()
            self._apply(listed)
            await self._refresh_account()

    async def _refresh_account(self) -> None:
        try:
            units = await self._client.compute_units()
            self.learn_plan(units.tier)
            self.state.compute_units = units.with_plan(self.known_plan)
            if self.state.eligibility is None:
                await self.read_eligibility()
        except errors.ColabError as exc:
            log.info("could not read the account's compute units: %s", exc.message)
        self._emit(StateChanged())

    # ---- the plan -------------------------------------------------------------------------

    @property
    def known_plan(self) -> str | None:
        """The account's plan as Colab last named it (this run, else an earlier one), or None
        when nothing ever told it."""
        return self.state.plan or self._remembered_plan()

    def learn_plan(self, tier: str | None) -> None:
        """The one place a plan is learned: every reply that names it (an assign's
        ``subTier``, GAPI user-info, later the public API's subscription) comes here; None
        (a reply that names none) changes nothing. Eligibility and compute units follow."""
        if tier is None:
            return
        changed = tier != self.state.plan
        self.state.plan = tier
        if self.state.eligibility is not None:
            self.state.eligibility = self.state.eligibility.with_plan(tier)
        if self.state.compute_units is not None:
            self.state.compute_units = self.state.compute_units.with_plan(tier)
        self._remember_plan(tier)
        if changed:
            self._emit(StateChanged())

    async def read_eligibility(self) -> Eligibility:
        """What the account may assign, read now, with the plan as far as it is known."""
        eligibility = await self._client.eligibility()
        self.learn_plan(eligibility.tier)
        self.state.eligibility = eligibility.with_plan(self.known_plan)
        return self.state.eligibility

    def _apply(self, listed: list[Runtime]) -> None:
        before = self.state.runtimes
        after = {runtime.endpoint: runtime for runtime in listed}
        names = self._names.sync(listed, self._owner)
        removed = [ep for ep in before if ep not in after]
        added = [ep for ep in after if ep not in before]
        if (removed or added) and self.state.loaded:
            self.plan.changed()
        old_names = self.state.names
        self.state.runtimes = after
        self.state.names = names
        first_load = not self.state.loaded
        self.state.loaded = True
        for endpoint in removed:
            by_user = endpoint in self._removing
            self._removing.discard(endpoint)
            self._token_locks.pop(endpoint, None)
            self._emit(RuntimeRemoved(endpoint, old_names.get(endpoint, endpoint), by_user))
        for endpoint in added:
            if first_load:
                continue  # what was already there at start is not news
            by_user = endpoint in self._created_here
            self._emit(RuntimeAdded(after[endpoint], names[endpoint], by_user))

    # ---- changes the user makes -----------------------------------------------------------

    async def create(
        self,
        variant: str,
        accelerator: str | None = None,
        *,
        high_mem: bool = False,
        runtime_version: str | None = None,
    ) -> tuple[str, Runtime]:
        """Assign a runtime and list again; typed errors reach the caller as they are."""
        runtime = await self._client.assign(
            variant, accelerator, high_mem=high_mem, runtime_version=runtime_version
        )
        self.learn_plan(runtime.subscription_tier)
        self._created_here.add(runtime.endpoint)
        await self.refresh()
        if runtime.endpoint not in self.state.runtimes:  # listing lagging or failing
            self.state.runtimes[runtime.endpoint] = runtime
            self.state.names[runtime.endpoint] = self._names.name_of(runtime, self._owner)
            self._emit(RuntimeAdded(runtime, self.state.names[runtime.endpoint], True))
        return self.name_of(runtime.endpoint), self.state.runtimes[runtime.endpoint]

    async def remove(self, endpoint: str) -> None:
        """Close its sessions (best effort), unassign, and list again."""
        runtime = self.state.runtimes.get(endpoint)
        self._removing.add(endpoint)
        if runtime is not None:
            await self._close_sessions(runtime)
        try:
            await self._client.unassign(endpoint)
        except errors.RuntimeGoneError:
            pass  # already gone: that is what the user wanted
        except errors.ColabError:
            self._removing.discard(endpoint)
            raise
        await self.refresh()
        if endpoint in self.state.runtimes:  # the listing still has it; trust the unassign
            self._apply([rt for ep, rt in self.state.runtimes.items() if ep != endpoint])
            self._emit(StateChanged())

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult:
        """A runtime's request for this account's Google credentials (drive.mount, auth)."""
        return await self._client.propagate_credentials(endpoint, auth_type, dry_run)

    async def _close_sessions(self, runtime: Runtime) -> None:
        try:
            fresh = await self.fresh_runtime(runtime.endpoint)
            for session in await self._client.sessions(fresh):
                await self._client.delete_session(fresh, session.id)
        except errors.ColabError as exc:
            log.info("could not close sessions on %s first: %s", runtime.endpoint, exc.message)

    # ---- runtime proxy tokens -------------------------------------------------------------

    async def fresh_runtime(
        self, endpoint: str, *, force: bool = False, ahead: float = PROXY_TOKEN_LEAD
    ) -> Runtime:
        """The runtime with a proxy token valid for at least ``ahead`` seconds.

        Raises RuntimeGoneError if the backend no longer has it (and forgets it).
        """
        lock = self._token_locks.setdefault(endpoint, asyncio.Lock())
        async with lock:
            runtime = self.state.runtimes.get(endpoint)
            if runtime is None:
                raise errors.RuntimeGoneError(endpoint)
            if not force and runtime.proxy is not None and not runtime.proxy.expires_within(ahead):
                return runtime
            try:
                proxy = await self._renewed_token(endpoint, force=force)
            except errors.RuntimeGoneError:
                self.forget(endpoint)
                raise
            refreshed = runtime.with_proxy(proxy)
            if endpoint in self.state.runtimes:
                self.state.runtimes[endpoint] = refreshed
            return refreshed

    async def _renewed_token(self, endpoint: str, *, force: bool) -> RuntimeProxyInfo:
        """A new proxy token for the runtime. A /tun/m listing mints one for every runtime, so
        renewals due at the same time share one listing (a forced one, after the runtime
        refused its token, sends its own) and it renews every runtime known; elsewhere (the
        public API's GetRuntime, GAPI's token call) each runtime is asked for alone."""
        if not await self._client.tokens_come_with_listing():
            return await self._client.refresh_proxy_token(endpoint)
        renewal = self._renewal
        joined = not force and renewal is not None and not renewal.done()
        if renewal is None or not joined:
            renewal = self._renewal = tasks.held(
                self._tasks, asyncio.create_task(self._renew_all(), name="token renewal")
            )
        listed = (await asyncio.shield(renewal)).get(endpoint)
        if listed is None and joined:  # that listing may predate the runtime: one of its own
            return await self._renewed_token(endpoint, force=True)
        if listed is None or listed.proxy is None:
            raise errors.RuntimeGoneError(endpoint)
        return listed.proxy

    async def _renew_all(self) -> dict[str, Runtime]:
        """One listing; every known runtime takes its new token (before any caller resumes, so
        none lists again for a token already renewed)."""
        listed = {runtime.endpoint: runtime for runtime in await self._client.list_assignments()}
        for endpoint, runtime in list(self.state.runtimes.items()):
            fresh = listed.get(endpoint)
            if fresh is not None and fresh.proxy is not None:
                self.state.runtimes[endpoint] = runtime.with_proxy(fresh.proxy)
        return listed

    def forget(self, endpoint: str) -> None:
        """The runtime is known to be gone (a 404 from keep-alive, say)."""
        if endpoint in self.state.runtimes:
            self._apply([rt for ep, rt in self.state.runtimes.items() if ep != endpoint])
            self._emit(StateChanged())

    # ---- episodes -------------------------------------------------------------------------

    def _lost(self, message: str, *, untrusted: bool = False) -> None:
        self.state.problem = message
        if self.state.reachable:
            self.state.reachable = False
            self._emit(BackendLost(message, untrusted))
        self._emit(StateChanged())

    def _found(self) -> None:
        was_down = not self.state.reachable
        self.state.reachable = True
        self.state.problem = None
        if self.state.signed_out:
            self.state.signed_out = False
        if was_down:
            self._emit(BackendBack())

    def _signed_out(self, message: str) -> None:
        self.state.problem = message
        if not self.state.signed_out:
            self.state.signed_out = True
            self._emit(SignInNeeded(message))
        self._emit(StateChanged())

    def _emit(self, event: Event) -> None:
        self._listeners.tell(event)
