"""Start at login: the freedesktop entry for real (validated, and its Exec runs colabtray);
the macOS and Windows entries by their content."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from colabtray import __version__
from colabtray.system import autostart
from colabtray.system.autostart import (
    AutostartError,
    LaunchAgent,
    StartupShortcut,
    XdgAutostart,
    exec_line,
    launch_command,
)

UNESCAPE = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def desktop_value(text: str, key: str) -> str:
    """The value of ``key`` in a desktop file, with the general string escapes undone."""
    (raw,) = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]
    out, chars = [], iter(raw)
    for c in chars:
        out.append(UNESCAPE[next(chars)] if c == "\\" else c)
    return "".join(out)


def split_exec(value: str) -> list[str]:
    """An Exec value's arguments, read as the Desktop Entry Specification says (no field codes
    are used by colabtray, so ``%%`` is the only one to undo)."""
    args: list[str] = []
    current: list[str] | None = None
    i = 0
    while i < len(value):
        c = value[i]
        if c == " " and current is not None:
            args.append("".join(current))
            current = None
        elif c == '"':
            current = current if current is not None else []
            i += 1
            while value[i] != '"':
                if value[i] == "\\":
                    i += 1
                    assert value[i] in '"`$\\', f"bad escape in {value!r}"
                current.append(value[i])
                i += 1
        elif c != " ":
            current = (current if current is not None else []) + [c]
        i += 1
    if current is not None:
        args.append("".join(current))
    return [a.replace("%%", "%") for a in args]


def validate(path: Path) -> None:
    validator = shutil.which("desktop-file-validate")
    assert validator, "desktop-file-validate is missing (Debian desktop-file-utils; setup.sh)"
    result = subprocess.run(
        [validator, str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_the_linux_entry_is_valid_and_its_exec_starts_this_colabtray(config_home: Path) -> None:
    entry = XdgAutostart()
    assert entry.path == config_home / "autostart" / "colabtray.desktop"
    assert not entry.enabled
    entry.set_enabled(True)
    assert entry.enabled
    validate(entry.path)

    text = entry.path.read_text()
    command = split_exec(desktop_value(text, "Exec"))
    assert command == [*launch_command(), "--at-login"]
    assert desktop_value(text, "TryExec") == command[0]
    result = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"colabtray {__version__}")

    entry.set_enabled(True)  # again: same file
    assert entry.path.read_text() == text
    entry.set_enabled(False)
    assert not entry.path.exists() and not entry.enabled
    entry.set_enabled(False)  # again: fine
    assert os.listdir(entry.path.parent) == []


def test_exec_quoting_survives_any_path(tmp_path: Path) -> None:
    awkward = [
        str(tmp_path / "my apps" / 'co"lab$tray`50%\\x'),
        "--flag=it's (quoted) & <odd>; #1 ~ *?|",
        "",
        "plain%s",
    ]
    entry = XdgAutostart(command=awkward, config_home=tmp_path / "config")
    entry.set_enabled(True)
    validate(entry.path)
    text = entry.path.read_text()
    assert split_exec(desktop_value(text, "Exec")) == awkward
    assert exec_line(["/usr/bin/colabtray"]) == "/usr/bin/colabtray"


@pytest.mark.parametrize("line", ["X-GNOME-Autostart-enabled=false", "Hidden=true"])
def test_an_entry_a_desktop_switched_off_counts_as_off(tmp_path: Path, line: str) -> None:
    entry = XdgAutostart(command=["/bin/true"], config_home=tmp_path)
    entry.set_enabled(True)
    entry.path.write_text(entry.path.read_text() + line + "\n")
    assert not entry.enabled
    entry.set_enabled(True)  # switching it on again rewrites it
    assert entry.enabled


def test_a_relative_xdg_config_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert XdgAutostart(command=["x"]).path == Path.home() / ".config/autostart/colabtray.desktop"


def test_a_failure_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    entry = XdgAutostart(command=["/bin/true"], config_home=blocker)
    with pytest.raises(AutostartError) as caught:
        entry.set_enabled(True)
    assert caught.value.message.startswith(
        "Could not add colabtray to the programs started at login ("
    )


def test_the_macos_launch_agent(tmp_path: Path) -> None:
    agent = LaunchAgent(
        command=["/Applications/colabtray.app/Contents/MacOS/colabtray"], home=tmp_path
    )
    agent.set_enabled(True)
    assert agent.path == tmp_path / "Library/LaunchAgents/io.github.colabtray.plist"
    assert agent.enabled
    assert plistlib.loads(agent.path.read_bytes()) == {
        "Label": "io.github.colabtray",
        "ProgramArguments": ["/Applications/colabtray.app/Contents/MacOS/colabtray"],
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    agent.set_enabled(False)
    assert not agent.path.exists()


def test_the_windows_startup_shortcut(tmp_path: Path) -> None:
    ran: list[Sequence[str]] = []

    def run(argv: Sequence[str]) -> None:
        ran.append(argv)
        Path(
            tmp_path / "AppData/Microsoft/Windows/Start Menu/Programs/Startup/colabtray.lnk"
        ).write_bytes(b"L\0\0\0")

    command = [r"C:\Users\o'neil\venv\Scripts\pythonw.exe", "-m", "colabtray"]
    shortcut = StartupShortcut(command=command, appdata=tmp_path / "AppData", run=run)
    shortcut.set_enabled(True)
    assert shortcut.enabled
    ((*program, script),) = ran
    assert program == ["powershell", "-NoProfile", "-NonInteractive", "-Command"]
    assert "CreateShortcut('" + str(shortcut.path) + "')" in script
    assert r"$s.TargetPath = 'C:\Users\o''neil\venv\Scripts\pythonw.exe'" in script
    assert "$s.Arguments = '-m colabtray'" in script
    shortcut.set_enabled(False)
    assert not shortcut.enabled


def test_each_platform_gets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(autostart.for_platform("linux", ["x"]), XdgAutostart)
    assert isinstance(autostart.for_platform("freebsd14", ["x"]), XdgAutostart)
    assert isinstance(autostart.for_platform("darwin", ["x"]), LaunchAgent)
    assert isinstance(autostart.for_platform("win32", ["x"]), StartupShortcut)


def test_launch_command_when_bundled_installed_or_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "dist/colabtray/colabtray"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle))
    assert launch_command() == [str(bundle)]
    monkeypatch.delattr(sys, "frozen")

    venv = tmp_path / "venv/bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    assert launch_command() == [str(venv / "python"), "-m", "colabtray"]  # not resolved
    (venv / "colabtray").write_text("#!/bin/sh\n")
    (venv / "colabtray").chmod(0o755)
    assert launch_command() == [str(venv / "colabtray")]

    monkeypatch.setattr(sys, "platform", "win32")
    scripts = tmp_path / "winvenv"
    scripts.mkdir()
    monkeypatch.setattr(sys, "executable", str(scripts / "python.exe"))
    assert launch_command() == [str(scripts / "python.exe"), "-m", "colabtray"]
    (scripts / "pythonw.exe").write_bytes(b"")
    assert launch_command() == [str(scripts / "pythonw.exe"), "-m", "colabtray"]
