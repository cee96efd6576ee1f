"""What a runtime says about its files, checked before ``colabtray cp`` acts on it.

A runtime is a machine where any notebook runs as root and may put any server on the Jupyter
port (docs/architecture.md, "Who may reach what"), so each answer of its contents API is
hostile input:

* **Models**: a JSON object of a known ``type``, its ``size`` a whole number of bytes or
  absent, a folder's listing a list of such objects with a name each, no name twice. Anything
  else is :class:`Malformed`.
* **Names**: each name in a listing must be one path component on this machine
  (:func:`name_problem`). Local paths are made from these names alone, never from the
  ``path`` the runtime hands back.
* **Bounds**: a tree is at most MAX_DEPTH folders deep with at most MAX_ENTRIES entries in
  all. Jupyter follows links, so a link to a folder it is in (``self -> .``) lists forever.
* **Inside**: every local path written resolves inside the destination, through any link
  already there (:func:`leads_outside`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

MAX_DEPTH = 32  # folders below the one copied; Linux gives up following links at 40
MAX_ENTRIES = 100_000  # files and folders in one copy
NAME_MAX = 255  # bytes in one name: Linux's and macOS's limit, within Windows' 255 characters
KINDS = frozenset({"directory", "file", "notebook"})
WINDOWS_FORBIDDEN = frozenset('<>:"|?*') | frozenset(map(chr, range(32)))
WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)}
)


class Malformed(Exception):
    """A contents model unlike any Jupyter sends; ``detail`` says how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Entry:
    """One name in a folder's listing."""

    name: str
    folder: bool
    size: int | None


@dataclass(frozen=True)
class Model:
    """Jupyter's model of a file or folder, as far as colabtray uses it."""

    folder: bool
    size: int | None
    hash_algorithm: str | None = None
    hash: str | None = None
    entries: tuple[Entry, ...] = ()  # a listed folder's, sorted by name


def model(body: Any, *, listed: bool = False) -> Model:
    """The model in ``body`` (a folder's with its entries when ``listed``), or Malformed."""
    if not isinstance(body, dict):
        raise Malformed("the answer is not a JSON object")
    folder, size = _kind_and_size(body, "it")
    algorithm, digest = body.get("hash_algorithm"), body.get("hash")
    if not all(value is None or isinstance(value, str) for value in (algorithm, digest)):
        raise Malformed("its hash is not text")
    entries = _entries(body.get("content")) if folder and listed else ()
    return Model(folder, size, algorithm, digest, entries)


def _entries(content: Any) -> tuple[Entry, ...]:
    if not isinstance(content, list):
        raise Malformed("its entries are not a list")
    entries: dict[str, Entry] = {}
    for item in content:
        if not isinstance(item, dict):
            raise Malformed("an entry is not a JSON object")
        name = item.get("name")
        if not isinstance(name, str):
            raise Malformed("an entry has no name" if name is None else "a name is not text")
        if name in entries:
            raise Malformed(f"it lists {brief(name)} twice")
        folder, size = _kind_and_size(item, brief(name))
        entries[name] = Entry(name, folder, size)
    return tuple(entries[name] for name in sorted(entries))


def _kind_and_size(body: dict[str, Any], which: str) -> tuple[bool, int | None]:
    """Whether ``body`` is a folder, and its size (None when not told)."""
    kind, size = body.get("type"), body.get("size")
    if kind is None:
        raise Malformed(f"{which} has no type")
    if not isinstance(kind, str) or kind not in KINDS:
        raise Malformed(f"{which} has the unknown type {brief(kind)}")
    if size is not None and (type(size) is not int or size < 0):  # bool is an int too
        raise Malformed(f"the size of {which} is {brief(size)}, not a number of bytes")
    return kind == "directory", size


def name_problem(name: str, *, windows: bool = os.name == "nt") -> str | None:
    """Why ``name`` from a runtime cannot be one file or folder name here (the end of a
    sentence), or None when it can."""
    flavour = PureWindowsPath(name) if windows else PurePosixPath(name)
    if (
        name in ("", ".", "..")
        or any(c in name for c in "/\\\0")
        or flavour.anchor  # a drive ("C:"), a root
        or flavour.parts != (name,)
    ):
        return "is not a single file name"
    try:
        unfit = len(os.fsencode(name)) > NAME_MAX
    except UnicodeEncodeError:  # a lone surrogate this system's encoding cannot write
        unfit = True
    if unfit:
        return "cannot be a file name on this machine"
    if windows and (
        not WINDOWS_FORBIDDEN.isdisjoint(name)
        or name[-1] in ". "  # Windows drops these, so "x." would be "x"
        or name.split(".")[0].rstrip(" ").upper() in WINDOWS_DEVICES
    ):
        return "cannot be a file name on Windows"
    return None


def leads_outside(path: Path, bound: str) -> bool:
    """Whether ``path`` resolves (through any link there) outside ``bound``, a real path."""
    real = os.path.realpath(path)
    try:
        return os.path.commonpath([real, bound]) != bound
    except ValueError:  # another drive
        return True


def brief(value: object) -> str:
    """``value`` as Python writes it (control characters escaped, quoted), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
