"""The ``colabtray`` command: argument parsing and the subcommands for scripts.

Errors print one sentence to stderr and exit 1; usage errors exit 2. No tracebacks unless
``--verbose`` is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from colabtray import hints
from colabtray.cli import accounts, runtimes, secrets, tools
from colabtray.cli.parser import build_parser
from colabtray.cli.place import (
    InvalidSettingsError,
    Place,
    demo_command,
    keyring_warnings,
    sessions_made,
)
from colabtray.errors import UserError, bug_sentence
from colabtray.text import say

log = logging.getLogger("colabtray")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # Imported here: the emulator pulls in Jupyter, which the app itself never needs.
        from colabtray.emulator.__main__ import main as emulator_main

        return emulator_main(argv[1:])

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the app itself is started by colabtray.launch, never from here
        parser.print_help(sys.stderr)
        return 2
    hints.set_demo(args.demo)
    if args.headless:
        say(
            "colabtray: --headless starts the app; run commands without it (they go to the "
            "running app).",
            err=True,
        )
        return 2
    import asyncio

    from colabtray.system.logs import configure_logging

    place = Place(demo=args.demo)
    configure_logging(args.verbose, place.dirs["log_dir"])
    handlers: dict[str, Callable[[argparse.Namespace, Place], Coroutine[Any, Any, int]]] = {
        "signin": accounts.signin,
        "signout": accounts.signout,
        "status": runtimes.status,
        "new": runtimes.new,
        "remove": runtimes.remove,
        "url": runtimes.url,
        "open": runtimes.open_page,
        "keep": runtimes.keep,
        "secret": secrets.secret,
        "doctor": accounts.doctor,
        "cp": tools.cp,
        "shell": tools.shell,
        "ssh": tools.ssh,
        "ssh-proxy": tools.ssh_proxy,
        "ssh-config": tools.ssh_config,
    }
    made = sessions_made.set([])
    try:
        if args.demo and args.command != "doctor":
            return asyncio.run(demo_command(args, place, handlers[args.command]))
        return asyncio.run(handlers[args.command](args, place))
    except InvalidSettingsError as exc:
        say(f"colabtray: {exc.message}", err=True)
        return 2
    except UserError as exc:
        say(f"colabtray: {exc.message}", err=True)
        return 1
    except KeyboardInterrupt:
        say("colabtray: cancelled.", err=True)
        return 130
    except BrokenPipeError:  # stdout's reader has gone: launch.main ends quietly
        raise
    except Exception as exc:  # a bug: say so in one line, keep the details for --verbose
        log.debug("unexpected error", exc_info=True)
        why = bug_sentence("", type(exc).__name__, details="run again with --verbose for details")
        say(why, err=True)  # it begins "colabtray failed"
        return 1
    finally:
        keyring_warnings(sessions_made.get())
        sessions_made.reset(made)


__all__ = ["build_parser", "main"]
