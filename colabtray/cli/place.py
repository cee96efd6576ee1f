"""What every subcommand shares: where its colabtray keeps its files, and how a command is
carried out (by the running app, else here for one call)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from colabtray import hints
from colabtray.colab import errors
from colabtray.errors import UserError
from colabtray.system.dirs import app_dir
from colabtray.text import say

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    from colabtray.core.session import Session
    from colabtray.settings import Settings


log = logging.getLogger("colabtray")


# How long a command may take in the running app before the CLI gives up waiting (seconds):
# an assignment waits for Colab, a sign-in for the person at the browser.
SLOW_COMMAND = 300.0


class DemoNotRunningError(Exception):
    """A ``--demo`` command found no running demo (it never falls back to the real account)."""


class InvalidSettingsError(UserError):
    """A ``COLABTRAY_*`` variable the settings refuse (a usage error: exit status 2)."""


class Place:
    """Where this command's colabtray keeps its files (the demo's own, or the person's), and
    its settings, loaded only when the command does work here: the directories come from the
    environment alone, and a command the running app carries out needs no more than them."""

    def __init__(self, *, demo: bool) -> None:
        kinds = ("config", "state", "log")
        self.dirs = {f"{k}_dir": app_dir(k, demo=demo) for k in kinds}
        self.config_dir = self.dirs["config_dir"]
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        """All the settings (environment, then the settings file); InvalidSettingsError."""
        if self._settings is None:
            from pydantic import ValidationError

            from colabtray.settings import load_settings

            try:
                self._settings = load_settings(**self.dirs)
            except ValidationError as exc:
                problems = "; ".join(
                    f"COLABTRAY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                    for e in exc.errors()
                )
                raise InvalidSettingsError(f"invalid setting ({problems}).") from None
        return self._settings


# The sessions of cores this run of a command made (no app was running): whether the keyring
# was usable is known once it was asked, and is said at the end (a list per call of main).
sessions_made: ContextVar[list[Session]] = ContextVar("sessions_made")


def new_session(settings: Settings) -> Session:
    from colabtray.auth.tokens import SecretStore
    from colabtray.core.session import Session

    session = Session(settings, SecretStore())
    sessions_made.get().append(session)
    return session


def keyring_warnings(sessions: list[Session]) -> None:
    for warning in dict.fromkeys(s.keyring_warning for s in sessions if s.keyring_warning):
        say(f"colabtray: {warning}", err=True)


async def run_command(
    place: Place,
    name: str,
    args: dict[str, Any],
    *,
    demo: bool,
    within: float = SLOW_COMMAND,
) -> dict[str, Any]:
    """Carry out a control command: in the running app if there is one (so the tray, its
    bridge and the CLI agree at once), else on a core made here for this one call; with
    ``demo`` only in the running demo app (DemoNotRunningError otherwise)."""
    from colabtray.system import ipc

    try:
        return await ipc.request(place.config_dir, name, args, answer_within=within)
    except ipc.NotRunningError:
        if demo:
            raise DemoNotRunningError() from None
    except ipc.IpcError as exc:
        raise errors.ColabError(exc.message) from None
    from colabtray.core.commands import carry_out_here

    return await carry_out_here(place.settings(), name, args, cores=sessions_made.get())


async def ask_running_app(
    place: Place, name: str, request: dict[str, Any], *, demo: bool, not_running: str
) -> dict[str, Any]:
    """A command only the running app can answer (it holds the URL or the question);
    ``not_running`` is the sentence when there is none."""
    from colabtray.system import ipc

    try:
        return await ipc.request(place.config_dir, name, request)
    except ipc.NotRunningError:
        if demo:
            raise DemoNotRunningError() from None
        raise errors.ColabError(not_running) from None
    except ipc.IpcError as exc:
        raise errors.ColabError(exc.message) from None


async def demo_command(
    args: argparse.Namespace,
    place: Place,
    handler: Callable[[argparse.Namespace, Place], Awaitable[int]],
) -> int:
    """``colabtray --demo COMMAND``: carried out by the running demo app, or refused."""
    try:
        return await handler(args, place)
    except DemoNotRunningError:
        say(
            "colabtray: the demo is not running, so --demo has nothing to act on (your own "
            f"account is never used with --demo). Start it with '{hints.command()}', then "
            "run this again beside it.",
            err=True,
        )
        return 2


def browser(url: str) -> bool:
    """Open ``url`` the platform's standard way (honours $BROWSER); whether one opened."""
    import webbrowser

    return webbrowser.open(url)
