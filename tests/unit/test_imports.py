"""Every module of the package imports in a fresh interpreter (an import that only a code path
the other tests miss would reach fails here first, not in a user's hands)."""

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


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_on_its_own(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
