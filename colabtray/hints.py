"""The ``colabtray`` command lines the app prints for a person to paste (in sentences, status,
the headless lines, questions): built in one place, so each works as printed.

The demo's commands carry ``--demo``: without it a pasted command goes to the person's own app
and account, or finds none ("colabtray is not running").
"""

from __future__ import annotations

import shlex

_demo = False


def set_demo(demo: bool) -> None:
    """Whether this process is the demo (its app, or a command run with ``--demo``)."""
    global _demo
    _demo = demo


def command(*words: str) -> str:
    """``colabtray [--demo] WORDS…`` for a POSIX shell, each word quoted where it must be."""
    return shlex.join(["colabtray", *(["--demo"] if _demo else []), *words])
