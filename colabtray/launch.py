"""The ``colabtray`` command's entry point: the app, started fast; subcommands go to the CLI.

The subcommands (:mod:`colabtray.cli`) import the whole client stack, about half a second.
Starting the tray must not wait for that, so a command line made only of the app's own
options (``--demo``, ``--headless``, ``-v``) runs the app from here without importing the
CLI; anything else is handed to :func:`colabtray.cli.main`, which documents every option.

Running the app: claim the single instance (or hand over to the running one and exit 0),
start the demo emulator if asked, then run the tray or the headless core.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from colabtray import hints
from colabtray.system.dirs import app_dir
from colabtray.text import say

if TYPE_CHECKING:
    from colabtray.demo import DemoEmulator
    from colabtray.settings import Settings

APP_OPTIONS = frozenset({"--demo", "--headless", "-v", "--verbose", "--at-login"})

CLOSED_PIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a tool a closed pipe ended


def _quiet_when_the_reader_leaves(run: Callable[..., int]) -> Callable[..., int]:
    """Every command: output whose reader has gone (``colabtray doctor --json | head -2``) ends
    the command quietly, as Unix tools end, not with an error."""

    def quietly(argv: Sequence[str] | None = None) -> int:
        try:
            status = run(argv)
            sys.stdout.flush()  # now, not at the interpreter's exit, which would complain
        except BrokenPipeError:
            # Nothing more can reach the reader; send the rest (the exit's flush) nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return CLOSED_PIPE_STATUS
        return status

    return quietly


@_quiet_when_the_reader_leaves
def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if set(args) <= APP_OPTIONS:
        return run_app(
            demo="--demo" in args,
            headless="--headless" in args,
            verbose=bool({"-v", "--verbose"} & set(args)),
            at_login="--at-login" in args,
        )
    from colabtray.cli import main as cli_main

    return cli_main(args)


def run_app(
    *, demo: bool = False, headless: bool = False, verbose: bool = False, at_login: bool = False
) -> int:
    """Run the tray (or, headless, the core alone) until quit; returns the exit status."""
    from colabtray.system.instance import InstanceError, InstanceLock
    from colabtray.system.logs import configure_logging

    # The demo's own, with demo: the user's accounts and runtime names stay untouched.
    config_dir, state_dir, log_dir = (app_dir(k, demo=demo) for k in ("config", "state", "log"))
    configure_logging(verbose, log_dir)
    hints.set_demo(demo)
    if not headless and _no_display():
        say(
            "colabtray: there is no display to put a tray icon on (DISPLAY and WAYLAND_DISPLAY "
            "are unset); start it from your desktop session, or run "
            f"'{hints.command('--headless')}'.",
            err=True,
        )
        return 1
    try:
        lock = InstanceLock.claim(config_dir)
    except (OSError, InstanceError) as exc:
        say(f"colabtray: cannot take the single-instance lock: {_sentence(exc)}", err=True)
        return 1
    if lock is None:
        return _hand_over(config_dir)

    emulator: DemoEmulator | None = None
    try:
        if demo:
            from colabtray.demo import DemoEmulator, wipe

            wipe(config_dir, state_dir)
            # Started here, on the main thread, before Qt: see DemoEmulator. Its runtimes speak
            # HTTPS as Colab's do; the exports make the app trust their certificate.
            emulator = DemoEmulator(state_dir / "emulator.log", ("--tls",))
        prepare = partial(_settings, config_dir, state_dir, log_dir, emulator)
        if headless:
            from colabtray.headless import run

            return run(prepare, lock, demo=demo)
        from colabtray.ui.app import run as run_tray

        return run_tray(prepare, lock, demo=demo, at_login=at_login)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _sentence(exc)
        if message is None:
            raise
        say(f"colabtray: {message}", err=True)
        return 1
    finally:
        if emulator is not None:
            emulator.stop()
        lock.release()


def _no_display() -> bool:
    """On Linux and the BSDs Qt needs an X or Wayland display (unless told otherwise)."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return False
    names = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    return not any(os.environ.get(name) for name in names)


def _settings(
    config_dir: Path, state_dir: Path, log_dir: Path, emulator: DemoEmulator | None
) -> Settings:
    """The app's settings (in a worker thread: pydantic is slow to import)."""
    from colabtray.settings import load_settings

    dirs = {"config_dir": config_dir, "state_dir": state_dir, "log_dir": log_dir}
    if emulator is None:
        return load_settings(**dirs)
    from colabtray.demo import emulator_settings

    return load_settings(**emulator_settings(emulator.exports()), **dirs)


def _hand_over(config_dir: Path) -> int:
    """Another colabtray runs for this config dir: ask it to show itself, and exit."""
    import asyncio

    from colabtray.system import ipc

    try:
        result = asyncio.run(ipc.request(config_dir, "show", wait_for_server=10.0))
    except ipc.IpcError as exc:
        say(f"colabtray: another colabtray holds the lock: {exc.message}", err=True)
        return 1
    shown = result.get("shown")
    where = {"menu": "its menu is open", "window": "its window is up"}.get(str(shown))
    say(
        f"colabtray is already running; {where}." if where else "colabtray is already running.",
        err=True,
    )
    return 0


def _sentence(exc: BaseException) -> str | None:
    """A sentence for errors a person can act on (typed errors, bad settings), else None."""
    from colabtray.errors import UserError, describe_os_error

    if isinstance(exc, UserError):
        return exc.message
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ == "ValidationError" and callable(errors):  # a COLABTRAY_* variable
        first = errors()[0]
        name = "COLABTRAY_" + str(first["loc"][0]).upper() if first.get("loc") else "a setting"
        return f"{name} is invalid: {first['msg']}."
    if isinstance(exc, OSError):
        return f"{describe_os_error(exc)} ({exc.filename})" if exc.filename else str(exc)
    return None
