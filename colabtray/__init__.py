"""colabtray: Google Colab runtimes one click away from any local editor."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # ``__version__`` is read from the installed metadata on first use: importing
    # importlib.metadata costs ~20 ms, and the tray icon must go up before anything slow.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("colabtray")
        except PackageNotFoundError:  # running from a source tree that was never installed
            found = "0.0.0+source"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
