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
from typing import TYPE_CHECKING

from colabtray.ipc import ControlServer
from colabtray.memory import forget_module_sources

if TYPE_CHECKING:
    from colabtray.core.app import Core
    from colabtray.instance import InstanceLock
    from colabtray.settings import Settings
    from colabtray.ui.app import _StartingIcon
    from colabtray.ui.tray import Tray


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
    tray: Tray | None = None
    core: Core | None = None
    try:
        settings = await asyncio.to_thread(prepare)
        # The client stack and core: imported off the UI thread so the icon stays live.
        await asyncio.to_thread(importlib.import_module, "colabtray.ui.tray")
        from colabtray.bridge.control import start_for as start_bridge
        from colabtray.core.app import Core
        from colabtray.ui.app import mark_started
        from colabtray.ui.idle_prompt import IdlePromptPresenter
        from colabtray.ui.tray import Tray

        secrets = None
        if demo:
            from colabtray.demo import memory_secrets

            secrets = memory_secrets()
        core = Core(settings, secrets=secrets)
        tray = Tray(core, icon=starting.icon, quit=quit_requested.set, demo=demo)
        core.set_presenter(
            IdlePromptPresenter(
                tray.notifier,
                anchor=tray.anchor,
                window_only=settings.notifications == "window",
            )
        )
        tray.show()
        if tray.window is not None:
            mark_started()  # no tray here: the window is the app's face
        server.register("show", lambda _args: {"shown": tray.show_menu()})
        server.register("menu", lambda _args: tray.describe())
        start_bridge(core, server)  # the editor bridge; answers 'url' and 'urls'
        await server.start()
        await core.start()
        forget_module_sources()  # the start-up imports are done
        await quit_requested.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if tray is not None:
            tray.hide()
            tray.notifier.close()
        starting.icon.hide()
        if core is not None:
            await core.stop()
        await server.close()
        starting.menu.deleteLater()
    return 0
