"""One colabtray per user and config directory: the instance lock, and where the control
channel (:mod:`colabtray.system.ipc`) listens.

Both live in a directory of the user's runtime dir that only the user may enter (0700,
checked), under names derived from the user and the config directory, so that a demo (with
its own config directory) runs beside the real app. The lock is filelock's (flock on POSIX,
LockFileEx on Windows). The channel is a UNIX socket where there are UNIX sockets, else a
loopback port whose number and secret are in a 0600 file, as Jupyter does;
``COLABTRAY_CONTROL_CHANNEL=tcp`` forces the second, so it is tested on Linux too.

A client trusts the channel's file only while the lock is held (:func:`instance_running`): a
port left by an instance that died may be anyone's by now. Deliberately light (no asyncio, no
pydantic): it runs before the tray icon is up.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import stat
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

from colabtray.errors import UserError
from colabtray.system.dirs import platform_dir


class InstanceError(UserError):
    """The lock's directory cannot be used; ``message`` is a sentence for the user."""


def channel_dir() -> Path:
    """The private directory of lock and socket, created 0700 if missing, refused if not ours."""
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR (ssh, cron, containers) platformdirs warns on stderr and
        # falls back to a private /tmp folder; the fallback is right, the warning is noise.
        warnings.simplefilter("ignore")
        path = platform_dir("runtime")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    uid = getattr(os, "getuid", None)  # POSIX; on Windows the profile's folder is the user's
    if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid()):
        raise InstanceError(f"{path} is not a directory of this user; colabtray will not use it.")
    if uid is not None and stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def unix_sockets() -> bool:
    """Whether the control channel is a UNIX socket here (else a loopback port)."""
    forced = os.environ.get("COLABTRAY_CONTROL_CHANNEL", "").lower() == "tcp"
    return os.name == "posix" and hasattr(socket, "AF_UNIX") and not forced


def channel_name(config_dir: Path) -> str:
    """``ipc-<hash>``: one instance per user and config directory."""
    key = f"{getpass.getuser()}\0{config_dir.expanduser().resolve()}"
    return "ipc-" + hashlib.sha256(key.encode()).hexdigest()[:16]


# How long claiming waits for a lock that a client holds for a moment to see whether an
# instance runs (:func:`instance_running`); a running instance holds it for good.
CLAIM_PATIENCE = 0.5

# A UNIX socket's path has room for 107 bytes on Linux, 103 on macOS.
MAX_SOCKET_PATH = 100


def socket_path(config_dir: Path) -> Path:
    """Where the control channel is: the UNIX socket, or the file naming port and secret
    (where there are no UNIX sockets, or the runtime directory is too deep for one's path).
    Server and clients derive it alike, so they always meet on the same kind."""
    base = channel_dir() / channel_name(config_dir)
    socket = base.with_suffix(".sock")
    if unix_sockets() and len(os.fsencode(socket)) <= MAX_SOCKET_PATH:
        return socket
    return base.with_suffix(".json")


def is_unix_socket(path: Path) -> bool:
    return path.suffix == ".sock"


def lock_path(channel: Path) -> Path:
    """The instance lock's file beside the channel's (``socket_path``)."""
    return channel.with_suffix(".lock")


def instance_running(config_dir: Path) -> bool:
    """Whether a live instance holds the lock for ``config_dir``: the lock cannot be taken now.

    If it can, nobody holds it, and it is let go at once. The OS releases the lock of a process
    that died, so a held lock means the channel's file is that of a live instance.
    """
    probe = FileLock(lock_path(socket_path(config_dir)), mode=0o600, blocking=False)
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False


class InstanceLock:
    """Held by the running instance for its whole life (released on exit, or by the OS when
    the process dies). Its file is not inherited by children (Python's default): the demo's
    emulator must not keep it."""

    def __init__(self, socket: Path, lock: FileLock) -> None:
        self.socket = socket  # where this instance's control channel listens
        self.path = Path(lock.lock_file)
        self._lock: FileLock | None = lock

    @classmethod
    def claim(cls, config_dir: Path) -> InstanceLock | None:
        """Become the instance for ``config_dir``; None if another one already is.

        A channel file found here was left by an instance that died: it goes at once, so that
        no client takes its port for this instance's while this one starts.
        """
        where = socket_path(config_dir)
        lock = FileLock(lock_path(where), mode=0o600, timeout=CLAIM_PATIENCE)
        try:
            lock.acquire()
        except Timeout:
            return None
        try:
            where.unlink(missing_ok=True)
        except OSError:
            lock.release()
            raise
        return cls(where, lock)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
