"""colabtray: Google Colab runtimes one click away from any local editor."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("colabtray")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
