"""``status``, ``new``, ``remove``, ``url``, ``open`` and ``keep``: the runtimes."""

from __future__ import annotations

import argparse
import json
import logging
from typing import TYPE_CHECKING

from colabtray import hints
from colabtray.auth.state import AccountState
from colabtray.colab.kinds import CPU, GPU, TPU, kind_label, plan_line, shape_label, tpu_model
from colabtray.text import say

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    pass

from colabtray.cli.place import Place, ask_running_app, browser, run_command

log = logging.getLogger("colabtray")


async def status(args: argparse.Namespace, place: Place) -> int:
    data = await run_command(place, "status", {}, demo=args.demo)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    email = (data.get("account") or {}).get("email")
    say(f"Signed in as {email}" if email else "Signed in (account email unknown)")
    for account in data["other_accounts"]:
        note = "sign in again" if account["state"] == AccountState.NEEDS_SIGN_IN else "signed in"
        switch = hints.command("signin", "--switch", account["email"])
        say(f"  also: {account['email']} ({note}; {switch})")
    if not data["runtimes"]:
        say(f"No runtimes. Start one with: {hints.command('new', '--gpu', 'T4')}")
    several = bool(data["other_accounts"])  # then each account's runtimes under its email
    heading = None
    for runtime in data["runtimes"]:
        if several and runtime.get("account") != heading:
            heading = runtime.get("account")
            say(f"{heading or 'Account not known yet'}:")
        url = f"  {runtime['url']}" if runtime["url"] else ""
        say(
            f"  {runtime['name']:<16} {runtime['kind']}, {shape_label(runtime['shape'])}"
            f"  ({runtime['endpoint']}){url}"
        )
        if runtime.get("keep_alive"):  # only the running app keeps runtimes alive
            say(f"  {'':<16} {runtime['keep_alive']['says']}")
    units = data["compute_units"]
    if units:
        say(plan_line(units["tier"]))
    if units and units.get("line"):
        say(units["line"])  # as the tray's menu says it
    return 0


async def url(args: argparse.Namespace, place: Place) -> int:
    """The URL is served by the running app's editor bridge: ask it."""
    reply = await ask_running_app(
        place,
        "url",
        {"runtime": args.runtime},
        demo=args.demo,
        not_running=(
            "colabtray is not running, and connection URLs are served by the running app. "
            f"Start it with '{hints.command()}' (or '{hints.command('--headless')}' where "
            "there is no tray), then try again."
        ),
    )
    print(reply["gateway_command"] if args.lab else reply["url"])
    return 0


async def open_page(args: argparse.Namespace, place: Place) -> int:
    """The link alone on stdout, so that it pipes; with --browser it is opened too."""
    reply = await run_command(place, "colab_page", {"runtime": args.runtime}, demo=args.demo)
    say(reply["link"])
    if args.browser and not browser(reply["link"]):
        say("colabtray: no web browser could be opened; open the link above.", err=True)
        return 1
    return 0


async def keep(args: argparse.Namespace, place: Place) -> int:
    """Answer the running app's idle question: keep the runtime."""
    reply = await ask_running_app(
        place,
        "keep",
        {"runtime": args.runtime},
        demo=args.demo,
        not_running="colabtray is not running, so no idle question is waiting for an answer.",
    )
    say(f"Keeping {reply['name']} running.")
    return 0


def _requested_kind(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.gpu:
        return GPU, args.gpu.strip().upper()
    if args.tpu:
        return TPU, tpu_model(args.tpu)
    return CPU, None


async def new(args: argparse.Namespace, place: Place) -> int:
    variant, accelerator = _requested_kind(args)
    runtime = await run_command(
        place,
        "new",
        {
            "variant": variant,
            "accelerator": accelerator,
            "high_mem": args.high_mem,
            "runtime_version": args.runtime_version,
            "fallback": args.fallback,
            "account": args.account,
        },
        demo=args.demo,
    )
    if args.json:
        print(json.dumps(runtime, indent=2))
        return 0
    not_free = [kind_label(variant, model) for model in runtime.get("not_free") or ()]
    if not_free:
        verb = "was" if len(not_free) == 1 else "were"
        say(f"{' and '.join(not_free)} {verb} not free; assigned {runtime['kind']} instead.")
    shape = shape_label(runtime["shape"])
    say(f"Assigned {runtime['name']} ({shape}): {runtime['endpoint']}")
    if runtime["url"]:
        say(f"Editors connect to: {runtime['url']}")
    return 0


async def remove(args: argparse.Namespace, place: Place) -> int:
    gone = await run_command(place, "remove", {"runtime": args.runtime}, demo=args.demo)
    say(f"Disconnected {gone['name']} ({gone['endpoint']}).")
    return 0
