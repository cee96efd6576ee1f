"""``colabtray ssh``, ``ssh-proxy`` and ``ssh-config``: the system's OpenSSH client reaching a
runtime through its ``/colab/ssh`` WebSocket (colabtray speaks no SSH itself).

``ssh-proxy`` is the ``ProxyCommand``: stdin goes out as binary frames, frames received go to
stdout, and nothing else is ever written to stdout (sentences and logs go to stderr). It ends
on end of input, SIGHUP (how OpenSSH ends a ProxyCommand), SIGTERM, or the socket closing,
and tells the running app about once a minute that the runtime is in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from colabtray import hints
from colabtray.errors import UserError
from colabtray.settings import Settings
from colabtray.system.dirs import private_dir
from colabtray.tools import ssh_hosts
from colabtray.tools.reach import Ask, Reached, in_use, open_socket, reach, runtime_session
from colabtray.tools.ssh_keys import Identity, identity
from colabtray.tools.stdin import StdinPieces

log = logging.getLogger(__name__)

PUBKEY_HEADER = "X-Colab-Ssh-Pubkey"
# Sessions start where the notebook's files are, as ``cp``'s relative paths do (the home
# folder where there is no /content, as on the emulator's runtimes).
IN_CONTENT = "cd /content 2>/dev/null;"
INTERACTIVE = f'{IN_CONTENT} exec "${{SHELL:-/bin/bash}}" -l'


class SshError(UserError):
    """SSH to a runtime could not start: one sentence."""


def refusal(status: int, name: str, key: Path) -> str:
    """What the runtime's answer to the WebSocket handshake means, in one sentence."""
    return {
        400: f"{name} refused the SSH key {key} (Colab takes ed25519 and ECDSA keys only).",
        401: f"{name} refused colabtray's token for it (expired or revoked); try again.",
        403: f"{name} refused SSH (403 Forbidden).",
        404: (
            f"{name} does not offer SSH; Colab decides that when it makes a runtime, so make "
            f"a new one ({hints.command('new')})."
        ),
        429: (
            f"Another SSH client is already connected to {name}, and a runtime takes one at "
            "a time; close that one first."
        ),
        502: f"{name}'s SSH server does not answer (HTTP 502).",
    }.get(status, f"{name} refused SSH (HTTP {status}).")


# ---- ssh-proxy -------------------------------------------------------------------------------


async def proxy(settings: Settings, query: str, key: Path | None, ask: Ask) -> int:
    """Relay stdin and stdout to the runtime's ``/colab/ssh`` until either side ends."""
    chosen = identity(key)  # a sentence before any network
    runtime = await reach(ask, query)
    async with runtime_session(settings) as http:
        socket = await _open(http, runtime, chosen, ask, query)
        try:
            async with in_use(settings, runtime.endpoint):
                await _relay(socket)
        finally:
            await socket.close()
    log.debug("ssh-proxy for %s ended", runtime.name)
    return 0


async def _open(
    http: aiohttp.ClientSession, runtime: Reached, chosen: Identity, ask: Ask, query: str
) -> aiohttp.ClientWebSocketResponse:
    """The upgraded socket (once more with a new token if the first was refused)."""
    try:
        _runtime, socket = await open_socket(
            http,
            runtime,
            ask,
            query,
            "/colab/ssh",
            headers={PUBKEY_HEADER: chosen.public},
            token_header=True,
        )
    except aiohttp.WSServerHandshakeError as exc:  # its text names the URL: never shown
        raise SshError(refusal(exc.status, runtime.name, chosen.private)) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise SshError(f"Could not reach {runtime.name} ({type(exc).__name__}).") from None
    return socket


async def _relay(socket: aiohttp.ClientWebSocketResponse) -> None:
    """stdin → binary frames, frames → stdout, until end of input, the socket's close,
    SIGHUP or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for number in (signal.SIGHUP, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
            loop.add_signal_handler(number, stop.set)
    stdin = StdinPieces(loop)

    async def outward() -> None:
        while (piece := await stdin.next()) is not None:
            await socket.send_bytes(piece)

    async def inward() -> None:
        async for message in socket:
            if message.type == aiohttp.WSMsgType.BINARY:
                await asyncio.to_thread(_write_stdout, message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                await asyncio.to_thread(_write_stdout, message.data.encode())
            else:
                break

    tasks = {
        asyncio.create_task(outward()),
        asyncio.create_task(inward()),
        asyncio.create_task(stop.wait()),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(OSError):
            os.close(1)  # ssh sees the end at once


def _write_stdout(data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(1, view)
        view = view[written:]


# ---- ssh and ssh-config ----------------------------------------------------------------------


async def _listed(ask: Ask) -> list[tuple[str, str]]:
    status = await ask("status", {})
    return [(r["name"], r["endpoint"]) for r in status.get("runtimes", ())]


async def ssh(
    settings: Settings,
    query: str,
    key: Path | None,
    command: list[str],
    ask: Ask,
    *,
    demo: bool = False,
) -> int:
    """Run the system's ``ssh`` to the runtime; its exit status."""
    chosen = identity(key)
    listed = await _listed(ask)
    ssh_hosts.prune_known_hosts(ssh_hosts.known_hosts_file(settings), [e for _, e in listed])
    config = ssh_hosts.config_file(settings, demo=demo)
    if ssh_hosts.written_here(config, settings):
        ssh_hosts.write_config(settings, listed, ssh_hosts.written_identity(config), demo=demo)
    runtime = await reach(ask, query)
    endpoint = runtime.endpoint
    private_dir(settings.state_dir)
    argv = ["ssh"]
    options = ssh_hosts.ssh_options(settings, endpoint, chosen.private, demo=demo)
    if not sys.stdin.isatty():
        options.append(("BatchMode", "yes"))
    for option, value in options:
        argv += ["-o", f"{option}={value}"]
    if not command and sys.stdin.isatty():  # a login shell in /content, as Colab's CLI opens
        argv.append("-t")
        command = [INTERACTIVE]
    elif command:  # ssh joins the words for the remote shell; this one goes first
        command = [IN_CONTENT, *command]
    argv.append(ssh_hosts.host_name(runtime.name))
    argv += command
    try:
        done = await asyncio.to_thread(subprocess.run, argv, check=False)
    except FileNotFoundError:
        raise SshError(
            "There is no ssh command here; install OpenSSH's client (openssh-client)."
        ) from None
    return done.returncode if done.returncode >= 0 else 128 - done.returncode


async def ssh_config(
    settings: Settings, key: Path | None, ask: Ask, *, add: bool, demo: bool = False
) -> tuple[Path, str, bool, str | None]:
    """Write the Host entries; (the file, its Include line, whether it was added to
    ~/.ssh/config, a sentence about the key if none is usable)."""
    problem = None
    try:
        private: Path | None = identity(key).private
    except UserError as exc:
        if key is not None:
            raise
        private, problem = None, exc.message
    listed = await _listed(ask)
    private_dir(settings.state_dir)
    path = ssh_hosts.write_config(settings, listed, private, demo=demo)
    added = ssh_hosts.add_include(path) if add else False
    return path, ssh_hosts.include_line(path), added, problem
