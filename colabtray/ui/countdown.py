"""A question that counts down (keep-alive's idle question), in a window of its own.

Every question is first a desktop notification with its two buttons (:mod:`colabtray.ui.
questions`); where the desktop has no notification service, or one without buttons, one that
counts down is asked in this small always-on-top window near the tray, with the time left.
The tray menu offers the same two answers while the question stands.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from colabtray.core.questions import Question
from colabtray.text import printable


class CountdownWindow(QWidget):
    """A small frameless, always-on-top window: the question, a countdown, two buttons."""

    def __init__(
        self,
        question: Question,
        answer: Callable[[bool], None],
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
        self._countdown = question.countdown or "{} left to answer."
        self._left = max(1, round(question.seconds))

        title = QLabel(f"<b>{html.escape(printable(question.title))}</b>")
        title.setWordWrap(True)
        body = QLabel(html.escape(printable(question.body)))
        body.setWordWrap(True)
        self.countdown = QLabel()
        self.countdown.setObjectName("countdown")
        self.yes_button = QPushButton(question.yes)
        self.yes_button.setDefault(True)
        self.no_button = QPushButton(question.no)
        self.yes_button.clicked.connect(lambda: self._choose(True))
        self.no_button.clicked.connect(lambda: self._choose(False))

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.no_button)
        buttons.addWidget(self.yes_button)
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

    def _choose(self, yes: bool) -> None:
        self._timer.stop()
        self._answer(yes)
        self.close()

    def _tick(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._timer.stop()
            self.close()  # the question's own timeout decides what no answer means
            return
        self._show_countdown()

    def _show_countdown(self) -> None:
        unit = "second" if self._left == 1 else "seconds"
        self.countdown.setText(self._countdown.format(f"{self._left} {unit}"))

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
