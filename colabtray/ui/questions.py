"""A yes-or-no question (a secret, a consent page, an idle runtime), asked in the tray's way: a
desktop notification with the two buttons, else a small window (one that counts down, for a
question that does); the answer goes back to the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox

from colabtray.core.questions import Question
from colabtray.system.notifications import Notifier
from colabtray.text import printable
from colabtray.ui.countdown import CountdownWindow

log = logging.getLogger(__name__)


class TrayAsker:
    """The core's Asker for the tray."""

    def __init__(
        self,
        notifier: Notifier,
        anchor: Callable[[], QPoint | None] = lambda: None,
        *,
        window_only: bool = False,  # the "notifications = window" setting
    ) -> None:
        self._notifier = notifier
        self._anchor = anchor  # where the tray icon is, for a window that counts down
        self._window_only = window_only
        self._notifications: dict[str, str] = {}
        self.boxes: dict[str, QMessageBox] = {}  # tests answer these
        self.windows: dict[str, CountdownWindow] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def ask(self, question: Question, answer: Callable[[bool], None]) -> None:
        task = asyncio.ensure_future(self._ask(question, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ask(self, question: Question, answer: Callable[[bool], None]) -> None:
        if not self._window_only and await self._notifier.can_ask():
            identifier = await self._notifier.ask(
                question.title,
                question.body,
                [(question.yes, lambda: answer(True)), (question.no, lambda: answer(False))],
            )
            if identifier is not None:
                self._notifications[question.key] = identifier
                return
        log.info("no notification with buttons here; asking in a window")
        if question.seconds:
            window = CountdownWindow(question, answer, self._anchor())
            window.destroyed.connect(lambda: self.windows.pop(question.key, None))
            self.windows[question.key] = window
            window.show()
            window.raise_()
            return
        box = QMessageBox(
            QMessageBox.Icon.Question, printable(question.title), printable(question.body)
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setObjectName("question")
        yes = box.addButton(question.yes, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(question.no, QMessageBox.ButtonRole.RejectRole)
        box.finished.connect(lambda _code: answer(box.clickedButton() is yes))
        box.finished.connect(lambda _code: self.boxes.pop(question.key, None))
        self.boxes[question.key] = box
        box.show()

    def withdraw(self, key: str) -> None:
        identifier = self._notifications.pop(key, None)
        if identifier is not None:
            task = asyncio.ensure_future(self._notifier.withdraw(identifier))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        box = self.boxes.pop(key, None)
        if box is not None:
            with contextlib.suppress(RuntimeError):  # already deleted by Qt
                box.done(0)
        window = self.windows.pop(key, None)
        if window is not None:
            with contextlib.suppress(RuntimeError):
                window.close()
