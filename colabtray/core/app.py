"""colabtray without a face: who is signed in, the runtimes, keep-alive, and their tasks.

One :class:`Core` owns the session (and a ready token from ``COLABTRAY_ACCESS_TOKEN``, if
set), and serves every signed-in account at once: each has its own Colab client and runtime
registry in the :class:`~colabtray.core.fleet.Fleet`, listed, bridged, kept alive and asked
about side by side. The *active* account is only the one that ``new`` and the New runtime
dialog use (a sign-in or a switch chooses it); signing an account out ends its runtimes'
service alone. The tray renders this object and turns clicks into its coroutines;
``colabtray --headless`` runs it alone.

The editor bridge plugs in through :meth:`Core.attach_bridge`. Until a bridge is attached,
:meth:`Core.connection_url` answers None and the tray says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from colabtray import hints
from colabtray.auth.errors import NotSignedInError
from colabtray.auth.identities import READY_FROM_ENVIRONMENT, READY_PASTED, ReadyToken, Source
from colabtray.auth.methods import sign_in_again
from colabtray.auth.tokens import SecretStore
from colabtray.auth.userinfo import fetch_email
from colabtray.colab import errors
from colabtray.colab.models import Eligibility, Resources, Runtime
from colabtray.core import display, offers
from colabtray.core.fleet import Fleet
from colabtray.core.keepalive import IDLE_KEY, Choice, KeepAlive, Why
from colabtray.core.listeners import Listeners
from colabtray.core.naming import find_endpoint
from colabtray.core.notebook_secrets import SERVICE as SECRETS_SERVICE
from colabtray.core.notebook_secrets import NotebookSecrets, SecretGate
from colabtray.core.notices import LowUnits, Notice, notice_for, pings_refused_notice
from colabtray.core.questions import Asker, Question, Questions, consent_question
from colabtray.core.registry import Event, RuntimeRegistry, RuntimeRemoved
from colabtray.core.serving import READY, ServedAccounts
from colabtray.core.session import Account, AccountState, Session
from colabtray.core.wakeup import WakeWatcher
from colabtray.errors import UserError, bug_sentence
from colabtray.settings import Settings

log = logging.getLogger(__name__)

NO_BRIDGE_REASON = "Editor connections need the editor bridge, which this version lacks."


class Bridge(Protocol):
    """What the core needs from the editor bridge (``colabtray.bridge.service.Bridge``)."""

    def url_for(self, endpoint: str) -> str | None:
        """The local URL an editor connects to for this runtime, while it is bridged."""
        ...

    def gateway_command(self, endpoint: str) -> str | None:
        """A ready ``jupyter lab --gateway-url=…`` line for this runtime, while bridged."""
        ...

    def last_activity(self, endpoint: str) -> datetime | None:
        """When editor traffic last passed for this runtime (keep-alive reads it)."""
        ...

    def stop(self) -> None:
        """Close its servers; may block briefly (called in a worker thread)."""
        ...


ErrorSink = Callable[[str], None]


class Core:
    def __init__(
        self,
        settings: Settings,
        *,
        secrets: SecretStore | None = None,
        notebook_store: SecretStore | None = None,
        ready_how: str = READY_FROM_ENVIRONMENT,
    ) -> None:
        self.settings = settings
        store = secrets or SecretStore()  # the keyring itself is asked in a child process
        self.session = Session(settings, store)
        self.questions = Questions(changed=lambda: self._changed())  # the menu lists them
        self._tool_activity: dict[str, datetime] = {}  # endpoint → last use by shell/ssh/cp
        self.notebook_secrets = NotebookSecrets(
            settings.config_dir, notebook_store or SecretStore(service=SECRETS_SERVICE)
        )
        self.secret_gate = SecretGate(
            self.notebook_secrets, self.questions, within=settings.idle_prompt_timeout
        )
        self.fleet = Fleet()
        self.bridge: Bridge | None = None
        self.keepalive = KeepAlive(
            settings,
            self.fleet,
            self.questions,
            activity=[(Why.TOOL, self._tool_activity.get), (Why.EDITOR, self._bridge_activity)],
        )
        self._low_units = LowUnits()
        self._listeners = Listeners("the core")
        self._notice_listeners = Listeners("notices")
        self._loops: list[asyncio.Task[Any]] = []  # keep-alive's and the wake-up watcher's
        self._spawned: set[asyncio.Task[Any]] = set()
        self._sign_in_task: asyncio.Task[str] | None = None
        self.fleet.subscribe(self._on_registry_event)
        token = settings.access_token
        self.serving = ServedAccounts(
            settings,
            self.session,
            self.fleet,
            # Served beside the session's accounts (scripts, the demo), and active at first.
            ready=ReadyToken(token.get_secret_value(), ready_how) if token else None,
            spawn=self.spawn,
            changed=self._changed,
        )
        self.session.subscribe(self._on_session_changed)
        self.keepalive.subscribe(self._changed)
        self.keepalive.subscribe_refusals(
            lambda refused: self._notice_listeners.tell(pings_refused_notice(refused))
        )

    # ---- listening ------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` after anything the tray shows may have changed."""
        self._listeners.add(listener)

    def subscribe_notices(self, listener: Callable[[Notice], None]) -> None:
        """``listener(notice)`` for each event the user should be told about."""
        self._notice_listeners.add(listener)

    # ---- running --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start polling every signed-in account; returns at once (no network wait)."""
        await self.session.check_stored()
        self._loops = [
            self.spawn(self.keepalive.run()),
            self.spawn(WakeWatcher(self._woke_up).run()),
        ]
        self.serving.start()
        self._changed()

    async def stop(self) -> None:
        """Stop every loop and pending call, and close the HTTP clients."""
        self.serving.running = False
        self.cancel_sign_in()
        members = self.fleet.members()
        tasks = [*self._loops, *self._spawned, *(t for m in members for t in m.loops)]
        if self._sign_in_task is not None:
            tasks.append(self._sign_in_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loops.clear()
        if self.bridge is not None:
            await asyncio.to_thread(self.bridge.stop)
        await self.serving.aclose()

    def spawn(
        self, coroutine: Coroutine[Any, Any, Any], on_error: ErrorSink | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coroutine`` in the background; its error becomes a sentence for ``on_error``.

        Typed errors give their ``message``; anything else is a bug, logged with its
        traceback, and the user gets one sentence that says so.
        """
        task = asyncio.ensure_future(coroutine)
        self._spawned.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._spawned.discard(finished)
            if finished.cancelled():
                return
            exc = finished.exception()
            if exc is None:
                return
            if isinstance(exc, UserError):
                sentence = exc.message
                log.info("%s", sentence)
            else:
                log.error("unexpected error", exc_info=exc)
                sentence = bug_sentence("at a task of its own", type(exc).__name__)
            if on_error is not None:
                on_error(sentence)

        task.add_done_callback(done)
        return task

    def attach_bridge(self, bridge: Bridge) -> None:
        """Use a started editor bridge: its URLs in the menu, its activity for keep-alive.

        For example ``core.attach_bridge(bridge_registry(settings, core.fleet))``. It
        outlives account changes (it follows the fleet); :meth:`stop` stops it.
        """
        self.bridge = bridge
        self._changed()

    # ---- what runtimes ask the person (secrets, consent) ---------------------------------

    @property
    def question_time(self) -> float:
        return self.settings.idle_prompt_timeout

    def set_asker(self, asker: Asker) -> None:
        """Where questions go from now on (the face's; unanswered until then)."""
        self.questions.asker = asker

    async def notebook_secret(self, endpoint: str, name: str) -> dict[str, object]:
        """google.colab.userdata's reply for a runtime's request (asks the person if needed)."""
        answer = await self.secret_gate.answer(endpoint, self.fleet.name_of(endpoint), name)
        return answer.to_json()

    async def may_open_consent(self, endpoint: str, auth_type: str) -> bool:
        """Ask before a runtime sends the person to Google's consent page."""
        question = consent_question(endpoint, self.fleet.name_of(endpoint), auth_type)
        return await self.questions.ask(question, self.question_time)

    def waiting_questions(self) -> list[Question]:
        """The runtimes' questions waiting for an answer (secrets, consent), oldest first; a
        dismissed notification leaves its question here until it is answered or expires. The
        idle questions are not among them: each runtime's own entries answer those."""
        return [q for q in self.questions.waiting() if not q.key.startswith(IDLE_KEY)]

    def answer_question(self, key: str, yes: bool) -> bool:
        """Answer a waiting question as its notification would; False if none is open."""
        return self.questions.answer(key, yes)

    def bridge_changed(self) -> None:
        """The bridge opened or closed a runtime's URL (called on the core's loop)."""
        self._changed()

    def answer_idle(self, endpoint: str, choice: Choice) -> bool:
        """Answer a runtime's pending idle question; False if none is waiting."""
        return self.keepalive.answer(endpoint, choice)

    # ---- who is signed in -----------------------------------------------------------------

    @property
    def ready(self) -> ReadyToken | None:
        """The ready token (``COLABTRAY_ACCESS_TOKEN``, a pasted one, the demo's), if any."""
        return self.serving.ready

    @property
    def uses_ready_token(self) -> bool:
        """The active account is the ready token's (``COLABTRAY_ACCESS_TOKEN``, the demo)."""
        return self.serving.ready_is_active

    @property
    def signed_in(self) -> bool:
        return self.ready is not None or self.session.active_email is not None

    @property
    def email(self) -> str | None:
        """The active account's email (None: nobody, or a ready token not yet asked)."""
        return self.serving.active_email

    def account_of(self, endpoint: str) -> str | None:
        """The email of the account a runtime belongs to (None: unknown yet)."""
        key = self.fleet.account_of(endpoint)
        return self.serving.email_of(key) if key is not None else None

    @property
    def must_sign_in(self) -> bool:
        """The active account's sign-in was refused or lost; it must sign in again."""
        if self.fleet.state.signed_out:
            return True
        return not self.uses_ready_token and any(
            a.email == self.email and a.state is AccountState.NEEDS_SIGN_IN
            for a in self.session.accounts()
        )

    def other_accounts(self) -> list[Account]:
        """Signed-in accounts one may switch to (the ready token's too, once its email is
        known)."""
        others = [a for a in self.session.accounts() if a.email != self.email]
        ready = self.ready
        if (
            ready is not None
            and ready.email
            and not self.uses_ready_token
            and all(a.email != ready.email for a in others)
        ):
            others.insert(0, Account(ready.email, AccountState.SIGNED_IN, active=False))
        return others

    @property
    def signing_in(self) -> bool:
        return self._sign_in_task is not None and not self._sign_in_task.done()

    async def sign_in(
        self, open_url: Callable[[str], object], login_hint: str | None = None
    ) -> str | None:
        """Run Google's sign-in in the browser; the new email (now active), or None if
        cancelled. Accounts signed in before stay served."""
        if self.signing_in:
            raise errors.ColabError("A sign-in is already waiting for the browser.")
        task = asyncio.ensure_future(
            self.session.sign_in(
                open_url, login_hint=login_hint, wait_seconds=self.settings.signin_timeout
            )
        )
        self._sign_in_task = task
        self._changed()
        try:
            email = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                return None  # cancel_sign_in(): not an error
            raise
        finally:
            self._sign_in_task = None
            self._changed()
        self.serving.activate(email)
        return email

    def cancel_sign_in(self) -> None:
        if self._sign_in_task is not None:
            self._sign_in_task.cancel()

    async def sign_in_gcloud(self, account: str | None = None) -> str:
        """Use gcloud's sign-in (of ``account``, else gcloud's active one); the email."""
        email = await self.session.sign_in_gcloud(account)
        self.serving.activate(email)
        return email

    async def sign_in_adc(self, path: Path) -> str:
        """Use the Application Default Credentials in ``path``; the email."""
        email = await self.session.sign_in_adc(path)
        self.serving.activate(email)
        return email

    async def use_ready_token(self, token: str) -> str:
        """Use an access token the person pasted, for this run only (memory, never a file);
        its email, now the active account. SignedOutError if Google does not accept it."""
        try:
            email = await fetch_email(self.settings, token.strip())
        except errors.SignedOutError:
            raise errors.ColabError(
                "Google does not accept this access token (expired, revoked or mistyped); "
                "paste a fresh one."
            ) from None
        self.serving.use_ready(ReadyToken(token.strip(), READY_PASTED, email))
        self.serving.activate(email)
        return email

    def reload_accounts(self) -> str | None:
        """Read the accounts again (another colabtray process signed in); the active one."""
        self.session.reload()
        active = self.session.active_email
        if active is not None:
            self.serving.activate(active)
        return active

    async def learn_email(self) -> None:
        """Find out whose the ready token is, once (a failure leaves the email unknown)."""
        await self.serving.learn_email()

    async def retry_sign_in(self, email: str) -> None:
        """Ask a gcloud or ADC account's source again, after the person fixed it there; then
        list its runtimes at once."""
        await self.session.retry(email)
        member = self.fleet.member(self.serving.key_of(email))
        if member is not None:
            member.registry.poke()

    def switch(self, email: str) -> None:
        """Make another signed-in account the active one (the one ``new`` uses); every
        account stays served."""
        if self.serving.key_of(email) != READY:
            self.session.switch(email)  # NotSignedInError if there is no such account
        self.serving.activate(email)

    async def sign_out(self) -> None:
        """Sign the active account out (revoking it); a ready token is just dropped."""
        await self.sign_out_of(None)

    async def sign_out_of(
        self, email: str | None, *, everyone: bool = False
    ) -> list[tuple[str, str | None]]:
        """Sign out ``email`` (None: the active one) or everyone; a ready token is dropped.
        Its runtimes are no longer served; other accounts' are untouched. Returns who was
        signed out, each with a note on what stayed."""
        ready = self.ready
        gone: list[tuple[str, str | None]] = []
        mine = self.uses_ready_token if email is None else self.serving.key_of(email) == READY
        if ready is not None and (everyone or mine):
            gone.append((ready.email or "the ready token", None))
            self.serving.use_ready(None)
            if not everyone:
                return gone
        target = email if email is not None else self.email
        return gone + await self.session.sign_out(target, everyone=everyone)

    def _on_session_changed(self) -> None:
        self.serving.session_changed()
        self._changed()

    def _woke_up(self) -> None:
        """After a sleep: list the runtimes and ping what needs it now, not at the next tick."""
        self.fleet.poke()
        self.keepalive.poke()

    # ---- runtimes -------------------------------------------------------------------------

    def rows(self) -> list[display.RuntimeRow]:
        """Every served account's runtimes: the active account's first, each by name."""
        pending = self.keepalive.pending()
        rows = []
        for member in self.fleet.members():
            state = member.registry.state
            account = self.serving.email_of(member.key)
            for name, runtime in member.registry.runtimes():
                rows.append(
                    display.runtime_row(
                        name,
                        runtime,
                        self.keepalive.verdict(runtime.endpoint),
                        pending=runtime.endpoint in pending,
                        reachable=state.reachable,
                        needs_sign_in=state.signed_out,
                        keeping=self.keepalive.keeping(runtime.endpoint),
                        account=account,
                    )
                )
        return rows

    def _registry_for(self, account: str | None) -> RuntimeRegistry:
        """The registry of ``account`` (an email; None: the active account's)."""
        if account is None:
            registry = self.fleet.active_registry
        else:
            member = self.fleet.member(self.serving.key_of(account))
            registry = member.registry if member is not None else None
        if registry is None and account is not None:
            emails = (self.serving.email_of(m.key) for m in self.fleet.members())
            known = ", ".join(email for email in emails if email)
            raise errors.ColabError(
                f"{account} is not signed in to colabtray (signed in: {known or 'nobody'}); "
                f"sign it in with '{hints.command('signin', '--account', account)}'."
            )
        if registry is None:
            raise NotSignedInError()
        return registry

    async def create(
        self, variant: str, accelerator: str | None, *, high_mem: bool = False
    ) -> tuple[str, Runtime]:
        """Assign a runtime to the active account; the client's typed errors reach the caller."""
        return await self._registry_for(None).create(variant, accelerator, high_mem=high_mem)

    async def create_checked(
        self,
        variant: str,
        accelerator: str | None,
        *,
        high_mem: bool = False,
        runtime_version: str | None = None,
        fallback: bool = False,
        not_free: Collection[str] = (),
        account: str | None = None,
    ) -> offers.Assigned:
        """Assign a runtime to ``account`` (None: the active one) unless its plan rules it
        out (a sentence saying so); when the plan cannot be read, Colab has the last word.

        When that accelerator is not free (503), ``fallback`` tries the plan's other ones of
        the same kind in turn (:func:`offers.alternatives`); without it the error names them.
        ``not_free`` are models found not free a moment ago: not named or tried again. When
        none is left, NoneFreeError lists every one tried."""
        registry = self._registry_for(account)
        eligibility = await self._plan_for_checks(registry)
        if eligibility is not None:
            refused = offers.refusal(eligibility, variant, accelerator, high_mem=high_mem)
            if refused is not None:
                raise errors.ColabError(refused)
        tried: list[str] = []
        current = accelerator
        while True:
            try:
                name, runtime = await registry.create(
                    variant, current, high_mem=high_mem, runtime_version=runtime_version
                )
            except errors.AcceleratorUnavailableError:
                if current is None or eligibility is None:
                    raise  # CPU, or a plan unread: nothing to fall back to
                tried.append(current.upper())
                current = offers.next_to_try(
                    eligibility, variant, accelerator, tried, not_free, fallback=fallback
                )
            else:
                await self.keepalive.first_ping(runtime.endpoint)  # gives it back if refused
                if self.ready is not None and self.ready.email is None:
                    await self.learn_email()  # whose plan the assign reply named, to keep it
                return offers.Assigned(name, runtime, accelerator, tuple(tried))

    async def _plan_for_checks(self, registry: RuntimeRegistry) -> Eligibility | None:
        """The plan, or None when it cannot be read (then nothing is refused here)."""
        try:
            await self.learn_email()  # a plan kept from an earlier run is kept by email
            known = registry.state.eligibility
            return known if known is not None else await registry.read_eligibility()
        except errors.SignedOutError:
            raise
        except errors.ColabError as exc:
            log.warning("could not read what this account may have: %s", exc.message)
            return None

    async def find_runtime(self, query: str) -> str | None:
        """The endpoint ``query`` names (a name in any case, or an endpoint); lists once more
        before saying there is none, so a runtime made a moment ago elsewhere is found."""
        found = find_endpoint(query, self.fleet.state.names)
        if found is None:
            await self.fleet.refresh()
            found = find_endpoint(query, self.fleet.state.names)
        return found

    async def fresh_listing(self, within: float = 5.0) -> None:
        """List again unless the last listing is younger than ``within`` seconds."""
        if self.fleet.age() > within:
            await self.fleet.refresh()

    async def disconnect(self, endpoint: str) -> None:
        await self.fleet.remove(endpoint)

    async def resources(self, endpoint: str) -> Resources:
        """Live RAM, disk and GPU figures of one runtime (asked with its account's tokens)."""
        runtime = await self.fleet.fresh_runtime(endpoint)
        owner = self.fleet.registry_of(endpoint)
        if owner is None:
            raise errors.RuntimeGoneError(endpoint)
        return await owner.client.resources(runtime)

    async def eligibility(self, account: str | None = None) -> Eligibility:
        """What ``account`` (None: the active one) may assign (read once, then from its
        registry's state)."""
        registry = self._registry_for(account)
        known = registry.state.eligibility
        return known if known is not None else await registry.read_eligibility()

    def connection_url(self, endpoint: str) -> str | None:
        return self.bridge.url_for(endpoint) if self.bridge is not None else None

    def lab_command(self, endpoint: str) -> str | None:
        return self.bridge.gateway_command(endpoint) if self.bridge is not None else None

    # ---- what the faces read (they ask here, not the registry, session or keep-alive) -----

    @property
    def listed(self) -> bool:
        """A listing of the runtimes has come in (else the menu says it is looking)."""
        return self.fleet.state.loaded

    def endpoints(self) -> set[str]:
        return set(self.fleet.state.runtimes)

    def known_eligibility(self) -> Eligibility | None:
        """What the account may assign, if read already (no network)."""
        return self.fleet.state.eligibility

    def accounts(self) -> list[Account]:
        return self.session.accounts()

    def source_of(self, email: str) -> Source | None:
        return self.session.source_of(email)

    def list_now(self) -> None:
        """List the runtimes at once rather than at the next poll."""
        self.fleet.poke()

    def note_activity(self, endpoint: str) -> None:
        """A tool of colabtray's (shell, ssh, cp) is using the runtime now."""
        self._tool_activity[endpoint] = datetime.now(UTC)

    def _bridge_activity(self, endpoint: str) -> datetime | None:
        """Editor traffic, for keep-alive (a source from the start: the bridge comes later)."""
        return self.bridge.last_activity(endpoint) if self.bridge is not None else None

    # ---- what the icon says ---------------------------------------------------------------

    def tray_state(self) -> display.TrayState:
        state = self.fleet.state
        return display.tray_state(
            signed_in=self.signed_in,
            must_sign_in=self.must_sign_in or self._someone_must_sign_in(),
            pending=bool(self.keepalive.pending() or self.questions.pending()),
            reachable=state.reachable,
            runtimes=len(state.runtimes),
        )

    def _someone_must_sign_in(self) -> bool:
        """An account other than the active one needs a sign-in (its runtimes are not kept
        alive meanwhile)."""
        return any(m.registry.state.signed_out for m in self.fleet.members()) or any(
            a.state is AccountState.NEEDS_SIGN_IN for a in self.session.accounts()
        )

    def problem(self) -> str | None:
        """The sentence to show while something is wrong."""
        if self.must_sign_in:
            mine = (a for a in self.session.accounts() if a.email == self.email and a.problem)
            why = next((a.problem for a in mine), None)
            return self.fleet.state.problem or why or sign_in_again(self.email)
        return self.fleet.state.problem

    def compute_units_line(self) -> str | None:
        return display.compute_units_line(self.fleet.state.compute_units)

    def tooltip(self) -> str:
        return display.tooltip(
            self.tray_state(),
            email=self.email,
            rows=self.rows(),
            problem=self.problem(),
            units_line=self.compute_units_line(),
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _on_registry_event(self, event: Event) -> None:
        if isinstance(event, RuntimeRemoved):  # an "Allow" lasts as long as its runtime
            self.secret_gate.forget_runtime(event.endpoint)
        units = self._low_units.notice(self.fleet.state.compute_units)
        for notice in (notice_for(event), units):
            if notice is not None:
                self._notice_listeners.tell(notice)
        self._changed()

    def _changed(self) -> None:
        self._listeners.tell()
