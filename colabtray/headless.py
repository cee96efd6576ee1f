"""``colabtray --headless``: the core with no UI, on a plain asyncio loop, until SIGINT/SIGTERM.

Polling, keep-alive (idle runtimes are let go, since nobody can be asked) and the control
channel run as in the tray; notices go to the log (stderr) instead of the desktop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from colabtray.bridge.control import start_for as start_bridge
from colabtray.core.app import Core
from colabtray.instance import InstanceLock
from colabtray.ipc import ControlServer
from colabtray.settings import Settings

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
        secrets = None
        if demo:
            from colabtray.demo import memory_secrets

            secrets = memory_secrets()
        core = Core(settings, secrets=secrets)
        core.subscribe_notices(lambda n: log.warning("%s: %s", n.title, n.body))
        server.register("show", lambda _args: {"shown": "nothing", "status": core.tooltip()})
        start_bridge(core, server)  # the editor bridge; answers 'url' and 'urls'
        await server.start()
        await core.start()
        if not core.signed_in:
            log.warning("not signed in: run 'colabtray signin' (or set COLABTRAY_ACCESS_TOKEN)")
        try:
            await stop.wait()
        finally:
            await core.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.close()
    return 0
