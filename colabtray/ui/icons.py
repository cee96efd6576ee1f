"""The tray's icons, one per state: drawn as SVGs in ``resources/icons/``, loaded as the PNGs
that ``packaging/render_icons.py`` renders from them (``resources/icons/png/``, 16 to 64 px and
@2x), since loading an SVG would bring in Qt's SVG module (about 8 MB resident).

The glyph is a mid-tone fill with a dark outline and badges ringed in white, so it reads on
light and dark panels alike without redrawing on palette changes. On macOS the menu bar
wants a template (mask) image that the system tints; Qt makes one from ``setIsMask``.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import resources

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

APP_ICON = "colabtray"
SIZES = (16, 22, 24, 32, 48, 64)  # as rendered by packaging/render_icons.py, each also @2x


def icon_path(name: str) -> str:
    """The SVG an icon is drawn from (the PNGs are rendered from it)."""
    return str(resources.files("colabtray.resources") / "icons" / f"{name}.svg")


def png_paths(name: str) -> list[tuple[str, int]]:
    """Each PNG of an icon with the size it is drawn at."""
    folder = resources.files("colabtray.resources") / "icons" / "png"
    return [
        (str(folder / f"{name}-{size}{suffix}.png"), size * scale)
        for size in SIZES
        for scale, suffix in ((1, ""), (2, "@2x"))
    ]


@cache
def icon(name: str) -> QIcon:
    """An icon by name (``"colabtray"``, ``"attention"``…), loaded once, from its PNGs."""
    loaded = QIcon()
    for path, size in png_paths(name):
        loaded.addFile(path, QSize(size, size))
    if sys.platform == "darwin" and name != APP_ICON:
        loaded.setIsMask(True)
    return loaded


def state_icon(state: str) -> QIcon:
    """The icon of a ``colabtray.core.display.TrayState`` (a str: this module must stay light,
    it is imported before the core to put the icon up fast)."""
    return icon(str(state))


def app_icon() -> QIcon:
    return icon(APP_ICON)
