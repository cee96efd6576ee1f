"""The tray app once its icon is up: build the core and the tray, serve the control channel
and the editor bridge, run until Quit or SIGINT/SIGTERM, then stop everything in order.

Runs on the qasync loop (:mod:`colabtray.ui.app` puts the icon up before that loop exists).
"""

from __future__ import annotations

import asyncio
import importlib
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from colabtray.system.ipc import ControlServer

if TYPE_CHECKING:
    from colabtray.core.app import Core
    from colabtray.settings import Settings
    from colabtray.system.instance import InstanceLock
    from colabtray.ui.app import _StartingIcon


async def run_tray(
    prepare: Callable[[], Settings], lock: InstanceLock, starting: _StartingIcon, *, demo: bool
) -> int:
    loop = asyncio.get_running_loop()
    # qasync's default executor starts ten QThreads at once; two threads, made on demand,
    # are plenty for the keyring, the browser and the start-up imports.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2, thread_name_prefix="colabtray"))
    quit_requested = asyncio.Event()
    starting.on_quit = quit_requested.set
    if starting.quit_requested:
        quit_requested.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, quit_requested.set)

    server = ControlServer(lock)
    try:
        settings = await asyncio.to_thread(prepare)
        # The client stack and core: imported off the UI thread so the icon stays live.
        await asyncio.to_thread(importlib.import_module, "colabtray.ui.tray")
        from colabtray.runner import run_core

        await run_core(
            settings,
            server,
            lambda core: _TrayFace(core, starting, quit_requested, demo=demo),
            quit_requested,
            demo=demo,
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        starting.icon.hide()
        await server.close()  # already closed unless starting failed; releases the lock
        starting.menu.deleteLater()
    return 0


class _TrayFace:
    """The tray as the core's face: the icon and menu, the questions, notifications."""

    def __init__(
        self, core: Core, starting: _StartingIcon, quit_requested: asyncio.Event, *, demo: bool
    ) -> None:
        from colabtray.ui.questions import TrayAsker
        from colabtray.ui.tray import Tray

        self.tray = Tray(core, icon=starting.icon, quit=quit_requested.set, demo=demo)
        core.set_asker(
            TrayAsker(
                self.tray.notifier,
                anchor=self.tray.anchor,
                window_only=core.settings.notifications == "window",
            )
        )
        self.tray.show()

    def show(self) -> dict[str, Any]:
        return {"shown": self.tray.show_menu()}

    def menu(self) -> dict[str, Any]:
        return dict(self.tray.describe())

    def started(self) -> None:
        from colabtray.ui.app import mark_started

        if self.tray.window is not None:
            mark_started()  # no tray here: the window is the app's face

    def close(self) -> None:
        self.tray.hide()
        self.tray.notifier.close()
