"""The tray's icons, one SVG per state in ``resources/icons/``.

The glyph is a mid-tone fill with a dark outline and badges ringed in white, so it reads on
light and dark panels alike without redrawing on palette changes. On macOS the menu bar
wants a template (mask) image that the system tints; Qt makes one from ``setIsMask``.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon

APP_ICON = "colabtray"


def icon_path(name: str) -> str:
    return str(resources.files("colabtray.resources") / "icons" / f"{name}.svg")


@cache
def icon(name: str) -> QIcon:
    """An icon by file name (``"colabtray"``, ``"attention"``…), loaded once."""
    loaded = QIcon(icon_path(name))
    if sys.platform == "darwin" and name != APP_ICON:
        loaded.setIsMask(True)
    return loaded


def state_icon(state: str) -> QIcon:
    """The icon of a ``colabtray.core.display.TrayState`` (a str: this module must stay light,
    it is imported before the core to put the icon up fast)."""
    return icon(str(state))


def app_icon() -> QIcon:
    return icon(APP_ICON)
