"""The Settings window: shows what is in effect, saves only what changed into settings.toml,
switches the real login entry, and says why when it cannot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDialogButtonBox, QFormLayout
from pytestqt.qtbot import QtBot

from colabtray.settings import load_settings
from colabtray.system.autostart import XdgAutostart
from colabtray.ui.settings_window import SettingsWindow, show_settings_window
from colabtray.ui.tray import Tray
from tests.ui.conftest import offline_core
from tests.unit.test_autostart import validate


@pytest.fixture
def config_dir(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared one (tests/fixtures/environment.py), made, and XDG autostart in tmp_path."""
    config_dir.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return config_dir


@pytest.fixture
def login(tmp_path: Path) -> XdgAutostart:
    return XdgAutostart(command=["/usr/bin/colabtray"], config_home=tmp_path / "xdg")


def window(
    qtbot: QtBot, login: XdgAutostart, environ: dict[str, str] | None = None
) -> SettingsWindow:
    shown = SettingsWindow(load_settings(), autostart=login, environ=environ or {})
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitExposed(shown)
    return shown


def press(shown: SettingsWindow, which: QDialogButtonBox.StandardButton) -> None:
    shown.buttons.button(which).click()


def test_it_shows_the_settings_in_effect(
    qtbot: QtBot, config_dir: Path, login: XdgAutostart
) -> None:
    (config_dir / "settings.toml").write_text(
        'idle_threshold = 1800\nidle_prompt_timeout = 90\nnotifications = "window"\n'
    )
    login.set_enabled(True)
    shown = window(qtbot, login)
    assert shown.start_at_login.isChecked()
    assert shown.idle_threshold.value() == 30
    assert shown.idle_extension.value() == 30  # the default, 1800 s
    assert shown.idle_prompt_timeout.value() == 90
    assert shown.bridge_port.text() == "Automatic"
    assert shown.notifications.currentData() == "window"
    assert shown.changes() == {}
    assert not shown.problems.isVisible()
    assert str(config_dir / "settings.toml") in shown.where.text()


def test_saving_writes_what_changed_and_switches_the_login_entry(
    qtbot: QtBot, config_dir: Path, login: XdgAutostart
) -> None:
    path = config_dir / "settings.toml"
    path.write_text("# mine\npoll_interval = 30\n")
    shown = window(qtbot, login)
    shown.idle_threshold.setValue(45)
    shown.bridge_port.setValue(8765)
    shown.notifications.setCurrentIndex(shown.notifications.findData("window"))
    shown.start_at_login.setChecked(True)
    with qtbot.waitSignal(shown.saved, timeout=5000) as saved:
        press(shown, QDialogButtonBox.StandardButton.Save)
    assert saved.args == [{"idle_threshold": 2700, "bridge_port": 8765, "notifications": "window"}]
    assert not shown.isVisible()
    assert path.read_text() == (
        "# mine\npoll_interval = 30\n"
        'idle_threshold = 2700\nbridge_port = 8765\nnotifications = "window"\n'
    )
    settings = load_settings()
    assert (settings.idle_threshold, settings.bridge_port, settings.notifications) == (
        2700,
        8765,
        "window",
    )
    assert login.enabled
    validate(login.path)

    again = window(qtbot, login)
    again.start_at_login.setChecked(False)
    with qtbot.waitSignal(again.saved, timeout=5000):
        press(again, QDialogButtonBox.StandardButton.Save)
    assert not login.path.exists()
    assert path.read_text().count("idle_threshold") == 1


def test_cancel_writes_nothing(qtbot: QtBot, config_dir: Path, login: XdgAutostart) -> None:
    shown = window(qtbot, login)
    shown.idle_threshold.setValue(5)
    shown.start_at_login.setChecked(True)
    press(shown, QDialogButtonBox.StandardButton.Cancel)
    assert not (config_dir / "settings.toml").exists()
    assert not login.path.exists()


