"""The tray's "Open terminal": the desktop's terminal emulator running ``colabtray shell NAME``
with this very installation of colabtray (its Python and package, or the frozen executable).

``terminal_argv`` only chooses (a pure function of the platform, the environment and what is
on PATH, so each platform's choice is tested anywhere); ``open_terminal`` starts it without
waiting: the terminal lives on in a session of its own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping

Which = Callable[[str], str | None]

# Linux and the BSDs, after $TERMINAL and Debian's x-terminal-emulator: each terminal and how
# it is told to run a command (the words that go before the command).
POSIX_TERMINALS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x-terminal-emulator", ("-e",)),
    ("gnome-terminal", ("--",)),
    ("konsole", ("-e",)),
    ("xfce4-terminal", ("-x",)),
    ("mate-terminal", ("-x",)),
    ("alacritty", ("-e",)),
    ("kitty", ()),
    ("wezterm", ("start", "--")),
    ("foot", ()),
    ("terminator", ("-x",)),
    ("lxterminal", ("-e",)),
    ("urxvt", ("-e",)),
    ("xterm", ("-e",)),
)


def colabtray_command(*, demo: bool = False) -> list[str]:
    """How to run this installation's colabtray (never whatever ``colabtray`` PATH finds)."""
    frozen = getattr(sys, "frozen", False)
    base = [sys.executable] if frozen else [sys.executable, "-m", "colabtray"]
    return [*base, *(["--demo"] if demo else [])]


def shell_command(name: str, *, demo: bool = False) -> list[str]:
    return [*colabtray_command(demo=demo), "shell", name]


def terminal_argv(
    command: list[str],
    *,
    platform: str = sys.platform,
    env: Mapping[str, str] = os.environ,
    which: Which = shutil.which,
) -> list[str] | None:
    """The command line that opens a terminal window running ``command``; None if this
    desktop has no terminal colabtray knows."""
    if platform == "darwin":
        script = _applescript_string(shlex.join(command))
        return [
            "osascript",
            "-e",
            f'tell application "Terminal" to do script "{script}"',
            "-e",
            'tell application "Terminal" to activate',
        ]
    if platform == "win32":
        if which("wt"):
            return ["wt", "new-tab", "--title", "Colab", *command]
        # start's first quoted word is the window's title.
        return ["cmd", "/c", "start", "Colab", *command]
    chosen = env.get("TERMINAL", "").strip()
    if chosen:
        words = shlex.split(chosen)
        if words and which(words[0]):
            return [*words, "-e", *command]
    for name, before in POSIX_TERMINALS:
        path = which(name)
        if path:
            return [path, *before, *command]
    return None


def _applescript_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def open_terminal(name: str, *, demo: bool = False) -> str | None:
    """Start a terminal running ``colabtray shell NAME``; None if it started, else the command
    (as one line to paste) because no terminal could be started."""
    command = shell_command(name, demo=demo)
    argv = terminal_argv(command)
    if argv is not None:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=sys.platform != "win32",
                close_fds=True,
            )
        except OSError:
            pass
        else:
            # Reaped when it ends (no zombie left in the tray), however long that takes.
            threading.Thread(target=process.wait, name="terminal-reaper", daemon=True).start()
            return None
    return subprocess.list2cmdline(command) if sys.platform == "win32" else shlex.join(command)
