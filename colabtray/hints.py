"""The ``colabtray`` command lines the app prints for a person to paste (in sentences, status,
the headless lines, questions): built in one place, so each works as printed.

The demo's commands carry ``--demo``: without it a pasted command goes to the person's own app
and account, or finds none ("colabtray is not running"). A command names ``colabtray`` only
where PATH finds this installation's; otherwise (``./scripts/demo.sh`` runs ``.venv/bin``'s,
which no PATH names) it names this one by its full path.
"""

from __future__ import annotations

import functools
import shlex
import shutil
import sys
from pathlib import Path

_demo = False


def set_demo(demo: bool) -> None:
    """Whether this process is the demo (its app, or a command run with ``--demo``)."""
    global _demo
    _demo = demo


@functools.cache
def program() -> tuple[str, ...]:
    """How a person's shell runs this colabtray: ``colabtray`` where PATH finds this one, else
    this installation's script by its full path (or its interpreter, for a bundled build)."""
    if getattr(sys, "frozen", False):
        return (sys.executable,)
    script = Path(sys.executable).parent / "colabtray"
    found = shutil.which("colabtray")
    try:
        if found is not None and Path(found).samefile(script):
            return ("colabtray",)
    except OSError:
        pass
    if script.is_file():
        return (str(script),)
    return (sys.executable, "-m", "colabtray")


def command(*words: str) -> str:
    """``colabtray [--demo] WORDS…`` for a POSIX shell, each word quoted where it must be."""
    return shlex.join([*program(), *(["--demo"] if _demo else []), *words])
