"""Every module of the package imports in a fresh interpreter (an import that only a code path
the other tests miss would reach fails here first, not in a user's hands), and importing it
sets up no logging: filters and handlers are installed where logging or a listener is set up."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import colabtray

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(colabtray.__path__, "colabtray.")
    if ".kernel_path" not in info.name and info.name != "colabtray.__main__"
)


# Run after the import: the root logger and colabtray's loggers that have a filter or handler.
SET_UP_LOGGERS = """
import logging
loggers = [("", logging.root), *logging.root.manager.loggerDict.items()]
print([
    name for name, logger in loggers
    if isinstance(logger, logging.Logger) and (name == "" or name.startswith("colabtray"))
    and (logger.filters or logger.handlers)
])
"""


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_on_its_own(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}\n{SET_UP_LOGGERS}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "[]", "importing it set up logging"


# What a command the running app carries out must not load (issue 25 item 10: each costs tens
# of milliseconds at every `colabtray status`, and ssh's ProxyCommand runs per connection).
HEAVY = ("pydantic", "httpx2", "aiohttp", "colabtray.core", "colabtray.settings")

LOADED_HEAVY = f"""
import sys
print(sorted({{m for m in sys.modules for h in {HEAVY!r} if m == h or m.startswith(h + ".")}}))
"""


def test_importing_the_cli_loads_nothing_heavy() -> None:
    """`import colabtray.cli` (as `colabtray --version` and every command do) loads none of
    pydantic, httpx2, aiohttp, the settings or the core: each command imports its own needs."""
    done = subprocess.run(
        [sys.executable, "-c", f"import colabtray.cli\n{LOADED_HEAVY}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == "[]"
