"""PySide6's check of newly imported modules, made light (colabtray.system.memory).

Each case runs in a fresh interpreter: the check is process-wide and PySide6 must be
imported before the modules it looks at.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import linecache, sys
    sys.path.insert(0, sys.argv[1])
    import PySide6.QtCore
    from colabtray.system.memory import scan_imports_lightly
    lightened = scan_imports_lightly() if sys.argv[2] == "light" else False
    import plain_module, qt_module  # statements: PySide6 watches __import__
    feature = sys.modules["shibokensupport.feature"]
    cached = [n for n in linecache.cache if n.endswith(("plain_module.py", "qt_module.py"))]
    print(lightened, feature.pyside_feature_dict["plain_module"],
          feature.pyside_feature_dict["qt_module"], len(cached), scan_imports_lightly())
    """
)


def run(tmp_path: Path, mode: str) -> list[str]:
    (tmp_path / "plain_module.py").write_text("VALUE = 1\n" + "# padding\n" * 1000)
    (tmp_path / "qt_module.py").write_text("from PySide6 import QtCore\nVALUE = 2\n")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


def test_pyside_alone_caches_the_source_of_every_module_imported_after_it(tmp_path) -> None:
    # The premise: if PySide6 stops doing this, the light check can go.
    lightened, plain, qt, cached, _ = run(tmp_path, "plain")
    assert (lightened, plain, qt) == ("False", "-1", "0")
    assert int(cached) == 2


def test_the_light_check_gives_the_same_answers_and_caches_nothing(tmp_path) -> None:
    lightened, plain, qt, cached, again = run(tmp_path, "light")
    assert lightened == "True"
    assert (plain, qt) == ("-1", "0")  # PySide6's own verdicts: ignored / uses PySide6
    assert int(cached) == 0
    assert again == "False"  # once is enough
