"""Keep runtimes alive while they are in use, and ask before letting an idle one go.

Each tick, for each runtime: if it is active (a kernel starting, busy or restarting; a
kernel, the editor bridge or the runtime's own creation within the idle threshold) colabtray
pings it. If the user chose "Keep running" less than the extension period ago, it pings too.
Otherwise the runtime is idle and the user is asked once: Keep running (extend and ping),
Disconnect now (unassign), or no answer within the prompt window, which lets Colab reclaim it
(no more pings until activity is seen again). Runtimes whose activity cannot be read are
neither pinged on a guess nor prompted about; they are retried next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from colabtray.colab import errors
from colabtray.colab.models import Kernel
from colabtray.core.listeners import Listeners
from colabtray.core.naming import kind_label
from colabtray.core.registry import BackendBack, RuntimeRegistry, RuntimeRemoved
from colabtray.settings import Settings

log = logging.getLogger(__name__)

ACTIVE_STATES = frozenset({"starting", "busy", "restarting", "autorestarting"})


class Choice(StrEnum):
    KEEP = "keep"
    DISCONNECT = "disconnect"


@dataclass(frozen=True)
class IdleQuestion:
    endpoint: str
    name: str
    kind: str  # "T4 GPU"
    seconds: float  # how long the question stands

    @property
    def title(self) -> str:
        return f"'{self.name}' is idle and will be disconnected"

    @property
    def body(self) -> str:
        minutes = "a minute" if self.seconds <= 60 else f"{self.seconds / 60:.0f} minutes"
        return (
            f"Nothing has run on this {self.kind} runtime for a while. Cancel to keep it "
            f"running, or disconnect it now to save compute units. Without an answer within "
            f"{minutes}, "
            "colabtray stops keeping it alive and Colab will reclaim it."
        )


class PromptPresenter(Protocol):
    """Shows an idle question somewhere the user sees it (a notification, a window…)."""

    def show(self, question: IdleQuestion, answer: Callable[[Choice], None]) -> None: ...

    def withdraw(self, endpoint: str) -> None: ...


class Verdict(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    UNKNOWN = "unknown"  # could not read the kernels


def kernel_verdict(kernels: list[Kernel], since: datetime, now: datetime | None = None) -> Verdict:
    """Active if any kernel is working or was active after ``since``."""
    for kernel in kernels:
        if kernel.execution_state in ACTIVE_STATES:
            return Verdict.ACTIVE
        last = kernel.last_activity
        if last is not None:
            if last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            if last >= since:
                return Verdict.ACTIVE
    return Verdict.IDLE


@dataclass
class _Track:
    first_seen: datetime
    extended_until: datetime | None = None
    let_go: bool = False  # the prompt went unanswered: no pings until activity returns
    verdict: Verdict = Verdict.UNKNOWN
    last_ping: datetime | None = None


class KeepAlive:
    def __init__(
        self,
        settings: Settings,
        registry: RuntimeRegistry,
        presenter: PromptPresenter,
        *,
        bridge_activity: Callable[[str], datetime | None] | None = None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._presenter = presenter
        self._bridge_activity = bridge_activity or (lambda _endpoint: None)
        self._tracks: dict[str, _Track] = {}
        self._pending: dict[str, asyncio.Future[Choice]] = {}
        self._prompt_tasks: dict[str, asyncio.Task[None]] = {}
        self._listeners = Listeners("keep-alive")
        self._wake = asyncio.Event()
        registry.subscribe(self._on_registry_event)

    # ---- what the tray reads and does -----------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.add(listener)

    def pending(self) -> set[str]:
        """Endpoints with an idle question waiting for an answer."""
        return {ep for ep, fut in self._pending.items() if not fut.done()}

    def verdict(self, endpoint: str) -> Verdict:
        track = self._tracks.get(endpoint)
        return track.verdict if track else Verdict.UNKNOWN

    def answer(self, endpoint: str, choice: Choice) -> None:
        """The user answered (from the notification, the window or the tray menu)."""
        future = self._pending.get(endpoint)
        if future is not None and not future.done():
            future.set_result(choice)

    def poke(self) -> None:
        """Tick now (woken from sleep, network back)."""
        self._wake.set()

    # ---- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.keepalive_interval)
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
        since = now - timedelta(seconds=self._settings.idle_threshold)
        try:
            runtime = await self._registry.fresh_runtime(endpoint)
            kernels = await self._registry.client.kernels(runtime)
        except errors.RuntimeGoneError:
            return
        except errors.ColabError as exc:
            log.info("activity of %s unknown this tick: %s", endpoint, exc.message)
            track.verdict = Verdict.UNKNOWN
            if track.extended_until and track.extended_until > now:
                await self._ping(endpoint)
            return
        verdict = kernel_verdict(kernels, since, now)
        bridge_seen = self._bridge_activity(endpoint)
        if verdict is Verdict.IDLE and (
            track.first_seen >= since or (bridge_seen is not None and bridge_seen >= since)
        ):
            verdict = Verdict.ACTIVE
        track.verdict = verdict
        if verdict is Verdict.ACTIVE:
            track.let_go = False
            self._withdraw(endpoint)
            await self._ping(endpoint)
        elif track.extended_until and track.extended_until > now:
            await self._ping(endpoint)
        elif (
            not track.let_go
            and endpoint not in self._prompt_tasks
            and self._registry.state.reachable
            and not self._registry.state.signed_out
        ):
            self._prompt_tasks[endpoint] = asyncio.create_task(self._ask(endpoint))

    async def _ping(self, endpoint: str) -> None:
        try:
            await self._registry.client.keep_alive(endpoint)
        except errors.RuntimeGoneError:
            self._registry.forget(endpoint)
            return
        except errors.ColabError as exc:
            log.info("keep-alive for %s failed: %s", endpoint, exc.message)
            return
        track = self._tracks.get(endpoint)
        if track is not None:
            track.last_ping = _now()

    async def _ask(self, endpoint: str) -> None:
        runtime = self._registry.state.runtimes.get(endpoint)
        if runtime is None:
            return
        question = IdleQuestion(
            endpoint=endpoint,
            name=self._registry.name_of(endpoint),
            kind=kind_label(runtime.variant, runtime.accelerator),
            seconds=self._settings.idle_prompt_timeout,
        )
        future: asyncio.Future[Choice] = asyncio.get_running_loop().create_future()
        self._pending[endpoint] = future
        self._presenter.show(question, lambda choice: self.answer(endpoint, choice))
        self._changed()
        try:
            choice = await asyncio.wait_for(future, question.seconds)
        except TimeoutError:
            choice = None
        except asyncio.CancelledError:  # withdrawn: the runtime became active or went away
            self._presenter.withdraw(endpoint)
            raise
        finally:
            self._pending.pop(endpoint, None)
            self._prompt_tasks.pop(endpoint, None)
            self._changed()
        self._presenter.withdraw(endpoint)
        await self._apply(endpoint, choice)

    async def _apply(self, endpoint: str, choice: Choice | None) -> None:
        track = self._tracks.get(endpoint)
        if track is None:
            return
        if choice is Choice.KEEP:
            track.extended_until = _now() + timedelta(seconds=self._settings.idle_extension)
            track.let_go = False
            await self._ping(endpoint)
        elif choice is Choice.DISCONNECT:
            try:
                await self._registry.remove(endpoint)
            except errors.ColabError as exc:
                log.warning("could not disconnect %s: %s", endpoint, exc.message)
        else:
            log.info("no answer about idle runtime %s; letting Colab reclaim it", endpoint)
            track.let_go = True

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


def _now() -> datetime:
    return datetime.now(UTC)
