"""The idle question, shown where the user will see it, answered with one click.

First choice: a desktop notification with "Cancel" (keep it running) and "Disconnect now"
buttons. Where the desktop has no notification service, or one without buttons, a small
always-on-top window near the tray asks the same with a countdown. Either way the tray menu
offers the same two answers while the question stands (the tray reads KeepAlive.pending()).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from colabtray.core.keepalive import Choice, IdleQuestion
from colabtray.system.notifications import Notifier
from colabtray.text import printable

log = logging.getLogger(__name__)

KEEP_LABEL = "Cancel"  # cancels the disconnect: the runtime keeps running
DISCONNECT_LABEL = "Disconnect now"


class IdlePromptWindow(QWidget):
    """A small frameless, always-on-top window: the question, a countdown, two buttons."""

    def __init__(
        self,
        question: IdleQuestion,
        answer: Callable[[Choice], None],
        anchor: QPoint | None = None,
    ) -> None:
        super().__init__(
            None,
            Qt.WindowType.Tool
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.FramelessWindowHint,
        )
        self.setObjectName("idlePrompt")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("colabtray")
        self._answer = answer
        self._left = max(1, round(question.seconds))

        title = QLabel(f"<b>{html.escape(printable(question.title))}</b>")
        title.setWordWrap(True)
        body = QLabel(html.escape(printable(question.body)))
        body.setWordWrap(True)
        self.countdown = QLabel()
        self.countdown.setObjectName("countdown")
        self.keep_button = QPushButton(KEEP_LABEL)
        self.keep_button.setDefault(True)
        self.disconnect_button = QPushButton(DISCONNECT_LABEL)
        self.keep_button.clicked.connect(lambda: self._choose(Choice.KEEP))
        self.disconnect_button.clicked.connect(lambda: self._choose(Choice.DISCONNECT))

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.disconnect_button)
        buttons.addWidget(self.keep_button)
        layout = QVBoxLayout(self)
        for widget in (title, body, self.countdown):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self.setFixedWidth(380)

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._show_countdown()
        self._timer.start()
        self.adjustSize()
        self._place(anchor)

    def _choose(self, choice: Choice) -> None:
        self._timer.stop()
        self._answer(choice)
        self.close()

    def _tick(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._timer.stop()
            self.close()  # KeepAlive's own timeout decides what no answer means
            return
        self._show_countdown()

    def _show_countdown(self) -> None:
        unit = "second" if self._left == 1 else "seconds"
        self.countdown.setText(f"Disconnecting in {self._left} {unit} unless you cancel.")

    def _place(self, anchor: QPoint | None) -> None:
        """Next to the tray icon if we know where it is, else the screen's bottom right."""
        screen = QGuiApplication.screenAt(anchor) if anchor else QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        x = area.right() - self.width() - 16
        y = area.bottom() - self.height() - 16
        if anchor is not None and anchor.y() < area.center().y():
            y = area.top() + 16  # the panel is at the top
        self.move(x, y)


class IdlePromptPresenter:
    """KeepAlive's PromptPresenter: a notification with buttons, else the window."""

    def __init__(
        self,
        notifier: Notifier,
        anchor: Callable[[], QPoint | None] = lambda: None,
        *,
        window_only: bool = False,  # the "notifications = window" setting
    ) -> None:
        self._notifier = notifier
        self._anchor = anchor
        self._window_only = window_only
        self._notifications: dict[str, str] = {}
        self._windows: dict[str, IdlePromptWindow] = {}
        self._showing: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Future[None]] = set()

    def show(self, question: IdleQuestion, answer: Callable[[Choice], None]) -> None:
        self.withdraw(question.endpoint)
        task = asyncio.ensure_future(self._show(question, answer))
        self._showing[question.endpoint] = task
        task.add_done_callback(lambda _: self._showing.pop(question.endpoint, None))

    async def _show(self, question: IdleQuestion, answer: Callable[[Choice], None]) -> None:
        if not self._window_only and await self._notifier.can_ask():
            identifier = await self._notifier.ask(
                question.title,
                question.body,
                [
                    (KEEP_LABEL, lambda: answer(Choice.KEEP)),
                    (DISCONNECT_LABEL, lambda: answer(Choice.DISCONNECT)),
                ],
            )
            if identifier is not None:
                self._notifications[question.endpoint] = identifier
                return
        log.info("no notification with buttons here; asking in a window")
        window = IdlePromptWindow(question, answer, self._anchor())
        window.destroyed.connect(lambda: self._windows.pop(question.endpoint, None))
        self._windows[question.endpoint] = window
        window.show()
        window.raise_()

    def withdraw(self, endpoint: str) -> None:
        task = self._showing.pop(endpoint, None)
        if task is not None and not task.done():
            task.cancel()
        identifier = self._notifications.pop(endpoint, None)
        if identifier is not None:
            future = asyncio.ensure_future(self._notifier.withdraw(identifier))
            self._background.add(future)
            future.add_done_callback(self._background.discard)
        window = self._windows.pop(endpoint, None)
        if window is not None:
            window.close()

    def window_for(self, endpoint: str) -> IdlePromptWindow | None:
        return self._windows.get(endpoint)
