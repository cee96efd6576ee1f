"""The tray app: a QApplication on the qasync loop of :mod:`colabtray.ui.eventloop`.

Starting fast matters more than anything else here: the icon is put up first, with only Qt
imported, and the tray host is given time to embed it; the settings, the client stack (half
a second of imports) and the core come after, in a worker thread, and the first network call
after that. Until then the icon says "starting" and its menu offers Quit.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from colabtray.ui import eventloop, icons

if TYPE_CHECKING:
    from colabtray.ipc import ControlServer
    from colabtray.settings import Settings

log = logging.getLogger(__name__)

# Diagnostics for the benchmark and the end-to-end tests: print a line on stderr once the
# icon is in the tray (or the fallback window is up).
STARTUP_MARK_ENV = "COLABTRAY_STARTUP_MARK"
STARTUP_MARK = "colabtray: tray icon shown"
EMBED_WAIT = 2.0  # seconds to let the tray host embed the icon before the heavy imports


def run(prepare: Callable[[], Settings], server: ControlServer, *, demo: bool = False) -> int:
    """Run the tray until Quit or SIGINT/SIGTERM; returns the exit status."""
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("colabtray")
    app.setApplicationDisplayName("colabtray")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(icons.app_icon())
    return eventloop.run(app, _main(prepare, server, demo=demo))


async def _main(prepare: Callable[[], Settings], server: ControlServer, *, demo: bool) -> int:
    loop = asyncio.get_running_loop()
    # qasync's default executor starts ten QThreads at once; two threads, made on demand,
    # are plenty for the keyring, the browser and the start-up imports.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2, thread_name_prefix="colabtray"))
    quit_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, quit_requested.set)

    icon, starting_menu = _starting_icon(quit_requested.set)
    tray = None
    core = None
    try:
        if QSystemTrayIcon.isSystemTrayAvailable():
            icon.show()
            await _until_embedded(icon)
        settings = await asyncio.to_thread(prepare)
        # The client stack and core: imported off the UI thread so the icon stays live.
        await asyncio.to_thread(importlib.import_module, "colabtray.ui.tray")
        from colabtray.core.app import Core
        from colabtray.ui.idle_prompt import IdlePromptPresenter
        from colabtray.ui.tray import Tray

        secrets = None
        if demo:
            from colabtray.demo import memory_secrets

            secrets = memory_secrets()
        core = Core(settings, secrets=secrets)
        tray = Tray(core, icon=icon, quit=quit_requested.set, demo=demo)
        core.set_presenter(
            IdlePromptPresenter(
                tray.notifier,
                anchor=tray.anchor,
                window_only=settings.notifications == "window",
            )
        )
        tray.show()
        if not icon.isVisible() and os.environ.get(STARTUP_MARK_ENV):
            print(STARTUP_MARK, file=sys.stderr, flush=True)  # the fallback window
        server.register("show", lambda _args: {"shown": tray.show_menu()})
        server.register("menu", lambda _args: tray.describe())
        await server.start()
        await core.start()
        await quit_requested.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if tray is not None:
            tray.hide()
            tray.notifier.close()
        icon.hide()
        if core is not None:
            await core.stop()
        await server.close()
        starting_menu.deleteLater()
    return 0


def _starting_icon(quit: Callable[[], None]) -> tuple[QSystemTrayIcon, QMenu]:
    icon = QSystemTrayIcon(icons.app_icon())
    icon.setToolTip("colabtray: starting…")
    menu = QMenu()
    menu.addAction("Starting…").setEnabled(False)
    menu.addAction("Quit", quit)
    icon.setContextMenu(menu)
    return icon, menu


async def _until_embedded(icon: QSystemTrayIcon) -> None:
    """Let Qt run until the tray host has embedded the icon (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EMBED_WAIT
    # Qt has no signal for this; a few milliseconds' polling, at start only.
    while icon.geometry().width() <= 0 and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    if icon.geometry().width() > 0 and os.environ.get(STARTUP_MARK_ENV):
        print(STARTUP_MARK, file=sys.stderr, flush=True)
