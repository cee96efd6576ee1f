"""The Settings window: start at login, the idle question's timing (and the shorter grace of a
runtime nothing has used yet), the bridge port, how colabtray asks.

It shows the settings in effect, writes only what the user changed into ``settings.toml``
(:func:`colabtray.settings.save_settings`, which keeps the rest of the file), and switches the
login item (:mod:`colabtray.system.autostart`). A setting that an environment variable decides
is shown but disabled, with the variable named: saving it to the file would change nothing.
Problems of the settings file, and errors while saving, are shown as sentences.

The tray opens it with :func:`show_settings_window` (one window at a time); ``saved`` carries
the changed values (field name → value, None for "back to the default").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from colabtray.settings import Settings, environment_overrides, save_settings
from colabtray.settings_file import SettingsFileError
from colabtray.system.autostart import Autostart, AutostartError, for_platform
from colabtray.ui import icons

NOTIFICATION_STYLES = {
    "desktop": "A desktop notification with buttons",
    "window": "A small window that stays on top",
}
MINUTE = 60


class _Field:
    """One editable setting: its widget, how to read and write the widget, and the value shown
    when the window opened (so that only what the user touched is saved)."""

    def __init__(
        self, widget: QWidget, read: Callable[[], Any], write: Callable[[Any], None], value: Any
    ) -> None:
        self.widget, self.read = widget, read
        write(value)
        self.initial = read()


class SettingsWindow(QDialog):
    saved = Signal(dict)
    # From the worker thread that switched the login item: None, or the sentence why not.
    _login_switched = Signal(object)

    def __init__(
        self,
        settings: Settings,
        autostart: Autostart | None = None,
        environ: Mapping[str, str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._autostart = autostart or for_platform()
        self.setObjectName("settings")
        self.setWindowTitle("colabtray settings")
        self.setWindowIcon(icons.app_icon())

        self.problems = QLabel("\n".join(settings.file_problems))
        self.problems.setObjectName("file-problems")
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems.setVisible(bool(settings.file_problems))

        self.start_at_login = QCheckBox("Start colabtray when I log in")
        self.start_at_login.setObjectName("start-at-login")
        self.start_at_login.setChecked(self._autostart.enabled)
        self._login_initial = self.start_at_login.isChecked()
        self._switcher: threading.Thread | None = None
        self._saved_changes: dict[str, Any] = {}  # written, not yet announced by ``saved``
        self._login_switched.connect(self._login_switch_done)

        self.idle_threshold = _minutes("idle-threshold", 1, 24 * 60)
        self.idle_grace = _minutes("idle-grace", 1, 24 * 60)
        self.idle_grace.setToolTip(
            "A runtime with no kernel, editor or terminal in use yet (one made in a browser tab "
            "since closed, say). Never longer than the idle time above."
        )
        self.idle_extension = _minutes("idle-extension", 1, 24 * 60)
        self.idle_prompt_timeout = _spin("idle-prompt-timeout", 5, 3600, " s")
        self.bridge_port = _spin("bridge-port", 0, 65535, "")
        self.bridge_port.setSpecialValueText("Automatic")
        self.notifications = QComboBox()
        self.notifications.setObjectName("notifications")
        for key, label in NOTIFICATION_STYLES.items():
            self.notifications.addItem(label, key)

        def minutes(box: QSpinBox) -> tuple[Callable[[], Any], Callable[[Any], None]]:
            return (lambda: box.value() * MINUTE), (lambda v: box.setValue(round(v / MINUTE)))

        def plain(box: QSpinBox) -> tuple[Callable[[], Any], Callable[[Any], None]]:
            return box.value, (lambda v: box.setValue(int(v)))

        def style() -> tuple[Callable[[], Any], Callable[[Any], None]]:
            combo = self.notifications
            return combo.currentData, (lambda v: combo.setCurrentIndex(combo.findData(v)))

        self._fields = {
            name: _Field(widget, *access, getattr(settings, name))
            for name, widget, access in (
                ("idle_threshold", self.idle_threshold, minutes(self.idle_threshold)),
                ("idle_grace", self.idle_grace, minutes(self.idle_grace)),
                ("idle_extension", self.idle_extension, minutes(self.idle_extension)),
                ("idle_prompt_timeout", self.idle_prompt_timeout, plain(self.idle_prompt_timeout)),
                ("bridge_port", self.bridge_port, plain(self.bridge_port)),
                ("notifications", self.notifications, style()),
            )
        }
        for name, variable in environment_overrides(environ).items():
            if name in self._fields:
                widget = self._fields[name].widget
                widget.setEnabled(False)
                widget.setToolTip(f"Set by the environment variable {variable}.")

        idle = QGroupBox("Idle runtimes")
        form = QFormLayout(idle)
        form.addRow("Ask about a runtime idle for", self.idle_threshold)
        form.addRow("Ask about a new, unused runtime after", self.idle_grace)
        form.addRow("“Cancel” keeps it running for", self.idle_extension)
        form.addRow("Wait for an answer for", self.idle_prompt_timeout)
        form.addRow("Ask with", self.notifications)
        editors = QGroupBox("Editors")
        editors_form = QFormLayout(editors)
        editors_form.addRow("Local port of the first runtime", self.bridge_port)

        self.where = QLabel(f"Saved in {settings.settings_file_path}")
        self.where.setObjectName("settings-path")
        self.where.setWordWrap(True)
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.problems)
        layout.addWidget(self.start_at_login)
        layout.addWidget(idle)
        layout.addWidget(editors)
        layout.addWidget(self.where)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    def changes(self) -> dict[str, Any]:
        """The settings the user changed here (field name → new value)."""
        return {
            name: field.read()
            for name, field in self._fields.items()
            if field.widget.isEnabled() and field.read() != field.initial
        }

    def save(self) -> bool:
        """Write the changes, then switch the login item off the Qt thread (on Windows that
        runs PowerShell); close once both worked, else say why. False if the settings could
        not be written."""
        if self.switching_login:
            return False
        changes = self.changes()
        try:
            if changes:
                save_settings(changes, self._settings.config_dir)
        except SettingsFileError as exc:
            self.status.setText(exc.message)
            return False
        for name, field in self._fields.items():
            field.initial = field.read() if name in changes else field.initial
        self._saved_changes = {**self._saved_changes, **changes}
        wanted = self.start_at_login.isChecked()
        if wanted == self._login_initial:
            self._finish()
            return True
        self.buttons.setEnabled(False)
        self.status.setText("Updating the programs started at login…")
        self._switcher = threading.Thread(
            target=self._switch_login, args=(wanted,), name="colabtray-autostart", daemon=True
        )
        self._switcher.start()
        return True

    @property
    def switching_login(self) -> bool:
        """From Save until the login item's answer is back on the Qt thread."""
        return self._switcher is not None

    def reject(self) -> None:
        if not self.switching_login:  # the answer comes back to this window: stay for it
            super().reject()

    def _switch_login(self, wanted: bool) -> None:
        try:
            self._autostart.set_enabled(wanted)
        except AutostartError as exc:
            self._login_switched.emit(exc.message)
        else:
            self._login_switched.emit(None)

    def _login_switch_done(self, problem: str | None) -> None:
        self._switcher = None
        self.buttons.setEnabled(True)
        if problem is not None:
            self.status.setText(problem)
            return
        self._login_initial = self.start_at_login.isChecked()
        self._finish()

    def _finish(self) -> None:
        changes, self._saved_changes = self._saved_changes, {}
        self.status.clear()
        self.saved.emit(changes)
        self.accept()


def _spin(name: str, low: int, high: int, suffix: str) -> QSpinBox:
    box = QSpinBox()
    box.setObjectName(name)
    box.setRange(low, high)
    box.setSuffix(suffix)
    return box


def _minutes(name: str, low: int, high: int) -> QSpinBox:
    return _spin(name, low, high, " min")


def show_settings_window(
    settings: Settings,
    on_saved: Callable[[dict[str, Any]], None] | None = None,
    *,
    shown: SettingsWindow | None = None,
) -> SettingsWindow:
    """Show the Settings window; ``on_saved(changes)`` after a successful save. ``shown`` is
    the window the caller opened last: raised instead if it is still open. The caller keeps
    the returned window until its ``finished`` signal (it is deleted once closed)."""
    if shown is not None and shown.isVisible():
        shown.raise_()
        shown.activateWindow()
        return shown
    window = SettingsWindow(settings)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    if on_saved is not None:
        window.saved.connect(on_saved)
    window.show()
    window.raise_()
    window.activateWindow()
    return window
