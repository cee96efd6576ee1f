"""Small files written atomically, so a crash never leaves half a file, and JSON state files."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from colabtray.system.dirs import private_dir

log = logging.getLogger(__name__)


def read_json(path: Path) -> Any:
    """The file's content, or None if it is missing or unreadable (which is logged)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable file %s: %s", path, exc)
        return None


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` in one step: readers see the old file or the new one,
    never half; the new file has ``mode`` from its first byte (a temporary file of our own,
    never one someone else made), and a failure leaves no temporary file behind."""
    private_dir(path.parent, tighten=False)  # a folder colabtray makes is its owner's alone
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not hasattr(os, "fchmod"):
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Replace the file in one step; readable by the user only."""
    write_atomically(path, json.dumps(data, indent=1, sort_keys=True))
