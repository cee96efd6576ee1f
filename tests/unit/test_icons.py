"""The tray's icons are PNGs rendered from their SVGs (packaging/render_icons.py): every size
is there, each still looks like its SVG, and showing them never loads Qt's SVG module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from colabtray.ui import icons

STATES = ("colabtray", "signed-out", "idle", "running", "attention", "unreachable")


@pytest.mark.parametrize("name", STATES)
def test_every_size_is_rendered_and_still_matches_its_svg(qapp, name: str) -> None:
    svg = QSvgRenderer(icons.icon_path(name))
    for path, size in icons.png_paths(name):
        image = QImage(path)
        assert not image.isNull(), f"{path} is missing: run packaging/render_icons.py"
        assert (image.width(), image.height()) == (size, size)
        fresh = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        fresh.fill(Qt.GlobalColor.transparent)
        painter = QPainter(fresh)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        svg.render(painter)
        painter.end()
        image = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        differing = sum(
            image.pixel(x, y) != fresh.pixel(x, y) for x in range(size) for y in range(size)
        )
        assert differing <= size * size // 20, f"{path} is older than its SVG: re-render it"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps")
def test_showing_the_tray_icons_loads_no_svg_code(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from colabtray.ui import icons\n"
        f"for name in {STATES!r}:\n"
        "    assert not icons.icon(name).pixmap(22, 22).isNull()\n"
        "maps = open('/proc/self/maps').read()\n"
        "print('svg' if ('qsvg' in maps or 'Qt6Svg' in maps) else 'none')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
