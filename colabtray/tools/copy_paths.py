"""Where ``colabtray cp`` reads and writes: ``NAME:PATH`` on a runtime (as the contents API
takes it, and as a Colab user knows it) and this machine's side: the source to upload, the
target a download goes to (decided as ``cp`` would), and its files opened and given their
mode, an OSError here said in one sentence."""

from __future__ import annotations

import errno
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from colabtray.errors import describe_os_error
from colabtray.tools import listing
from colabtray.tools.copy_errors import CopyError, Refused


@dataclass(frozen=True)
class Remote:
    """A path on a runtime: ``path`` relative to the Jupyter root (``content/data/x.csv``)."""

    runtime: str
    path: str
    folder: bool  # written with a trailing slash: it must be a folder


def location(text: str) -> Remote | None:
    """``NAME:PATH`` as a Remote; None for a local path (a colon after a slash, or a Windows
    drive letter, belongs to a local path; ``./a:b`` is always local)."""
    name, colon, rest = text.partition(":")
    if not colon or not name.strip() or "/" in name or "\\" in name:
        return None
    if os.name == "nt" and len(name) == 1:
        return None
    return Remote(name.strip(), api_path(rest), rest.endswith("/"))


def api_path(text: str) -> str:
    """A runtime path as the contents API takes it: relative to ``/`` (Colab's Jupyter root),
    with relative paths under ``/content``."""
    joined = text if text.startswith("/") else posixpath.join("/content", text)
    return posixpath.normpath(joined).lstrip("/")


def shown(path: str) -> str:
    """A runtime path as a Colab user knows it: relative to ``/content``, else absolute."""
    if path.startswith("content/"):
        return path.removeprefix("content/")
    return "/" + path


def local_target(destination: str, name: str, folder: bool) -> Path:
    """Where on this machine the copy goes, as ``cp`` would decide; a sentence if it cannot."""
    path = Path(destination)
    if path.is_dir():
        path = path / name
        if folder and path.exists() and not path.is_dir():
            raise CopyError(f"{path} is a file on this machine, not a folder.")
        if not folder and path.is_dir():
            raise CopyError(f"{path} is a folder on this machine.")
        return path
    if destination.endswith(("/", os.sep)):
        raise CopyError(f"There is no folder {destination} on this machine.")
    if folder and path.exists():
        raise CopyError(f"{destination} is a file on this machine, not a folder.")
    if not path.parent.is_dir():
        raise CopyError(f"There is no folder {path.parent} on this machine.")
    return path


def inside(destination: str, paths: list[Path]) -> None:
    """Refuse, before anything is written, a path that a link already on this machine would
    take outside ``destination`` (the first such is the link itself: parents come first)."""
    bound = os.path.realpath(destination)
    for path in paths:
        if listing.leads_outside(path, bound):
            raise Refused(f"{path} is a link that leads outside {destination}")


def walk_local(top: Path) -> tuple[list[str], list[tuple[str, int]], int]:
    """Every folder and regular file under ``top`` (POSIX paths relative to it, each folder
    before its entries), and how many were left out: hidden ones and anything else, which
    the contents API would refuse."""
    folders: list[str] = []
    entries: list[tuple[str, int]] = []
    skipped = 0
    for here, subfolders, names in os.walk(top):
        relative = Path(here).relative_to(top).as_posix()
        keep = [d for d in sorted(subfolders) if not d.startswith(".")]
        keep = [d for d in keep if not os.path.islink(os.path.join(here, d))]
        skipped += len(subfolders) - len(keep)
        subfolders[:] = keep
        folders.extend(posixpath.normpath(posixpath.join(relative, d)) for d in keep)
        for name in sorted(names):
            full = os.path.join(here, name)
            if name.startswith(".") or not os.path.isfile(full):
                skipped += 1
                continue
            entries.append(
                (posixpath.normpath(posixpath.join(relative, name)), os.path.getsize(full))
            )
    return folders, entries, skipped


def local_source(source: str, recursive: bool) -> tuple[Path, bool, int]:
    """The local file or folder to upload, whether it is a folder, and its size."""
    local = Path(source)
    if not local.exists():
        raise CopyError(f"There is no {source} on this machine.")
    if local.is_dir():
        if not recursive:
            raise CopyError(f"{source} is a folder; copy folders with -r.")
        return local.resolve(), True, 0
    return local.resolve(), False, local.stat().st_size


def open_to_read(path: Path) -> BinaryIO:
    """The local file, opened here so the event loop only ever waits on its reads in threads."""
    return open(path, "rb")


def mode_like(part: Path, target: Path) -> None:
    """Give the finished file the mode a new file gets (or the one it replaces has), not
    the temporary file's 0600."""
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    os.chmod(part, mode)


def local_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "This machine's disk is full"
    where = f" {exc.filename}" if exc.filename else ""
    return f"This machine could not use{where} ({describe_os_error(exc)})"
