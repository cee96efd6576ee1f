"""The app's life, whatever its face: the core, the editor bridge and the control channel,
started in order, run until asked to stop, then stopped in order.

The tray (:mod:`colabtray.ui.lifecycle`) and ``--headless`` (:mod:`colabtray.headless`) both
run through :func:`run_core`; each brings a :class:`Face` that shows the core (or prints it)
and answers the control channel's ``show``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from colabtray import hints
from colabtray.bridge import bridge_registry
from colabtray.core.app import Core
from colabtray.core.commands import Commands
from colabtray.settings import Settings
from colabtray.system.ipc import ControlServer
from colabtray.tools import ssh_hosts


class Face(Protocol):
    """What shows the core to a person: the tray, or lines on stdout."""

    def show(self) -> dict[str, Any]:
        """Bring the app to the front (a second ``colabtray`` asked); what was shown."""
        ...

    def menu(self) -> dict[str, Any]:
        """The menu as text (tests ask for it); IpcError with a sentence where there is none."""
        ...

    def started(self) -> None:
        """The core runs and the control channel answers."""
        ...

    def close(self) -> None:
        """Take the face down (before the core stops)."""
        ...


def make_core(settings: Settings, *, demo: bool = False) -> Core:
    """The app's core; the demo's keeps its sign-ins and secrets in memory, never in the
    user's keyring, and says its ready token is the demo's account."""
    if not demo:
        return Core(settings)
    from colabtray.auth.identities import READY_IN_DEMO
    from colabtray.core.notebook_secrets import SERVICE
    from colabtray.demo import memory_secrets

    return Core(
        settings,
        secrets=memory_secrets(),
        notebook_store=memory_secrets(SERVICE),
        ready_how=READY_IN_DEMO,
    )


async def run_core(
    settings: Settings,
    server: ControlServer,
    make_face: Callable[[Core], Face],
    until: asyncio.Event,
    *,
    demo: bool = False,
) -> None:
    """Run the core with its bridge, its face and the control channel until ``until`` is set."""
    hints.set_demo(demo)  # the commands it prints carry --demo
    core = make_core(settings, demo=demo)
    ssh_hosts.follow(core, demo=demo)  # ssh's Host entries and known hosts follow the runtimes
    face: Face | None = None
    try:
        face = make_face(core)
        bridge = bridge_registry(
            core.settings, core.fleet, on_change=core.bridge_changed, asks=core
        )
        core.attach_bridge(bridge)  # core.stop() stops it
        Commands(core).register(server, show=face.show, menu=face.menu)
        await server.start()
        await core.start()
        face.started()
        await until.wait()
    finally:
        if face is not None:
            face.close()
        await core.stop()
        await server.close()
