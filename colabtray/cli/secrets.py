"""``colabtray secret``: the secrets notebooks read with google.colab.userdata."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from colabtray import hints
from colabtray.text import say

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    pass

from colabtray.cli.place import Place, ask_running_app, run_command

log = logging.getLogger("colabtray")


async def secret(args: argparse.Namespace, place: Place) -> int:
    if args.op == "list":
        reply = await run_command(place, "secret", {"op": "list"}, demo=args.demo)
        for name, entry in sorted(reply["names"].items()):
            say(f"{name}{'  (no question asked)' if entry['no_ask'] else ''}")
        if not reply["names"]:
            say(f"No secrets. Add one with: {hints.command('secret', 'set', 'NAME')}")
        return 0
    if args.op == "set":
        import asyncio

        value = await asyncio.to_thread(_read_secret_value, args.name)
        request = {"op": "set", "name": args.name, "value": value, "no_ask": args.no_ask}
        reply = await run_command(place, "secret", request, demo=args.demo)
        say(f"Stored the secret {args.name} (in {reply['place']}).")
        return 0
    if args.op == "rm":
        await run_command(place, "secret", {"op": "remove", "name": args.name}, demo=args.demo)
        say(f"Forgot the secret {args.name}.")
        return 0
    reply = await ask_running_app(
        place,
        "secret",
        {"op": args.op, "name": args.name, "runtime": args.runtime},
        demo=args.demo,
        not_running="colabtray is not running, so no runtime is waiting for an answer.",
    )
    verb = "may read" if args.op == "allow" else "may not read"
    say(f"{reply['runtime']} {verb} the secret {reply['name']}.")
    return 0


def _read_secret_value(name: str) -> str:
    """The value: typed without echo at a terminal, else all of stdin (one trailing newline
    dropped)."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"Value of {name} (not shown): ")
    value = sys.stdin.read()
    return value[:-1] if value.endswith("\n") else value
