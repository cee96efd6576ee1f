"""The tray's "Open terminal": a stand-in terminal emulator (first in ``$TERMINAL``) records
the command line it was started with; with no terminal at all, the command is copied and a
message says so."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from colabtray.colab.models import GPU
from tests.fixtures.terminal import stand_in_terminal
from tests.fixtures.waiting import wait_for
from tests.ui.conftest import action, offline_core, runtime, submenu, with_runtimes

T4 = runtime("gpu-t4-s-aaa", GPU, "T4", high_mem=True)


def test_open_terminal_starts_the_terminal_with_colabtray_shell(
    tmp_path: Path, make_tray, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, record = stand_in_terminal(tmp_path / "bin", "my-terminal")
    monkeypatch.setenv("TERMINAL", str(script))
    core = offline_core(tmp_path)
    with_runtimes(core, ("T4 GPU", T4))
    tray = make_tray(core)
    tray.menu.rebuild()
    action(submenu(tray.menu.menu, f"runtime:{T4.endpoint}"), "open-terminal").trigger()
    wait_for(record.exists, 15)
    assert record.read_text().splitlines() == [
        "-e",
        sys.executable,
        "-m",
        "colabtray",
        "shell",
        "T4 GPU",
    ]
    assert not tray._messages


def test_with_no_terminal_the_command_is_copied(
    tmp_path: Path, make_tray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TERMINAL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    core = offline_core(tmp_path)
    with_runtimes(core, ("T4 GPU", T4))
    tray = make_tray(core)
    tray.menu.rebuild()
    action(submenu(tray.menu.menu, f"runtime:{T4.endpoint}"), "open-terminal").trigger()
    command = f"{sys.executable} -m colabtray shell 'T4 GPU'"
    assert QGuiApplication.clipboard().text() == command
    assert command in tray._messages["No terminal found"].text()
