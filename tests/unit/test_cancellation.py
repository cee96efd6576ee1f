"""A stop always stops: colabtray never waits with ``asyncio.wait_for``.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just after the
awaited thing finished but before the waiting task resumed (CPython gh-86296, fixed in 3.12).
A loop that waits on a wake-up event, as keep-alive and the registry do, then goes on running
after it was cancelled, and quitting hangs (tests/integration/test_keepalive.py,
``test_quitting_right_after_a_wake_up_stops_keep_alive``, fails that way with it).
``asyncio.timeout`` has no such gap.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "colabtray"


def test_no_module_waits_with_asyncio_wait_for() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "wait_for"
                and isinstance(node.value, ast.Name)
                and node.value.id == "asyncio"
            ):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert found == [], "use `async with asyncio.timeout(...)` instead"
