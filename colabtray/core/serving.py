"""Which accounts are served, and which one is active.

Served: the ready token's account (``COLABTRAY_ACCESS_TOKEN``, a pasted token, the demo), if
there is one, and each account of the session; a session account whose email is the ready
token's is served through the ready token rather than twice. Each served account has its own
Colab client and registry in the :class:`~colabtray.core.fleet.Fleet`, polled while the app
runs. An account that leaves (signed out) takes its runtimes with it; one that needs a sign-in
again stays, and is listed at once when it has signed in again.

Active: the account ``new`` and the New runtime dialog use. A sign-in makes its account
active, a switch another one; when the active account leaves, the session's active one (or the
ready token's) takes over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from colabtray.auth.identities import ReadyToken
from colabtray.auth.userinfo import fetch_email
from colabtray.colab import errors
from colabtray.colab.client import ColabClient, TokenSource
from colabtray.core.fleet import Fleet, Member
from colabtray.core.naming import RuntimeNames
from colabtray.core.registry import RuntimeRegistry
from colabtray.core.session import AccountState, Session
from colabtray.settings import Settings
from colabtray.system import tasks

log = logging.getLogger(__name__)

READY = "ready-token"  # the fleet's key for the ready token's account (others: their email)

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class ServedAccounts:
    def __init__(
        self,
        settings: Settings,
        session: Session,
        fleet: Fleet,
        *,
        ready: ReadyToken | None,
        spawn: Spawn,
        changed: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._session = session
        self._fleet = fleet
        self._spawn = spawn  # the core's: its tasks end with it
        self._changed = changed
        self.ready = ready
        self.names = RuntimeNames(settings.state_dir / "runtime-names.json")  # one for all
        self._served: dict[str, TokenSource] = {}  # fleet key → the tokens its client uses
        self._closing: set[asyncio.Task[Any]] = set()  # clients of accounts that left
        self._session_active = session.active_email  # as last seen: a change is news
        self.running = False  # polling (between the core's start and stop)
        self.follow()

    # ---- keys and emails ------------------------------------------------------------------

    def email_of(self, key: str) -> str | None:
        """The email of a fleet key (None: a ready token not yet asked whose it is)."""
        if key == READY:
            return self.ready.email if self.ready is not None else None
        return key

    def key_of(self, email: str) -> str:
        return READY if self.ready is not None and self.ready.email == email else email

    @property
    def active_email(self) -> str | None:
        active = self._fleet.active
        return self.email_of(active) if active is not None else None

    @property
    def ready_is_active(self) -> bool:
        return self.ready is not None and self._fleet.active == READY

    def activate(self, email: str) -> None:
        """``email``'s account becomes the active one."""
        self._fleet.active = self.key_of(email)
        self._changed()

    # ---- following the session and the ready token ----------------------------------------

    def use_ready(self, ready: ReadyToken | None) -> None:
        """A new ready token (or none): the one before, if any, is no longer served."""
        self.ready = ready
        self.follow()
        self._changed()

    def session_changed(self) -> None:
        """Serve the session's accounts as they are now; a sign-in, switch or sign-out that
        chose another active account makes it the active one here too."""
        self.follow()
        active = self._session.active_email
        if active != self._session_active:
            self._session_active = active
            if active is not None:
                self._fleet.active = self.key_of(active)

    def email_learned(self) -> None:
        """The ready token's email is known: its plan is recalled, and a session account of
        the same email is served through it rather than twice."""
        member = self._fleet.member(READY)
        if member is not None:
            member.registry.learn_plan(member.registry.known_plan)
        self.follow()
        self._changed()

    def follow(self) -> None:
        """Serve exactly the signed-in accounts (see the module docstring)."""
        wanted: dict[str, TokenSource] = {}
        if self.ready is not None:
            wanted[READY] = self.ready
        needs_sign_in = set()
        for account in self._session.accounts():
            if account.state is AccountState.NEEDS_SIGN_IN:
                needs_sign_in.add(account.email)
            if self.key_of(account.email) != READY:
                wanted[account.email] = self._session.tokens_for(account.email)
        for key in list(self._served):
            if key not in wanted or (key == READY and wanted[key] is not self._served[key]):
                self._stop_serving(key)
        for key, tokens in wanted.items():
            member = self._fleet.member(key)
            if member is None:
                self._serve(key, tokens)
            elif member.registry.state.signed_out and key not in needs_sign_in:
                member.registry.poke()  # signed in again: list now
        if self._fleet.active not in self._served:
            active = self._session.active_email
            fallback = READY if self.ready is not None else active
            self._fleet.active = self.key_of(active) if active in wanted else fallback

    # ---- the loops ------------------------------------------------------------------------

    def start(self) -> None:
        """Poll every served account (and each one served from now on)."""
        self.running = True
        for member in self._fleet.members():
            self._start_serving(member)

    def _serve(self, key: str, tokens: TokenSource) -> None:
        plans = self._session.plans
        registry = RuntimeRegistry(
            ColabClient(self._settings, tokens),
            self.names,
            poll_interval=self._settings.poll_interval,
            remembered_plan=lambda: plans.of(self.email_of(key)),
            remember_plan=lambda tier: plans.remember(self.email_of(key), tier),
            owner=key,
        )
        self._served[key] = tokens
        member = self._fleet.join(key, registry)
        if self.running:
            self._start_serving(member)

    def _start_serving(self, member: Member) -> None:
        member.loops.append(self._spawn(member.registry.run()))
        if member.key == READY and self.ready is not None and self.ready.email is None:
            member.loops.append(self._spawn(self._learn_ready_email()))

    def _stop_serving(self, key: str) -> None:
        """Cancelled here, synchronously: nothing of the account's is applied afterwards."""
        del self._served[key]
        member = self._fleet.leave(key)
        if member is None:
            return
        for task in member.loops:
            task.cancel()

        async def close() -> None:
            await asyncio.gather(*member.loops, return_exceptions=True)
            await member.registry.client.aclose()

        # Not the core's task: its stop waits for this one to end, rather than cutting a
        # closing connection short.
        tasks.held(self._closing, asyncio.create_task(close(), name=f"close {key}"))

    async def aclose(self) -> None:
        """Close every account's client (after the loops were cancelled)."""
        await asyncio.gather(*self._closing, return_exceptions=True)
        for member in self._fleet.members():
            await member.registry.client.aclose()

    async def learn_email(self) -> None:
        """Find out whose the ready token is, once (a failure leaves the email unknown)."""
        ready = self.ready
        if ready is not None and ready.email is None:
            try:
                ready.email = await fetch_email(self._settings, ready.token)
            except errors.SignedOutError:
                raise
            except errors.ColabError as exc:
                log.warning("could not read the account's email: %s", exc.message)
            self.email_learned()

    async def _learn_ready_email(self) -> None:
        """Whose the ready token is; retried with backoff while the network is down."""
        wait = 2.0
        while (ready := self.ready) is not None and ready.email is None:
            try:
                ready.email = await fetch_email(self._settings, ready.token)
            except errors.SignedOutError:
                return  # the registry's polling reports it as "sign in again"
            except errors.ColabError as exc:
                log.info("could not read the account's email: %s", exc.message)
                await asyncio.sleep(wait)
                wait = min(wait * 2, self._settings.poll_interval)
                continue
            self.email_learned()
            return
