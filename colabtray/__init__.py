"""colabtray: Google Colab runtimes one click away from any local editor."""

# The one place the version is written: pyproject.toml reads it from here when the package is
# built, and `colabtray --version` prints it without importlib.metadata (~10 ms to import).
__version__ = "0.1.0"
