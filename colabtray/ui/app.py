"""The tray app: a QApplication on the qasync loop of :mod:`colabtray.ui.eventloop`.

Starting fast matters more than anything else here. The icon goes up first, with only Qt
imported, and Qt alone runs until the tray host has embedded it. Then come asyncio and the
qasync loop, then the settings, the client stack (half a second of imports) and the core,
in a worker thread so that the icon stays live, and the first network call after that.
Until then the icon says "starting" and its menu offers Quit.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from colabtray.system.memory import scan_imports_lightly
from colabtray.ui import icons

if TYPE_CHECKING:
    from colabtray.settings import Settings
    from colabtray.system.instance import InstanceLock

log = logging.getLogger(__name__)

# Diagnostics for the benchmark and the end-to-end tests: print a line on stderr once the
# icon is in the tray (or the fallback window is up).
STARTUP_MARK_ENV = "COLABTRAY_STARTUP_MARK"
STARTUP_MARK = "colabtray: tray icon shown"
EMBED_WAIT_MS = 2000  # how long to let the tray host embed the icon before going on
# Started at login, how long to wait for the panel's tray before showing the window instead.
TRAY_WAIT_MS = int(os.environ.get("COLABTRAY_TRAY_WAIT_MS", "60000"))


class _StartingIcon:
    """The icon put up before anything else, with a Quit that works from the first moment."""

    def __init__(self) -> None:
        self.icon = QSystemTrayIcon(icons.app_icon())
        self.icon.setToolTip("colabtray: starting…")
        self.menu = QMenu()
        self.menu.addAction("Starting…").setEnabled(False)
        self.menu.addAction("Quit", self.quit)
        self.icon.setContextMenu(self.menu)
        self.quit_requested = False
        self.on_quit: Callable[[], None] | None = None

    def quit(self) -> None:
        self.quit_requested = True
        if self.on_quit is not None:
            self.on_quit()

    def show_and_wait(self) -> None:
        """Show the icon and let Qt alone run until the tray host embedded it (bounded)."""
        self.icon.show()
        waiting = QEventLoop()
        clock = QElapsedTimer()
        clock.start()
        poll = QTimer()  # Qt has no signal for "embedded"; a few milliseconds' polling

        def check() -> None:
            if self.icon.geometry().width() > 0 or clock.elapsed() > EMBED_WAIT_MS:
                poll.stop()
                waiting.quit()

        poll.timeout.connect(check)
        poll.start(5)
        waiting.exec()
        if self.icon.geometry().width() > 0:
            mark_started()


def mark_started() -> None:
    if os.environ.get(STARTUP_MARK_ENV):
        print(STARTUP_MARK, file=sys.stderr, flush=True)


def wait_for_tray(milliseconds: int) -> bool:
    """Let Qt run until a system tray is there (the panel of a session that is still
    starting), at most ``milliseconds``; whether one is."""
    waiting = QEventLoop()
    clock = QElapsedTimer()
    clock.start()
    poll = QTimer()

    def check() -> None:
        if QSystemTrayIcon.isSystemTrayAvailable() or clock.elapsed() > milliseconds:
            poll.stop()
            waiting.quit()

    poll.timeout.connect(check)
    poll.start(250)
    waiting.exec()
    return QSystemTrayIcon.isSystemTrayAvailable()


def run(
    prepare: Callable[[], Settings],
    lock: InstanceLock,
    *,
    demo: bool = False,
    at_login: bool = False,
) -> int:
    """Run the tray until Quit or SIGINT/SIGTERM; returns the exit status. Started at login,
    it waits for the panel's tray first (TRAY_WAIT_MS) and only then falls back to a window."""
    scan_imports_lightly()  # before the client stack is imported, after Qt
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("colabtray")
    app.setApplicationDisplayName("colabtray")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(icons.app_icon())
    starting = _StartingIcon()
    if QSystemTrayIcon.isSystemTrayAvailable() or (at_login and wait_for_tray(TRAY_WAIT_MS)):
        starting.show_and_wait()

    from colabtray.ui import eventloop  # asyncio and qasync: once the icon is up
    from colabtray.ui.lifecycle import run_tray

    return eventloop.run(app, run_tray(prepare, lock, starting, demo=demo))
