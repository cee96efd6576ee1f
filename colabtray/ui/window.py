"""A small window with the tray's content, for desktops that have no system tray.

Vanilla GNOME without the AppIndicator extension, and some Wayland sessions, offer no tray:
rather than run invisibly, colabtray shows its state here, the same menu behind a button,
and messages that would have been notifications. Closing the window minimizes it; "Quit" in
the menu quits.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from colabtray.text import printable, printable_lines


class StatusWindow(QWidget):
    def __init__(self, menu: QMenu) -> None:
        super().__init__()
        self.setObjectName("colabtray-window")
        self.setWindowTitle("colabtray")
        self.icon_label = QLabel()
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.hide()
        self.button = QPushButton("colabtray menu")
        self.button.setObjectName("menu-button")
        self.button.setMenu(menu)

        top = QHBoxLayout()
        top.addWidget(self.icon_label, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.button)
        self.setMinimumWidth(360)

    def show_state(self, icon: QIcon, text: str) -> None:
        self.setWindowIcon(icon)
        self.icon_label.setPixmap(icon.pixmap(32, 32))
        self.status.setText(printable_lines(text))

    def show_message(self, title: str, body: str) -> None:
        title, body = html.escape(printable(title)), html.escape(printable(body))
        self.message.setText(f"<b>{title}</b><br>{body}")
        self.message.show()

    def bring_up(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        event.ignore()  # the window is the app's only face here: keep it, out of the way
        self.showMinimized()
