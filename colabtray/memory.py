"""Memory colabtray need not keep."""

from __future__ import annotations

import linecache


def forget_module_sources() -> None:
    """Drop the source text of imported modules from :mod:`linecache`.

    PySide6 reads the whole source of each module imported after it (shiboken's import hook
    looks for ``__feature__`` use, PYSIDE-2029), and linecache keeps it all: over 5 MB once
    the client stack is in, about 2.5 MB of resident memory in the end (benchmarks/tray.py).
    It is only a cache for tracebacks, which read the files again when they need a line.
    Call it after a batch of imports.
    """
    linecache.clearcache()
