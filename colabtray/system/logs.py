"""Logging set-up shared by every entry point: stderr, and a rotating file in the log dir.

HTTP libraries are kept at WARNING even with ``--verbose``: their debug lines carry full
URLs, and colabtray logs its own requests without query strings or headers instead. As a
second line of defence, every record passes a filter that masks anything shaped like a
Google token before it is written anywhere, and the formatters mask the finished line again,
tracebacks included (an exception's text can quote a URL or a form body).

Request data (paths, headers, names) can reach a log line, so a record can never forge
another: its message is written on one line with control characters escaped, and every line
of a traceback after it is indented. The same kind of line repeated more than THROTTLE_BURST
times a minute (a flood of bad requests) is held back and counted, so a flood cannot rotate
the log's history away.

The file rotates at 1 MB (``colabtray.log``, ``.1`` … ``.3``); every one of them is readable by
the user only, in a directory only the user may enter.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import time
from pathlib import Path

from colabtray.system.dirs import private_dir
from colabtray.text import printable

# Libraries whose chatter stays out even of --verbose: qasync's DEBUG lines repeat the
# arguments of every call it hands a thread, such as the sign-in address with its one-time state.
QUIET_LOGGERS = {
    "httpx2": logging.WARNING,
    "httpcore2": logging.WARNING,
    "hpack": logging.WARNING,
    "qasync": logging.INFO,
}

_SECRET_SHAPES = re.compile(
    r"ya29\.[\w.-]+"  # Google access tokens
    r"|1//[\w.-]+"  # Google refresh tokens
    r"|(?i:bearer)\s+[\w.~+/-]+=*"  # any bearer credential
    r"|(?i:(?:access_|refresh_|id_)?token|code|secret)=[^&\s\"']+"  # in query strings or forms
)

LOG_FILE = "colabtray.log"
THROTTLE_BURST = 20  # lines of one kind per THROTTLE_WINDOW before they are held back
THROTTLE_WINDOW = 60.0


class RedactSecrets(logging.Filter):
    """Masks token-shaped text in the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET_SHAPES.sub(_mask, message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    keep = text.split("=", 1)[0] + "=" if "=" in text else text[:5]
    return keep + "[hidden]"


def mask_secrets(text: str) -> str:
    """``text`` with everything shaped like a token replaced by ``[hidden]``."""
    return _SECRET_SHAPES.sub(_mask, text)


def one_line(text: str) -> str:
    """``text`` with every control, format or line-break character escaped (``\\n``,
    ``\\x1b``, ``\\u202e``): the same rule as everything else colabtray shows a person."""
    return printable(text)


class OneLineFormatter(logging.Formatter):
    """One physical line per record, then its traceback or stack indented under it: whatever
    a message quotes, no line of the log can pass for a record it did not write."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = super().format(record).split("\n")
        return "\n".join([first, *("    " + one_line(line) for line in rest)])


class _MaskingFormatter(OneLineFormatter):
    """Masks the whole formatted record: message, traceback and stack."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class Throttle(logging.Filter):
    """Holds back a kind of line (same logger, same message template) after ``burst`` of them
    in ``window`` seconds; the next one let through says how many were held back."""

    def __init__(self, burst: int = THROTTLE_BURST, window: float = THROTTLE_WINDOW) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._seen: dict[tuple[str, object], list[float | int]] = {}  # → [start, count, held]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self._window:
            held = int(entry[2]) if entry is not None else 0
            if len(self._seen) > 1000:  # forget old kinds rather than grow without bound
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._window}
            self._seen[key] = [now, 1, 0]
            if held:
                record.msg = f"{record.getMessage()} ({held} more like it were not logged)"
                record.args = None
            return True
        entry[1] += 1
        if entry[1] <= self._burst:
            return True
        entry[2] += 1
        return False


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each file it opens, the first and every one after a rollover, is 0600."""

    def _open(self) -> io.TextIOWrapper:
        stream = super()._open()
        os.chmod(self.baseFilename, 0o600)
        return stream


def configure_logging(verbose: bool = False, log_dir: Path | None = None) -> Path | None:
    """Set up stderr (warnings, or everything with ``verbose``) and the log file.

    Returns the log file's path, or None when it cannot be written (logged to stderr).
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = _MaskingFormatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    redact = RedactSecrets()

    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(_MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(Throttle())
    console.addFilter(redact)
    root.addHandler(console)

    path: Path | None = None
    if log_dir is not None:
        try:
            private_dir(log_dir)  # 0700, its missing parents too (the state folder)
            path = log_dir / LOG_FILE
            file_handler = _PrivateRotatingFileHandler(
                path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
            )
            file_handler.setFormatter(formatter)
            file_handler.addFilter(Throttle())
            file_handler.addFilter(redact)
            root.addHandler(file_handler)
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write the log file: %s", exc)
            path = None

    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    if not verbose:  # each retry is logged as a warning; the final error says enough
        logging.getLogger("stamina").setLevel(logging.ERROR)
    return path
