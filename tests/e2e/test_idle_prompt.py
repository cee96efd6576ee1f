"""The idle prompt for real: a notification on a real daemon (dunst) whose buttons are
pressed from its menu, or, with no notification service, the window, clicked with QTest.

Everything runs on the app's own qasync loop over a QApplication, against the emulator,
whose runtimes are reclaimed after --idle-timeout seconds without a keep-alive ping.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from colabtray.auth.identities import ReadyToken
from colabtray.colab.client import ColabClient
from colabtray.core.keepalive import KeepAlive
from colabtray.core.naming import RuntimeNames
from colabtray.core.questions import Questions
from colabtray.core.registry import RuntimeRegistry, RuntimeRemoved
from colabtray.system.notifications import Notifier
from colabtray.ui.eventloop import run
from colabtray.ui.questions import TrayAsker
from tests.fixtures.colab import settings_for
from tests.fixtures.desktop import Dunst
from tests.fixtures.waiting import hold, until

IDLE_TIMEOUT = 3.0


def scenario(emulator_factory, tmp_path: Path, body, prompt_seconds: float = 20.0) -> None:
    """Run ``body(emulator, registry, presenter, endpoint)`` with keep-alive running."""
    emulator = emulator_factory("--idle-timeout", str(IDLE_TIMEOUT))
    settings = settings_for(
        emulator,
        tmp_path,
        keepalive_interval=0.5,
        idle_threshold=1.0,
        idle_extension=30.0,
        idle_prompt_timeout=prompt_seconds,
    )

    async def main() -> None:
        async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
            registry = RuntimeRegistry(client, RuntimeNames(tmp_path / "names.json"))
            notifier = Notifier()
            presenter = TrayAsker(notifier)  # as the tray asks every question
            keepalive = KeepAlive(settings, registry, Questions(presenter))
            _, runtime = await registry.create("GPU", "T4")
            task = asyncio.create_task(keepalive.run())
            try:
                await body(emulator, registry, presenter, keepalive, runtime.endpoint)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                notifier.close()

    run(QApplication.instance(), main())


def live(emulator) -> set[str]:
    return {r["endpoint"] for r in emulator.state()["runtimes"]}


def test_cancel_on_a_real_notification_keeps_the_runtime(
    qapp, dunst: Dunst, emulator_factory, tmp_path
):
    async def body(emulator, registry, presenter, keepalive, endpoint):
        await until(lambda: dunst.displayed() == 1, 15)
        dunst.press("Cancel")
        await until(dunst.choices, 10)
        choices = dunst.choices()
        assert "#Cancel ('T4 GPU' is idle and will be disconnected)" in choices
        assert "#Disconnect now" in choices
        await until(lambda: not keepalive.pending(), 5)
        # (dunst leaves a notification up after an action chosen from its menu, and the
        # notification library forgets an answered one: what closes it is the daemon's.)
        await hold(3 * IDLE_TIMEOUT, lambda: endpoint in live(emulator))

    scenario(emulator_factory, tmp_path, body)


def test_disconnect_now_on_a_real_notification(qapp, dunst: Dunst, emulator_factory, tmp_path):
    async def body(emulator, registry, presenter, keepalive, endpoint):
        await until(lambda: dunst.displayed() == 1, 15)
        dunst.press("Disconnect now")
        await until(lambda: endpoint not in live(emulator), 5)
        await until(lambda: endpoint not in registry.state.runtimes, 5)

    scenario(emulator_factory, tmp_path, body)


def test_no_answer_lets_it_go_with_one_notice(qapp, dunst: Dunst, emulator_factory, tmp_path):
    async def body(emulator, registry, presenter, keepalive, endpoint):
        removed: list[RuntimeRemoved] = []
        registry.subscribe(lambda e: removed.append(e) if isinstance(e, RuntimeRemoved) else None)
        await until(lambda: dunst.displayed() == 1, 15)
        await until(lambda: endpoint not in live(emulator), 5 * IDLE_TIMEOUT)
        await until(lambda: removed, 5)
        assert [(e.endpoint, e.by_user) for e in removed] == [(endpoint, False)]
        assert dunst.displayed() == 0  # withdrawn when the prompt window ended

    scenario(emulator_factory, tmp_path, body, prompt_seconds=2.0)


def test_without_a_notification_service_a_window_asks(
    qapp, bus_without_notifications, emulator_factory, tmp_path
):
    async def body(emulator, registry, presenter, keepalive, endpoint):
        key = f"idle:{endpoint}"
        await until(lambda: presenter.windows.get(key) is not None, 15)
        window = presenter.windows[key]
        await until(window.isVisible, 5)
        assert window.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
        first = window.countdown.text()
        assert first.startswith("Disconnecting in ")
        await until(lambda: window.countdown.text() != first, 3)  # it counts down
        assert window.yes_button.text() == "Cancel"
        QTest.mouseClick(window.yes_button, Qt.MouseButton.LeftButton)
        await until(lambda: not keepalive.pending(), 5)
        await until(lambda: key not in presenter.windows, 5)
        await hold(3 * IDLE_TIMEOUT, lambda: endpoint in live(emulator))

    scenario(emulator_factory, tmp_path, body)
