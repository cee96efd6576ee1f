"""Start colabtray when the user logs in: one small interface, one implementation per platform.

- Linux and other freedesktop desktops: ``colabtray.desktop`` in ``$XDG_CONFIG_HOME/autostart/``
  (the XDG Autostart specification; GNOME, KDE, Xfce, … read it at login).
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/<APP_ID>.plist`` with ``RunAtLoad``.
- Windows: a shortcut ``colabtray.lnk`` in the user's Startup folder.

The entry runs :func:`launch_command`: the bundle itself when frozen (PyInstaller), else the
``colabtray`` script beside the running interpreter (a venv or pipx install), else
``python -m colabtray`` with the running interpreter. Nothing here imports Qt.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from colabtray.errors import UserError, describe_os_error
from colabtray.system.jsonfile import write_atomically

APP_ID = "io.github.colabtray"
NAME = "colabtray"
COMMENT = "Google Colab runtimes one click away from any local editor"

Runner = Callable[[Sequence[str]], object]
# Started by the login session: the panel may come up after colabtray, so wait for a tray.
AT_LOGIN = "--at-login"


def launch_command() -> list[str]:
    """How to start this installation of colabtray from a login session."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the app is its own executable
        return [os.path.abspath(sys.executable)]
    # Not resolved: a venv's python is a link to the base interpreter, its scripts are not.
    bindir = Path(os.path.abspath(sys.executable)).parent
    if sys.platform == "win32":
        # colabtray.exe is a console launcher and would open a console window at login.
        windowed = bindir / "pythonw.exe"
        return [str(windowed if windowed.exists() else sys.executable), "-m", "colabtray"]
    script = bindir / "colabtray"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [os.path.abspath(sys.executable), "-m", "colabtray"]


class AutostartError(UserError):
    """The login item could not be changed; ``message`` is one sentence for the user."""


class Autostart(ABC):
    """Whether colabtray starts at login, and the switch. ``path`` is the one file it owns."""

    def __init__(self, path: Path, command: Sequence[str] | None = None) -> None:
        self.path = path
        self.command = list(command) if command is not None else [*launch_command(), AT_LOGIN]

    @property
    def enabled(self) -> bool:
        return self.path.is_file()

    def set_enabled(self, enabled: bool) -> None:
        """Write or remove the entry; doing what is already done is fine.

        Raises :class:`AutostartError` if the file cannot be written or removed.
        """
        try:
            if enabled:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._write()
            else:
                self.path.unlink(missing_ok=True)
        except (OSError, subprocess.SubprocessError) as exc:
            action = "add colabtray to" if enabled else "remove colabtray from"
            reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            raise AutostartError(
                f"Could not {action} the programs started at login ({self.path}: {reason})."
            ) from exc

    @abstractmethod
    def _write(self) -> None: ...


class XdgAutostart(Autostart):
    """A freedesktop autostart entry (``$XDG_CONFIG_HOME/autostart/colabtray.desktop``)."""

    def __init__(self, command: Sequence[str] | None = None, config_home: Path | None = None):
        super().__init__(_xdg_config_home(config_home) / "autostart" / f"{NAME}.desktop", command)

    @property
    def enabled(self) -> bool:
        """The file exists and no desktop's "disable" key is set in it."""
        if not self.path.is_file():
            return False
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(self.path, encoding="utf-8")
            entry = parser["Desktop Entry"]
        except (configparser.Error, KeyError, UnicodeDecodeError):
            return False
        return (
            entry.get("Hidden", "false") != "true"
            and entry.get("X-GNOME-Autostart-enabled", "true") != "false"
        )

    def _write(self) -> None:
        lines = [
            "[Desktop Entry]",
            "Type=Application",
            f"Name={NAME}",
            f"Comment={COMMENT}",
            f"Exec={exec_line(self.command)}",
        ]
        if os.path.isabs(self.command[0]):  # desktops skip the entry once it is uninstalled
            lines.append(f"TryExec={_escape_value(self.command[0])}")
        lines += [
            f"Icon={NAME}",
            "Terminal=false",
            "Categories=Development;",
            "X-GNOME-Autostart-enabled=true",
        ]
        write_atomically(self.path, "\n".join(lines) + "\n", 0o644)


class LaunchAgent(Autostart):
    """A macOS LaunchAgent that runs colabtray once at login (no restart if it quits)."""

    def __init__(self, command: Sequence[str] | None = None, home: Path | None = None):
        home = home or Path.home()
        super().__init__(home / "Library" / "LaunchAgents" / f"{APP_ID}.plist", command)

    def _write(self) -> None:
        agent = {
            "Label": APP_ID,
            "ProgramArguments": self.command,
            "RunAtLoad": True,
            "KeepAlive": False,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }
        write_atomically(self.path, plistlib.dumps(agent).decode("utf-8"), 0o644)


class StartupShortcut(Autostart):
    """A shortcut in the Windows Startup folder, made by the shell's own WScript.Shell."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        appdata: Path | None = None,
        run: Runner | None = None,
    ) -> None:
        appdata = appdata or Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
        startup = appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
        super().__init__(startup / f"{NAME}.lnk", command)
        self._run = run or _run_checked

    def _write(self) -> None:
        target, *args = self.command
        link, target_q = _ps_quote(str(self.path)), _ps_quote(target)
        args_q = _ps_quote(subprocess.list2cmdline(args))
        cwd, comment = _ps_quote(str(Path(target).parent)), _ps_quote(COMMENT)
        script = (
            f"$s = (New-Object -ComObject WScript.Shell).CreateShortcut({link}); "
            f"$s.TargetPath = {target_q}; $s.Arguments = {args_q}; "
            f"$s.WorkingDirectory = {cwd}; $s.Description = {comment}; $s.Save()"
        )
        self._run(["powershell", "-NoProfile", "-NonInteractive", "-Command", script])


def for_platform(platform: str | None = None, command: Sequence[str] | None = None) -> Autostart:
    """The autostart of this platform (or of ``platform``, a ``sys.platform`` value)."""
    platform = platform or sys.platform
    if platform == "darwin":
        return LaunchAgent(command)
    if platform == "win32":
        return StartupShortcut(command)
    return XdgAutostart(command)


def exec_line(command: Sequence[str]) -> str:
    """``command`` as a desktop entry's ``Exec`` value (Desktop Entry Specification,
    "The Exec key": quoting, ``%%``, then the general string escapes)."""
    return _escape_value(" ".join(_quote_arg(arg) for arg in command))


_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _quote_arg(arg: str) -> str:
    if arg and not _RESERVED & set(arg):
        return arg.replace("%", "%%")
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + escaped.replace("%", "%%") + '"'


def _escape_value(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    )


def _xdg_config_home(given: Path | None) -> Path:
    if given is not None:
        return given
    configured = os.environ.get("XDG_CONFIG_HOME", "")
    # The specification says a relative value is invalid and is to be ignored.
    return Path(configured) if os.path.isabs(configured) else Path.home() / ".config"


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _run_checked(argv: Sequence[str]) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=30)
