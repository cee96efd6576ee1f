"""Memory colabtray need not keep."""

from __future__ import annotations

import logging
import sys
from types import ModuleType

log = logging.getLogger(__name__)


def scan_imports_lightly() -> bool:
    """Make PySide6's check of each newly imported module read the file, not cache it.

    Once PySide6 is imported, shiboken looks at every module imported after it for use of
    PySide6 (PYSIDE-2029: whether ``from __feature__ import …`` may apply to it) with
    ``inspect.getsource``, which tokenizes the whole source and keeps it in linecache. For
    the app's client stack, imported after the tray icon is up, that leaves about 12 MB of
    resident memory behind (benchmarks/tray.py), even after linecache is cleared: the heap
    stays fragmented.
    This asks the same question, "PySide6" in the module's source, of the file's bytes.
    Modules without a ``.py`` file go to PySide6's own check. Returns whether the check was
    found to replace (a PySide6 without it needs nothing).
    """
    feature = sys.modules.get("shibokensupport.feature")
    original = getattr(feature, "_mod_uses_pyside", None)
    if feature is None or original is None or getattr(original, "lightened", False):
        return False

    def uses_pyside(module: ModuleType) -> bool:
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            try:
                with open(path, "rb") as source:
                    return b"PySide6" in source.read()
            except OSError:
                pass
        return bool(original(module))

    uses_pyside.lightened = True  # type: ignore[attr-defined]
    feature._mod_uses_pyside = uses_pyside  # type: ignore[attr-defined]
    log.debug("PySide6's import check reads files without caching them")
    return True
