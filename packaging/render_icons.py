"""Render the icons from their SVGs in resources/icons/ (the one source of each).

    .venv/bin/python packaging/render_icons.py

Writes packaging/icons/: the freedesktop hicolor theme layout (``hicolor/NxN/apps/`` PNGs and
``hicolor/scalable/apps/`` SVG, what ``/usr/share/icons`` or ``~/.local/share/icons`` take),
``colabtray.ico`` for Windows and ``colabtray.icns`` for macOS (used by colabtray.spec); and
resources/icons/png/: each of the tray's icons at the sizes trays ask for, plain and @2x, which
the app loads instead of the SVGs (Qt's SVG module costs about 8 MB of resident memory). Qt's
own SVG renderer draws them, so no other tool is needed. Run it again after changing an SVG;
tests/unit/test_icons.py fails while a PNG is missing or older than its SVG.
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
TRAY_ICONS = ("colabtray", "signed-out", "idle", "running", "attention", "unreachable")
TRAY_SIZES = (16, 22, 24, 32, 48, 64)  # each also @2x
TRAY_OUT = ROOT / "resources" / "icons" / "png"


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])

    def render_svg(source: Path, size: int) -> QImage:
        svg = QSvgRenderer(str(source))
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        svg.render(painter)
        painter.end()
        return image

    TRAY_OUT.mkdir(parents=True, exist_ok=True)
    for name in TRAY_ICONS:
        source = ROOT / "resources" / "icons" / f"{name}.svg"
        for size in TRAY_SIZES:
            for scale, suffix in ((1, ""), (2, "@2x")):
                target = TRAY_OUT / f"{name}-{size}{suffix}.png"
                if not render_svg(source, size * scale).save(str(target), "PNG"):
                    print(f"render_icons: cannot write {target}", file=sys.stderr)
                    return 1

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
    print(
        f"render_icons: wrote {len(SIZES)} PNGs, the SVG, .ico and .icns to {OUT}, and the "
        f"tray's icons to {TRAY_OUT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
