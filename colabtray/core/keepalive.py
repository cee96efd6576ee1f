"""Keep runtimes alive while there is evidence they are used, and ask before letting one go.

Colab reclaims runtimes that look unused; a ping says "in use", so colabtray pings only on
evidence, never on a guess. Each tick, for each runtime, the evidence is:

- a kernel starting, busy or restarting, or a kernel active within the idle threshold;
- activity an activity source reports within the idle threshold: the editor bridge's traffic,
  colabtray's own tools, and whatever else the core adds (:meth:`KeepAlive.add_activity_source`,
  for example an open terminal or SSH session, which reports "now" while it is open);
- the user's "Keep running" answer, for the extension period.

A runtime colabtray has just met (made now, or found already assigned) with none of that gets
a short grace (``idle_grace``, never longer than the idle threshold) before it counts as idle,
so a runtime made in a browser tab since closed is not kept for an hour on nobody's behalf.
An idle runtime's user is asked once: Keep running (extend and ping), Disconnect now
(unassign), or no answer within the prompt window, which lets Colab reclaim it (no more pings
until evidence is seen again). Runtimes whose kernels cannot be read are neither pinged on a
guess nor prompted about; they are retried next tick. A ping that does not get through (5xx,
a timeout, a broken connection) is tried again within the tick, with the client's backoff; one
Colab refuses (401, 403, 404) is not, and two refusals in a row are told once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from colabtray import hints
from colabtray.colab import errors
from colabtray.colab.models import Kernel
from colabtray.core.fleet import Runtimes
from colabtray.core.listeners import Listeners
from colabtray.core.naming import kind_label
from colabtray.core.questions import Question, Questions
from colabtray.core.registry import BackendBack, RuntimeRegistry, RuntimeRemoved
from colabtray.settings import Settings

log = logging.getLogger(__name__)

ACTIVE_STATES = frozenset({"starting", "busy", "restarting", "autorestarting"})

# Colab said no to a ping (not "could not be reached"): the sign-in (401), its scope (403),
# the runtime (404). This many in a row to one runtime is told, once, until a ping succeeds.
REFUSALS = (errors.SignedOutError, errors.RequestRejectedError, errors.RuntimeGoneError)
REFUSALS_TO_TELL = 2

# When something last used a runtime (None: not in this run), by endpoint.
ActivitySource = Callable[[str], datetime | None]


class Why(StrEnum):
    """Why keep-alive pings a runtime now, or why it does not: decided in :meth:`KeepAlive._why`,
    the one place, and only read elsewhere."""

    KERNEL = "kernel"  # a kernel working, or active within the idle threshold
    EDITOR = "editor"  # editor traffic through the bridge
    TOOL = "tool"  # colabtray's shell, ssh or cp
    USE = "use"  # another activity source
    GRACE = "grace"  # met moments ago (made now, or found at start)
    KEEP = "keep"  # the person's Keep, for the extension
    IDLE = "idle"  # none of these: asked (or asked at the next look)
    LET_GO = "let-go"  # the question went unanswered: Colab may reclaim it
    UNKNOWN = "unknown"  # the kernels could not be read: no ping on a guess


USED = frozenset({Why.KERNEL, Why.EDITOR, Why.TOOL, Why.USE, Why.GRACE})


@dataclass(frozen=True)
class Keeping:
    """What keep-alive decided for a runtime at its last look."""

    why: Why
    # When this reason runs out, after which the idle question comes if nothing else keeps it
    # (None: not while it lasts, e.g. a busy kernel, or no question is coming).
    until: datetime | None = None

    @property
    def pinged(self) -> bool:
        return self.why in USED or self.why is Why.KEEP


@dataclass(frozen=True)
class PingsRefused:
    """Colab refused ``REFUSALS_TO_TELL`` pings in a row to a runtime (``error``: the last)."""

    endpoint: str
    name: str
    error: errors.ColabError


class Choice(StrEnum):
    KEEP = "keep"
    DISCONNECT = "disconnect"


IDLE_KEY = "idle:"  # + endpoint: the key of a runtime's idle question
KEEP_LABEL = "Cancel"  # cancels the disconnect: the runtime keeps running
DISCONNECT_LABEL = "Disconnect now"


def idle_question(endpoint: str, name: str, kind: str, seconds: float) -> Question:
    """The question keep-alive asks about an idle runtime: yes keeps it (Cancel), no gives it
    back now; no answer within ``seconds`` lets Colab reclaim it."""
    minutes = "a minute" if seconds <= 60 else f"{seconds / 60:.0f} minutes"
    return Question(
        key=f"{IDLE_KEY}{endpoint}",
        title=f"'{name}' is idle and will be disconnected",
        body=(
            f"Nothing has run on this {kind} runtime for a while. Cancel to keep it "
            f"running, or disconnect it now to save compute units. Without an answer within "
            f"{minutes}, colabtray stops keeping it alive and Colab will reclaim it."
        ),
        yes=KEEP_LABEL,
        no=DISCONNECT_LABEL,
        commands=(
            f"run {hints.command('keep', name)} within {seconds:.0f} s to keep it running, or "
            f"{hints.command('remove', name)} to give it back now; otherwise Colab will "
            "reclaim it"
        ),
        seconds=seconds,
        countdown="Disconnecting in {} unless you cancel.",
    )


class Verdict(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    UNKNOWN = "unknown"  # could not read the kernels


def kernel_use(kernels: list[Kernel]) -> tuple[bool, datetime | None]:
    """Whether a kernel is working now, and the latest activity any kernel reports."""
    busy = any(kernel.execution_state in ACTIVE_STATES for kernel in kernels)
    seen = [k.last_activity for k in kernels if k.last_activity is not None]
    last = max((t if t.tzinfo else t.replace(tzinfo=UTC) for t in seen), default=None)
    return busy, last


@dataclass
class _Track:
    first_seen: datetime
    extended_until: datetime | None = None
    let_go: bool = False  # the prompt went unanswered: no pings until activity returns
    verdict: Verdict = Verdict.UNKNOWN
    keeping: Keeping | None = None  # why it is (not) pinged, at the last look
    refusals: int = 0  # pings Colab refused in a row
    told: bool = False  # the person was told of these refusals


class KeepAlive:
    def __init__(
        self,
        settings: Settings,
        registry: Runtimes,
        questions: Questions,
        *,
        activity: Iterable[ActivitySource | tuple[Why, ActivitySource]] = (),
    ) -> None:
        """``activity``: sources of use, each alone or with the kind it is (Why.EDITOR…)."""
        self._settings = settings
        self._registry = registry
        self._questions = questions  # the idle question is asked as every other one
        self._sources: list[tuple[Why, ActivitySource]] = [
            source if isinstance(source, tuple) else (Why.USE, source) for source in activity
        ]
        self._tracks: dict[str, _Track] = {}
        self._asking: set[str] = set()  # endpoints whose idle question is open
        self._prompt_tasks: dict[str, asyncio.Task[None]] = {}
        self._listeners = Listeners("keep-alive")
        self._refusals = Listeners("keep-alive refusals")
        self._wake = asyncio.Event()
        registry.subscribe(self._on_registry_event)

    def add_activity_source(self, source: ActivitySource, why: Why = Why.USE) -> None:
        """Count what ``source(endpoint)`` reports as use of that runtime, from the next tick.

        How a new kind of use (a terminal, an SSH session) reaches keep-alive without keep-alive
        knowing about it: report when it last passed, or now while a session is open.
        """
        self._sources.append((why, source))

    def last_use(self, endpoint: str) -> tuple[Why, datetime] | None:
        """The latest use any source reports, and its kind; a failing source is logged and
        counts as none, so one broken source cannot stop keep-alive for every runtime."""
        seen: list[tuple[datetime, Why]] = []
        for why, source in self._sources:
            try:
                when = source(endpoint)
            except Exception:
                log.warning("an activity source failed for %s", endpoint, exc_info=True)
                continue
            if when is not None:
                seen.append((when if when.tzinfo else when.replace(tzinfo=UTC), why))
        if not seen:
            return None
        when, why = max(seen, key=lambda use: use[0])
        return why, when

    # ---- what the tray reads and does -----------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.add(listener)

    def subscribe_refusals(self, listener: Callable[[PingsRefused], None]) -> None:
        """``listener(refused)`` when pings to a runtime keep being refused (once per run of
        refusals), so the person can act before Colab reclaims it."""
        self._refusals.add(listener)

    def pending(self) -> set[str]:
        """Endpoints with an idle question waiting for an answer."""
        return set(self._asking)

    def verdict(self, endpoint: str) -> Verdict:
        track = self._tracks.get(endpoint)
        return track.verdict if track else Verdict.UNKNOWN

    def keeping(self, endpoint: str) -> Keeping | None:
        """Why the runtime is pinged now, or why not (None: not looked at yet)."""
        track = self._tracks.get(endpoint)
        return track.keeping if track else None

    def answer(self, endpoint: str, choice: Choice) -> bool:
        """The person answered (the tray menu, ``colabtray keep``); False if no question about
        the runtime is open. The notification and the window answer through the question."""
        return self._questions.answer(f"{IDLE_KEY}{endpoint}", choice is Choice.KEEP)

    def poke(self) -> None:
        """Tick now (woken from sleep, network back)."""
        self._wake.set()

    async def first_ping(self, endpoint: str) -> None:
        """Ping a runtime made a moment ago, as Google's CLI does before it keeps one: if
        Colab refuses it for a missing scope, no ping ever will, so the runtime is given back
        at once and KeepAliveScopeError says why. Any other failure is left to the loop."""
        try:
            await self._owner(endpoint).client.keep_alive(endpoint)
        except errors.ScopeNotPermittedError:
            name = self._registry.name_of(endpoint)
            try:
                await self._registry.remove(endpoint)
            except errors.ColabError as exc:
                log.warning("could not give back %s: %s", endpoint, exc.message)
                raise errors.KeepAliveScopeError(name, given_back=False) from None
            raise errors.KeepAliveScopeError(name, given_back=True) from None
        except errors.ColabError as exc:
            log.info("first keep-alive for %s failed: %s", endpoint, exc.message)
        else:
            self._tracks.setdefault(endpoint, _Track(first_seen=_now()))

    # ---- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.keepalive_interval):
                        await self._wake.wait()
        finally:
            for task in self._prompt_tasks.values():
                task.cancel()

    async def tick(self) -> None:
        """Decide for every runtime, in parallel; never raises for one runtime's trouble.

        It lists the runtimes first: reclaimed ones drop out, and while the backend cannot be
        reached nobody is asked anything (a ping could not be sent anyway).
        """
        await self._registry.refresh()
        endpoints = list(self._registry.state.runtimes)
        for endpoint in endpoints:
            self._tracks.setdefault(endpoint, _Track(first_seen=_now()))
        await asyncio.gather(*(self._decide(ep) for ep in endpoints))
        self._changed()

    async def _decide(self, endpoint: str) -> None:
        track = self._tracks[endpoint]
        now = _now()
        try:
            runtime = await self._registry.fresh_runtime(endpoint)
            owner = self._owner(endpoint)
            kernels: list[Kernel] | None = await owner.client.kernels(runtime)
        except errors.RuntimeGoneError:
            return
        except errors.ColabError as exc:
            log.info("activity of %s unknown this tick: %s", endpoint, exc.message)
            kernels = None
        keeping = track.keeping = self._why(endpoint, track, kernels, now)
        used = keeping.why in USED
        if kernels is None:
            track.verdict = Verdict.UNKNOWN
            if keeping.pinged:
                await self._ping(endpoint)
            return
        track.verdict = Verdict.ACTIVE if used else Verdict.IDLE
        if used:
            track.let_go = False
            self._withdraw(endpoint)
            await self._ping(endpoint)
        elif keeping.pinged:
            await self._ping(endpoint)
        elif (
            not track.let_go
            and endpoint not in self._prompt_tasks
            and owner.state.reachable
            and not owner.state.signed_out
        ):
            self._prompt_tasks[endpoint] = asyncio.create_task(self._ask(endpoint))

    def _why(
        self, endpoint: str, track: _Track, kernels: list[Kernel] | None, now: datetime
    ) -> Keeping:
        """The evidence of use, in order (see the module docstring), else the person's Keep;
        with when it runs out. A runtime met moments ago is not idle yet: it may be about to
        get its first kernel; its grace never outlasts the idle threshold, which bounds every
        other kind of use."""
        keep = track.extended_until if track.extended_until and track.extended_until > now else None
        if kernels is None:  # unknown: pinged only on the person's word
            return Keeping(Why.KEEP, keep) if keep else Keeping(Why.UNKNOWN)
        threshold = timedelta(seconds=self._settings.idle_threshold)
        busy, last = kernel_use(kernels)
        if busy:
            return Keeping(Why.KERNEL)
        if _after(last, now - threshold):
            assert last is not None
            return Keeping(Why.KERNEL, last + threshold)
        use = self.last_use(endpoint)
        if use is not None and _after(use[1], now - threshold):
            return Keeping(use[0], use[1] + threshold)
        grace = timedelta(seconds=min(self._settings.idle_grace, self._settings.idle_threshold))
        if track.first_seen + grace > now:
            return Keeping(Why.GRACE, track.first_seen + grace)
        if keep:
            return Keeping(Why.KEEP, keep)
        return Keeping(Why.LET_GO if track.let_go else Why.IDLE)

    async def _ping(self, endpoint: str) -> None:
        owner = self._registry.registry_of(endpoint)
        if owner is None:
            return  # gone meanwhile (or its account signed out)
        try:
            await owner.client.keep_alive(endpoint)
        except REFUSALS as exc:
            self._refused(endpoint, exc)
            return
        except errors.ColabError as exc:  # unreachable: the registry tells that, once
            log.info("keep-alive for %s failed: %s", endpoint, exc.message)
            return
        track = self._tracks.get(endpoint)
        if track is not None:
            track.refusals, track.told = 0, False

    def _refused(self, endpoint: str, error: errors.ColabError) -> None:
        """Count a refused ping; the second in a row is told. A 404 is not taken as "gone"
        on its own: the listing decides that (and tells it as a disconnection)."""
        log.info("keep-alive for %s refused: %s", endpoint, error.message)
        track = self._tracks.get(endpoint)
        if track is None:
            return
        track.refusals += 1
        if track.refusals >= REFUSALS_TO_TELL and not track.told:
            track.told = True
            self._refusals.tell(PingsRefused(endpoint, self._registry.name_of(endpoint), error))

    async def _ask(self, endpoint: str) -> None:
        runtime = self._registry.state.runtimes.get(endpoint)
        if runtime is None:
            return
        question = idle_question(
            endpoint,
            self._registry.name_of(endpoint),
            kind_label(runtime.variant, runtime.accelerator),
            self._settings.idle_prompt_timeout,
        )
        self._asking.add(endpoint)
        self._changed()
        try:
            answer = await asyncio.shield(self._questions.open(question, question.seconds))
        except asyncio.CancelledError:  # withdrawn: the runtime became active or went away
            self._questions.close(question.key)
            raise
        finally:
            self._asking.discard(endpoint)
            self._prompt_tasks.pop(endpoint, None)
            self._changed()
        choice = None if answer is None else Choice.KEEP if answer else Choice.DISCONNECT
        await self._apply(endpoint, choice)

    async def _apply(self, endpoint: str, choice: Choice | None) -> None:
        track = self._tracks.get(endpoint)
        if track is None:
            return
        if choice is Choice.KEEP:
            track.extended_until = _now() + timedelta(seconds=self._settings.idle_extension)
            track.let_go = False
            track.keeping = Keeping(Why.KEEP, track.extended_until)
            self._changed()
            await self._ping(endpoint)
        elif choice is Choice.DISCONNECT:
            try:
                await self._registry.remove(endpoint)
            except errors.ColabError as exc:
                log.warning("could not disconnect %s: %s", endpoint, exc.message)
        else:
            log.info("no answer about idle runtime %s; letting Colab reclaim it", endpoint)
            track.let_go = True
            track.keeping = Keeping(Why.LET_GO)
            self._changed()

    def _owner(self, endpoint: str) -> RuntimeRegistry:
        """The registry of the runtime's account, whose client pings it with its tokens."""
        owner = self._registry.registry_of(endpoint)
        if owner is None:
            raise errors.RuntimeGoneError(endpoint)
        return owner

    def _withdraw(self, endpoint: str) -> None:
        task = self._prompt_tasks.get(endpoint)
        if task is not None:
            task.cancel()

    def _on_registry_event(self, event: object) -> None:
        if isinstance(event, RuntimeRemoved):
            self._withdraw(event.endpoint)
            self._tracks.pop(event.endpoint, None)
        elif isinstance(event, BackendBack):
            self.poke()  # the network is back: ping what needs it now, not in 5 minutes

    def _changed(self) -> None:
        self._listeners.tell()


def _after(when: datetime | None, since: datetime) -> bool:
    return when is not None and when >= since


def _now() -> datetime:
    return datetime.now(UTC)
