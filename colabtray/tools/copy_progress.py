"""``colabtray cp``'s progress line on stderr, and how it writes sizes and times."""

from __future__ import annotations

import shutil
import sys
import time

from colabtray.text import printable


class Progress:
    """One line on stderr while copying, redrawn at most ten times a second: the file, the
    share done, the rate and the time left. Silent unless stderr is a terminal."""

    def __init__(self, total: int, *, visible: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self._label = ""
        self._visible = sys.stderr.isatty() if visible is None else visible
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def start(self, label: str) -> None:
        self._label = label
        self._draw(force=True)

    def add(self, count: int) -> None:
        self.done += count
        self._draw()

    def end(self) -> None:
        """Finish the line (before a success's silence or a failure's sentence)."""
        if self._drawn:
            self._draw(force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = False

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._visible or (not force and now - self._drawn_at < 0.1):
            return
        self._drawn_at, self._drawn = now, True
        rate = self.done / max(now - self._started, 1e-3)
        share = 100 * self.done // self.total if self.total else 100
        left = _clock((self.total - self.done) / rate) if rate > 0 else "--:--"
        figures = (
            f"{share:3d}%  {_size(self.done)} of {_size(self.total)}  {_size(rate)}/s  {left} left"
        )
        room = max(shutil.get_terminal_size().columns - len(figures) - 3, 10)
        label = printable(self._label)  # a runtime's file name may carry escape sequences
        label = label if len(label) <= room else "…" + label[-(room - 1) :]
        sys.stderr.write(f"\r{label}  {figures}\x1b[K")
        sys.stderr.flush()


def _size(count: float) -> str:
    """Bytes as people read them: 812 B, 4.2 MB, 1.3 GB."""
    if count < 1000:
        return f"{count:.0f} B"
    for unit in ("kB", "MB"):
        count /= 1000
        if count < 1000:
            return f"{count:.1f} {unit}"
    return f"{count / 1000:.1f} GB"


def _clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
