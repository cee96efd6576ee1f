"""The packages import each other only downwards: a new edge fails here until it is added on
purpose, and no edge may close a cycle.

Read from the source (every import, also those inside functions; those under
``if TYPE_CHECKING:`` are for annotations only and do not count). A top-level module counts
as a package of its own (``colabtray/cli.py`` is ``cli``).
"""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "colabtray"

BASE = {"errors", "text", "__version__"}  # anyone may use these
ALLOWED: dict[str, set[str]] = {
    "system": {"listen"},
    "settings_file": {"system"},
    "settings": {"settings_file", "system"},
    "listen": set(),
    "hints": set(),
    "colab": {"hints", "settings", "system"},
    "auth": {"colab", "hints", "listen", "settings", "system"},
    "core": {"auth", "colab", "hints", "settings", "system"},
    "doctor": {"auth", "colab", "core", "hints", "settings", "system"},
    "bridge": {"colab", "core", "listen", "settings", "system"},
    "tools": {"colab", "hints", "settings", "system"},
    "demo": {"auth", "system"},
    "emulator": {"listen", "system"},
    "runner": {"auth", "bridge", "core", "demo", "hints", "settings", "system", "tools"},
    "headless": {"auth", "core", "hints", "runner", "settings", "system"},
    "ui": {"auth", "colab", "core", "doctor", "runner", "settings", "settings_file", "system"}
    | {"tools"},
    "cli": {"auth", "colab", "core", "doctor", "emulator", "hints", "settings", "system", "tools"},
    "launch": {"cli", "demo", "headless", "hints", "settings", "system", "ui"},
    "__main__": {"launch"},
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                found.update(id(n) for n in ast.walk(inner))
    return found


def edges() -> dict[str, set[str]]:
    """Read in a thread of its own: CPython 3.11's parser can fail with "AST constructor
    recursion depth mismatch" in a thread where a RecursionError was caught before (the
    hypothesis tests provoke some), and a new thread starts clean."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        return reader.submit(_edges).result()


def _edges() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "colabtray":
                    names = [f"colabtray.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "colabtray" and len(parts) > 1 and parts[1] != source:
                    found.setdefault(source, set()).add(parts[1])
    return found


def test_every_package_imports_only_what_its_layer_allows() -> None:
    unexpected = {
        source: sorted(targets - ALLOWED.get(source, set()) - BASE)
        for source, targets in edges().items()
    }
    unexpected = {source: targets for source, targets in unexpected.items() if targets}
    assert unexpected == {}, "a new edge between packages: add it to ALLOWED if it belongs"


def test_the_allowed_edges_have_no_cycle() -> None:
    try:
        tuple(TopologicalSorter(ALLOWED).static_order())
    except CycleError as cycle:
        raise AssertionError(f"packages import each other in a cycle: {cycle.args[1]}") from None


def test_the_core_imports_nothing_above_it() -> None:
    above = {"bridge", "tools", "demo", "runner", "headless", "ui", "cli", "launch", "doctor"}
    assert edges().get("core", set()) & above == set()
