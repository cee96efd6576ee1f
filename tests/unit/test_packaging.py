"""The files desktops and packagers read: the desktop entry, the icon set, macOS's Info.plist."""

from __future__ import annotations

import plistlib
import struct
import tomllib
from pathlib import Path

from colabtray.system.autostart import APP_ID
from tests.unit.test_autostart import desktop_value, validate

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
HICOLOR = PACKAGING / "icons" / "hicolor"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_desktop_entry_is_valid_and_runs_the_console_script() -> None:
    entry = PACKAGING / "linux" / "colabtray.desktop"
    validate(entry)
    text = entry.read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert desktop_value(text, "Exec") in scripts
    assert desktop_value(text, "Icon") == "colabtray"


def test_the_icon_set_is_rendered_from_the_app_icon() -> None:
    sizes = sorted(int(d.name.split("x")[0]) for d in HICOLOR.iterdir() if d.name[0].isdigit())
    assert sizes == [16, 22, 24, 32, 48, 64, 128, 256, 512]
    for size in sizes:
        assert png_size(HICOLOR / f"{size}x{size}" / "apps" / "colabtray.png") == (size, size)
    scalable = HICOLOR / "scalable" / "apps" / "colabtray.svg"
    source = ROOT / "resources" / "icons" / "colabtray.svg"
    assert scalable.read_bytes() == source.read_bytes(), (
        "the icon set is older than resources/icons/colabtray.svg: "
        "run .venv/bin/python packaging/render_icons.py"
    )
    assert (PACKAGING / "icons" / "colabtray.ico").read_bytes()[:4] == b"\0\0\1\0"
    assert (PACKAGING / "icons" / "colabtray.icns").read_bytes()[:4] == b"icns"


def test_macos_keeps_it_in_the_menu_bar_only() -> None:
    info = plistlib.loads((PACKAGING / "macos" / "Info.plist").read_bytes())
    assert info["LSUIElement"] is True
    assert info["CFBundleIdentifier"] == APP_ID
    assert info["CFBundleExecutable"] == "colabtray"
    assert info["CFBundleIconFile"] == "colabtray.icns"
