"""``cp``, ``shell``, ``ssh``, ``ssh-proxy`` and ``ssh-config``: the runtime from the user's own
tools."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colabtray.text import say

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    from colabtray.settings import Settings

from colabtray.cli.place import Place, run_command

log = logging.getLogger("colabtray")


async def cp(args: argparse.Namespace, place: Place) -> int:
    """Files both ways between this machine and a runtime (colabtray.tools.copy)."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools.copy import CopyUsageError, copy

    async def ask(name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await run_command(place, name, request, demo=args.demo)

    try:
        await copy(settings, args.source, args.destination, recursive=args.recursive, ask=ask)
    except CopyUsageError as exc:
        say(f"colabtray: {exc.message}", err=True)
        return 2
    return 0


async def _trusting_as_the_app(place: Place) -> Settings:
    """The settings a tool reaches a runtime with: the running app's extra certificate
    authorities, if it has any (the demo's runtimes), as the tool acts for it."""
    from colabtray.system import ipc

    settings = place.settings()
    try:
        reply = await ipc.request(place.config_dir, "trust", answer_within=10)
    except ipc.IpcError:  # no app (the tool then asks a core made here), or an older one
        return settings
    ca_file = reply.get("ca_file")
    if not ca_file or settings.ca_file == Path(ca_file):
        return settings
    return settings.model_copy(update={"ca_file": Path(ca_file)})


async def shell(args: argparse.Namespace, place: Place) -> int:
    """This terminal connected to a shell on a runtime (colabtray.tools.terminal)."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools import terminal

    return await terminal.shell(settings, args.runtime, _asker(args, place))


def _asker(args: argparse.Namespace, place: Place) -> Any:
    async def ask(name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await run_command(place, name, request, demo=args.demo)

    return ask


async def ssh(args: argparse.Namespace, place: Place) -> int:
    """The system's ssh to a runtime (colabtray.tools.ssh)."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools import ssh

    return await ssh.ssh(
        settings,
        args.runtime,
        args.identity,
        args.remote_command,
        _asker(args, place),
        demo=args.demo,
    )


async def ssh_proxy(args: argparse.Namespace, place: Place) -> int:
    """ssh's ProxyCommand: stdout is the SSH stream, so logs go to stderr only with -v."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools import ssh

    if not args.verbose:
        for handler in logging.getLogger().handlers:
            if getattr(handler, "stream", None) is sys.stderr:
                handler.setLevel(logging.CRITICAL + 1)
    return await ssh.proxy(settings, args.runtime, args.identity, _asker(args, place))


async def ssh_config(args: argparse.Namespace, place: Place) -> int:
    """Host entries for every runtime, in a file of their own."""
    from colabtray.tools import ssh

    path, include, added, problem = await ssh.ssh_config(
        place.settings(), args.identity, _asker(args, place), add=args.add_include, demo=args.demo
    )
    say(f"Wrote {path}: one Host entry per runtime (ssh colab-NAME), kept up to date.")
    if added:
        say(f"Added '{include}' at the top of ~/.ssh/config.")
    elif args.add_include:
        say(f"~/.ssh/config has '{include}' already.")
    else:
        say("Add this line at the top of ~/.ssh/config (or run with --add-include):", include)
    if problem:
        say(f"colabtray: {problem}", err=True)
    return 0
