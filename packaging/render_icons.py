"""Render the app icon set from resources/icons/colabtray.svg (the one source of the icon).

    .venv/bin/python packaging/render_icons.py

Writes packaging/icons/: the freedesktop hicolor theme layout (``hicolor/NxN/apps/`` PNGs and
``hicolor/scalable/apps/`` SVG, what ``/usr/share/icons`` or ``~/.local/share/icons`` take),
``colabtray.ico`` for Windows and ``colabtray.icns`` for macOS (used by colabtray.spec). Qt's
own SVG renderer draws them, so no other tool is needed. Run it again after changing the SVG.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "resources" / "icons" / "colabtray.svg"
OUT = ROOT / "packaging" / "icons"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"render_icons: {SOURCE} is not a valid SVG", file=sys.stderr)
        return 1

    def render(size: int) -> QImage:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        return image

    for size in SIZES:
        target = OUT / "hicolor" / f"{size}x{size}" / "apps" / "colabtray.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not render(size).save(str(target), "PNG"):
            print(f"render_icons: cannot write {target}", file=sys.stderr)
            return 1
    scalable = OUT / "hicolor" / "scalable" / "apps" / "colabtray.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE, scalable)
    # Qt writes one image per .ico/.icns: the largest each platform scales down well from.
    for name, size, fmt in (("colabtray.ico", 256, "ICO"), ("colabtray.icns", 512, "ICNS")):
        if not render(size).save(str(OUT / name), fmt):
            print(f"render_icons: cannot write {OUT / name}", file=sys.stderr)
            return 1
    del app
    print(f"render_icons: wrote {len(SIZES)} PNGs, the SVG, .ico and .icns to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
