"""Directories only their owner may enter: colabtray's config, state and log directories.

What they hold (sign-in state, runtime names, the bridge's secrets, logs) is nobody else's
business, so colabtray makes each missing one 0700 (missing parents too, as the XDG base
directory rules ask) and takes back the group's and others' access from one of its own that
is wider (made by an older colabtray, or by hand). A directory of another user is left alone.
On Windows the profile's folders are private already and modes mean little: nothing changes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = 0o700

APP_NAME = "colabtray"  # the name of its directories, its keyring service and more


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """``path``, made if missing (0700, its missing parents too); with ``tighten``, an
    existing one of ours loses any access of group and others. Raises OSError."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE, exist_ok=True)
    if tighten:
        tighten_dir(path)
    return path


def tighten_dir(path: Path) -> None:
    """Take group and others' access from ``path`` if it is a directory of ours; else nothing.
    Raises OSError only if the change itself fails."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows
        return
    try:
        info = path.stat()
    except OSError:
        return
    if stat.S_ISDIR(info.st_mode) and info.st_uid == getuid() and info.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & PRIVATE)


def app_dir(kind: str, *, demo: bool = False) -> Path:
    """colabtray's ``config``, ``state`` or ``log`` directory as the settings have it:
    ``COLABTRAY_<KIND>_DIR`` (its name in any case), else the platform's; the demo's own is
    ``demo`` in it. Only the environment sets these, never the settings file, so they are known
    without loading the settings (pydantic, slow to import)."""
    wanted = f"colabtray_{kind}_dir"
    found = next((v for k, v in os.environ.items() if k.lower() == wanted and v), None)
    where = Path(found) if found else platform_dir(kind)
    return where / "demo" if demo else where


def platform_dir(kind: str) -> Path:
    """The platform's ``config``, ``state``, ``log`` or ``runtime`` directory for colabtray."""
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME))
