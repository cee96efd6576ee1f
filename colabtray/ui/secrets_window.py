"""The "Secrets…" window: the names notebooks may ask for, adding one, removing one, and the
answers given to runtimes that asked (a Deny is reversed here, or an Allow taken back). A value
is typed once (hidden) and never shown again; it goes straight to the keyring."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from colabtray.core.app import Core
from colabtray.core.notebook_secrets import check_name
from colabtray.errors import UserError
from colabtray.text import printable
from colabtray.ui import icons


class SecretsWindow(QWidget):
    def __init__(self, core: Core) -> None:
        super().__init__()
        self._core = core
        self.setObjectName("secrets")
        self.setWindowTitle("colabtray: notebook secrets")
        self.setWindowIcon(icons.app_icon())
        self.names = QListWidget()
        self.names.setObjectName("names")
        self.name = QLineEdit()
        self.name.setObjectName("name")
        self.name.setPlaceholderText("NAME, as in userdata.get('NAME')")
        self.value = QLineEdit()
        self.value.setObjectName("value")
        self.value.setEchoMode(QLineEdit.EchoMode.Password)
        self.value.setPlaceholderText("value (not shown again)")
        self.no_ask = QCheckBox("Any runtime may read it without asking")
        self.no_ask.setObjectName("noAsk")
        self.add = QPushButton("Add")
        self.add.setObjectName("add")
        self.remove = QPushButton("Remove")
        self.remove.setObjectName("remove")
        self.answers = QListWidget()
        self.answers.setObjectName("answers")
        self.allow = QPushButton("Allow")
        self.allow.setObjectName("allow")
        self.deny = QPushButton("Deny")
        self.deny.setObjectName("deny")
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Notebooks read these with google.colab.userdata.get(NAME)."))
        layout.addWidget(self.names)
        layout.addWidget(self.remove)
        entry = QHBoxLayout()
        entry.addWidget(self.name)
        entry.addWidget(self.value)
        entry.addWidget(self.add)
        layout.addLayout(entry)
        layout.addWidget(self.no_ask)
        layout.addWidget(QLabel("Answers given to runtimes (they hold while the runtime lives):"))
        layout.addWidget(self.answers)
        answer = QHBoxLayout()
        answer.addWidget(self.allow)
        answer.addWidget(self.deny)
        layout.addLayout(answer)
        layout.addWidget(self.status)
        self.add.clicked.connect(self._add)
        self.remove.clicked.connect(self._remove)
        self.allow.clicked.connect(lambda: self._answer(True))
        self.deny.clicked.connect(lambda: self._answer(False))
        self.refresh()

    def refresh(self) -> None:
        self.names.clear()
        for name, no_ask in sorted(self._core.notebook_secrets.names().items()):
            item = QListWidgetItem(f"{name}  (no question asked)" if no_ask else name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.names.addItem(item)
        self.answers.clear()
        for runtime, known in self._core.fleet.runtimes():
            endpoint = known.endpoint
            for name, allowed in sorted(self._core.secret_gate.decisions(endpoint).items()):
                verdict = "allowed" if allowed else "denied"
                item = QListWidgetItem(printable(f"{name} for {runtime}: {verdict}"))
                item.setData(Qt.ItemDataRole.UserRole, (endpoint, name))
                self.answers.addItem(item)

    def _add(self) -> None:
        name, value = self.name.text().strip(), self.value.text()
        try:
            check_name(name)
        except UserError as exc:
            self.status.setText(exc.message)
            return
        self._busy(True)
        task = self._core.spawn(
            self._core.notebook_secrets.set(name, value, no_ask=self.no_ask.isChecked()),
            on_error=self._failed,
        )
        task.add_done_callback(lambda t: self._added(name) if _succeeded(t) else None)

    def _added(self, name: str) -> None:
        self._busy(False)
        self.name.clear()
        self.value.clear()
        self.no_ask.setChecked(False)
        warning = self._core.notebook_secrets.keyring_warning
        self.status.setText(f"Stored {name}." + (f" {warning}" if warning else ""))
        self.refresh()

    def _remove(self) -> None:
        item = self.names.currentItem()
        if item is None:
            self.status.setText("Choose a secret to remove.")
            return
        name = str(item.data(Qt.ItemDataRole.UserRole))
        self._busy(True)
        task = self._core.spawn(self._core.notebook_secrets.remove(name), on_error=self._failed)
        task.add_done_callback(lambda t: self._removed(name) if _succeeded(t) else None)

    def _removed(self, name: str) -> None:
        self._busy(False)
        self.status.setText(f"Removed {name}.")
        self.refresh()

    def _answer(self, allow: bool) -> None:
        item = self.answers.currentItem()
        if item is None:
            self.status.setText("Choose an answer to change.")
            return
        endpoint, name = item.data(Qt.ItemDataRole.UserRole)
        if self._core.secret_gate.decide(endpoint, name, allow):
            runtime = self._core.fleet.name_of(endpoint)
            verdict = "may read" if allow else "may not read"
            self.status.setText(printable(f"{runtime} {verdict} {name} now."))
        self.refresh()

    def _failed(self, sentence: str) -> None:
        self._busy(False)
        self.status.setText(printable(sentence))

    def _busy(self, busy: bool) -> None:
        for widget in (self.add, self.remove):
            widget.setEnabled(not busy)


def _succeeded(task: asyncio.Task[object]) -> bool:
    return not task.cancelled() and task.exception() is None
