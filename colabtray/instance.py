"""One colabtray per user and config directory: the instance lock, and where the control
channel (:mod:`colabtray.ipc`) listens.

Both live in a directory of the user's runtime dir that only the user may enter (0700,
checked), under names derived from the user and the config directory, so that a demo (with
its own config directory) runs beside the real app. Deliberately light (no asyncio, no
pydantic): it runs before the tray icon is up.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import stat
from pathlib import Path

import platformdirs

from colabtray.errors import UserError

# colabtray.settings.APP_NAME, not imported: that module pulls in pydantic.
APP_NAME = "colabtray"


class InstanceError(UserError):
    """The lock's directory cannot be used; ``message`` is a sentence for the user."""


def channel_dir() -> Path:
    """The private directory of lock and socket, created 0700 if missing, refused if not ours."""
    path = Path(platformdirs.user_runtime_dir(APP_NAME))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise InstanceError(f"{path} is not a directory of this user; colabtray will not use it.")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def channel_name(config_dir: Path) -> str:
    """``ipc-<hash>``: one instance per user and config directory."""
    key = f"{getpass.getuser()}\0{config_dir.expanduser().resolve()}"
    return "ipc-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def socket_path(config_dir: Path) -> Path:
    return channel_dir() / f"{channel_name(config_dir)}.sock"


class InstanceLock:
    """Held by the running instance for its whole life (an flock, released on exit)."""

    def __init__(self, socket: Path, fd: int) -> None:
        self.socket = socket  # where this instance's control channel listens
        self._fd: int | None = fd

    @classmethod
    def claim(cls, config_dir: Path) -> InstanceLock | None:
        """Become the instance for ``config_dir``; None if another one already is."""
        socket = socket_path(config_dir)
        # O_CLOEXEC: a child (the demo's emulator) must not inherit, and so keep, the lock.
        fd = os.open(socket.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(socket, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
