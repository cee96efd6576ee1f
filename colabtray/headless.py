"""``colabtray --headless``: the core with no UI, on a plain asyncio loop, until SIGINT/SIGTERM.

Like ``jupyter server`` it speaks on stdout, one line each: who it is signed in as (or how to
sign in), the command that starts a runtime while there is none, each runtime once an editor
can reach it (name, kind, local URL), each runtime that goes and why, and an idle question
with the commands that answer it (``colabtray keep NAME``, ``colabtray remove NAME``; with
``--demo`` in the demo). Notices that a desktop would show go to the log (stderr).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from colabtray import hints
from colabtray.auth.methods import not_signed_in
from colabtray.core.app import Core
from colabtray.core.naming import kind_label
from colabtray.core.notices import Notice
from colabtray.core.questions import Question
from colabtray.core.registry import Event, RuntimeRemoved
from colabtray.runner import run_core
from colabtray.settings import Settings
from colabtray.system.instance import InstanceLock
from colabtray.system.ipc import ControlServer, IpcError
from colabtray.text import printable

log = logging.getLogger("colabtray")


def run(prepare: Callable[[], Settings], lock: InstanceLock, *, demo: bool = False) -> int:
    """Run until a stop signal; returns the exit status."""
    return asyncio.run(_main(prepare, ControlServer(lock), demo=demo))


async def _main(prepare: Callable[[], Settings], server: ControlServer, *, demo: bool) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        settings = await asyncio.to_thread(prepare)
        await run_core(settings, server, lambda core: HeadlessFace(core), stop, demo=demo)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.close()  # already closed unless starting failed; releases the lock
    return 0


class HeadlessFace:
    """The core told on stdout, a line per thing a person would want to know."""

    def __init__(self, core: Core, out: TextIO | None = None) -> None:
        self._core = core
        self._out = out or sys.stdout
        self._told: dict[str, str] = {}  # endpoint → URL already printed
        self._account: tuple[str | None, bool] | None = None
        self._none_told = False  # "no runtime yet" said since the last runtime went
        core.set_asker(_Asker(self))
        core.subscribe(self._changed)
        core.fleet.subscribe(self._event)
        core.subscribe_notices(self._notice)

    def _notice(self, notice: Notice) -> None:
        if not notice.shown_as_state:  # the lines below tell runtimes and the account
            where = f" {notice.action.label}: {notice.action.url}" if notice.action else ""
            self.say(f"{notice.title}: {notice.body}{where}")

    def say(self, line: str) -> None:
        print(printable(line), file=self._out, flush=True)

    # ---- Face -------------------------------------------------------------------------------

    def show(self) -> dict[str, Any]:
        return {"shown": "nothing", "status": self._core.tooltip()}

    def menu(self) -> dict[str, Any]:
        raise IpcError("colabtray --headless has no menu.")

    def started(self) -> None:
        self._changed()

    def close(self) -> None:
        self.say("colabtray stopped.")

    # ---- what changed -----------------------------------------------------------------------

    def _changed(self) -> None:
        core = self._core
        account = (core.email, core.must_sign_in)
        if account != self._account and (core.email or not core.signed_in):
            self._account = account
            if not core.signed_in:
                self.say(not_signed_in())
            elif core.must_sign_in:
                self.say(f"Sign in again: {core.problem()}")
            elif others := [a.email for a in core.other_accounts()]:
                served = ", ".join(others)
                self.say(
                    f"Active account: {core.email} (new runtimes go to it); also served: {served}."
                )
            else:
                self.say(f"Signed in as {core.email}.")
        runtimes = core.fleet.runtimes()
        if runtimes or not core.signed_in:
            self._none_told = False
        elif core.fleet.state.loaded and not self._none_told:
            self._none_told = True
            self.say(
                f"No runtime yet: start one with {hints.command('new', '--cpu')} (in another "
                "terminal); its URL for editors shows here."
            )
        for name, runtime in runtimes:
            url = core.connection_url(runtime.endpoint)
            if url is not None and self._told.get(runtime.endpoint) != url:
                self._told[runtime.endpoint] = url
                kind = kind_label(runtime.variant, runtime.accelerator)
                self.say(f"{name} ({kind}) is ready for editors at {url}")

    def _event(self, event: Event) -> None:
        if isinstance(event, RuntimeRemoved):
            self._told.pop(event.endpoint, None)
            if event.signed_out:
                self.say(f"{event.name} is no longer served: its account was signed out.")
                return
            why = "disconnected" if event.by_user else "reclaimed by Colab or removed elsewhere"
            self.say(f"{event.name} is gone ({why}).")


class _Asker:
    """A question on stdout with the commands that answer it (the idle question: ``colabtray
    keep`` or ``remove``). Nobody can click a consent page here, so that one is let through:
    the browser itself asks."""

    def __init__(self, face: HeadlessFace) -> None:
        self._face = face

    def ask(self, question: Question, answer: Callable[[bool], None]) -> None:
        if not question.commands:
            self._face.say(f"{question.title}: opening the browser for it.")
            answer(True)
            return
        self._face.say(f"{question.title}: {question.commands}")

    def withdraw(self, key: str) -> None:
        pass