def test_a_setting_the_environment_decides_is_shown_but_not_editable(
    qtbot: QtBot, config_dir: Path, login: XdgAutostart, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLABTRAY_IDLE_THRESHOLD", "600")
    shown = window(qtbot, login, environ={"COLABTRAY_IDLE_THRESHOLD": "600"})
    assert shown.idle_threshold.value() == 10
    assert not shown.idle_threshold.isEnabled()
    assert "COLABTRAY_IDLE_THRESHOLD" in shown.idle_threshold.toolTip()
    shown.idle_extension.setValue(5)
    press(shown, QDialogButtonBox.StandardButton.Save)
    assert "idle_threshold" not in (config_dir / "settings.toml").read_text()


def test_a_malformed_file_is_shown_and_left_alone(
    qtbot: QtBot, config_dir: Path, login: XdgAutostart
) -> None:
    path = config_dir / "settings.toml"
    path.write_text("idle_threshold = = 5\n")
    shown = window(qtbot, login)
    assert shown.problems.isVisible()
    assert f"The settings file {path} is not valid TOML at line 1" in shown.problems.text()
    shown.idle_threshold.setValue(20)
    press(shown, QDialogButtonBox.StandardButton.Save)
    assert shown.isVisible()
    assert shown.status.text().endswith("fix or remove it before saving settings.")
    assert path.read_text() == "idle_threshold = = 5\n"


def test_a_login_entry_that_cannot_be_written_is_one_sentence(
    qtbot: QtBot, config_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("")
    blocked = XdgAutostart(command=["/usr/bin/colabtray"], config_home=tmp_path / "blocked")
    shown = window(qtbot, blocked)
    shown.start_at_login.setChecked(True)
    press(shown, QDialogButtonBox.StandardButton.Save)
    qtbot.waitUntil(lambda: not shown.switching_login, timeout=5000)
    assert shown.isVisible()
    assert shown.status.text().startswith("Could not add colabtray to the programs started")
    assert shown.buttons.isEnabled()  # free to try again


class SlowLoginItem(XdgAutostart):
    """A login item whose switch takes as long as the test says (as PowerShell may)."""

    def __init__(self, config_home: Path) -> None:
        super().__init__(command=["/usr/bin/colabtray"], config_home=config_home)
        self.release = threading.Event()

    def _write(self) -> None:
        assert self.release.wait(10)
        super()._write()


def test_a_slow_login_item_switch_leaves_the_window_live(
    qtbot: QtBot, config_dir: Path, tmp_path: Path
) -> None:
    slow = SlowLoginItem(tmp_path / "xdg")
    shown = window(qtbot, slow)
    shown.start_at_login.setChecked(True)
    press(shown, QDialogButtonBox.StandardButton.Save)
    # The Qt thread is free while the switch waits: the window paints its state and takes
    # events; Cancel does not drop the answer on the floor.
    assert shown.status.text() == "Updating the programs started at login…"
    assert not shown.buttons.isEnabled()
    ticks: list[int] = []
    QTimer.singleShot(10, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: ticks == [1], timeout=2000)
    shown.reject()
    assert shown.isVisible() and not slow.enabled
    with qtbot.waitSignal(shown.saved, timeout=5000):
        slow.release.set()
    assert slow.enabled and not shown.isVisible()


def test_an_open_window_is_raised_not_opened_twice(qtbot: QtBot, config_dir: Path) -> None:
    seen: list[dict[str, object]] = []
    first = show_settings_window(load_settings(), on_saved=seen.append)
    qtbot.waitExposed(first)
    assert show_settings_window(load_settings(), shown=first) is first
    first.idle_prompt_timeout.setValue(120)
    qtbot.keyClick(first.buttons.button(QDialogButtonBox.StandardButton.Save), Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: seen == [{"idle_prompt_timeout": 120}], timeout=5000)
    assert "idle_prompt_timeout = 120" in (config_dir / "settings.toml").read_text()
    second = show_settings_window(load_settings(), shown=first)
    qtbot.addWidget(second)
    assert second is not first
    assert second.idle_prompt_timeout.value() == 120


def test_the_tray_keeps_its_one_settings_window_while_open(
    qtbot: QtBot, config_dir: Path, tmp_path: Path, make_tray: Callable[..., Tray]
) -> None:
    tray = make_tray(offline_core(tmp_path))
    tray.settings()
    first = tray.settings_window
    assert first is not None
    qtbot.waitExposed(first)
    tray.settings()
    assert tray.settings_window is first
    first.reject()  # Cancel: the window deletes itself and the tray forgets it
    assert tray.settings_window is None
    tray.settings()
    second = tray.settings_window
    assert second is not None
    assert second is not first
    qtbot.addWidget(second)


def test_the_grace_of_an_unused_runtime_sits_beside_the_idle_time(
    qtbot: QtBot, config_dir: Path, login: XdgAutostart
) -> None:
    path = config_dir / "settings.toml"
    shown = window(qtbot, login)
    assert shown.idle_grace.value() == 15  # the default, 900 s
    assert shown.idle_grace.suffix() == " min"
    form = shown.idle_threshold.parentWidget().layout()
    assert isinstance(form, QFormLayout)
    row_of = {
        name: form.getWidgetPosition(box)[0]
        for name, box in (("threshold", shown.idle_threshold), ("grace", shown.idle_grace))
    }
    assert row_of["grace"] == row_of["threshold"] + 1
    shown.idle_grace.setValue(5)
    with qtbot.waitSignal(shown.saved, timeout=5000) as saved:
        press(shown, QDialogButtonBox.StandardButton.Save)
    assert saved.args == [{"idle_grace": 300}]
    assert "idle_grace = 300" in path.read_text().splitlines()
    assert load_settings().idle_grace == 300
