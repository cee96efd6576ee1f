"""Which terminal the tray's "Open terminal" starts, per platform (a pure choice: the
platform, the environment and what is on PATH are given)."""

from __future__ import annotations

import sys

from colabtray.tools.terminal_launcher import shell_command, terminal_argv

COMMAND = ["/opt/py/bin/python", "-m", "colabtray", "shell", "T4 GPU"]


def on_path(*names: str):
    return lambda name: f"/usr/bin/{name}" if name in names else None


def test_the_command_is_this_installations_colabtray() -> None:
    assert shell_command("T4 GPU") == [sys.executable, "-m", "colabtray", "shell", "T4 GPU"]
    assert shell_command("CPU", demo=True)[-3:] == ["--demo", "shell", "CPU"]


def test_linux_prefers_terminal_then_debians_choice_then_known_ones() -> None:
    def choose(env: dict[str, str], *names: str) -> list[str] | None:
        return terminal_argv(COMMAND, platform="linux", env=env, which=on_path(*names))

    everything = ("x-terminal-emulator", "gnome-terminal", "xterm", "myterm")
    assert choose({"TERMINAL": "myterm --single"}, *everything) == [
        "myterm",
        "--single",
        "-e",
        *COMMAND,
    ]
    assert choose({}, *everything) == ["/usr/bin/x-terminal-emulator", "-e", *COMMAND]
    # $TERMINAL naming nothing installed is passed over.
    assert choose({"TERMINAL": "gone"}, "xterm") == ["/usr/bin/xterm", "-e", *COMMAND]
    assert choose({}, "gnome-terminal", "xterm") == ["/usr/bin/gnome-terminal", "--", *COMMAND]
    assert choose({}, "konsole") == ["/usr/bin/konsole", "-e", *COMMAND]
    assert choose({}, "xfce4-terminal") == ["/usr/bin/xfce4-terminal", "-x", *COMMAND]
    assert choose({}, "kitty") == ["/usr/bin/kitty", *COMMAND]
    assert choose({}, "alacritty") == ["/usr/bin/alacritty", "-e", *COMMAND]
    assert choose({}) is None


def test_macos_runs_it_in_terminal_app() -> None:
    argv = terminal_argv(COMMAND, platform="darwin", env={}, which=on_path())
    assert argv is not None and argv[0] == "osascript"
    script = argv[2]
    assert script == (
        'tell application "Terminal" to do script '
        "\"/opt/py/bin/python -m colabtray shell 'T4 GPU'\""
    )
    quoted = terminal_argv(["say", 'a "b" \\c'], platform="darwin", env={}, which=on_path())
    assert quoted is not None
    assert quoted[2].endswith('do script "say \'a \\"b\\" \\\\c\'"')


def test_windows_uses_windows_terminal_else_start() -> None:
    assert terminal_argv(COMMAND, platform="win32", env={}, which=on_path("wt")) == [
        "wt",
        "new-tab",
        "--title",
        "Colab",
        *COMMAND,
    ]
    assert terminal_argv(COMMAND, platform="win32", env={}, which=on_path()) == [
        "cmd",
        "/c",
        "start",
        "Colab",
        *COMMAND,
    ]
