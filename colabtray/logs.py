"""Logging set-up shared by every entry point: stderr, and a rotating file in the log dir.

HTTP libraries are kept at WARNING even with ``--verbose``: their debug lines carry full
URLs, and colabtray logs its own requests without query strings or headers instead. As a
second line of defence, every record passes a filter that masks anything shaped like a
Google token before it is written anywhere, and the formatters mask the finished line again,
tracebacks included (an exception's text can quote a URL or a form body).

The file rotates at 1 MB (``colabtray.log``, ``.1`` … ``.3``); every one of them is readable by
the user only, in a directory only the user may enter.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from pathlib import Path
from typing import TextIO

_QUIET = {"httpx2": logging.WARNING, "httpcore2": logging.WARNING, "hpack": logging.WARNING}

_SECRET_SHAPES = re.compile(
    r"ya29\.[\w.-]+"  # Google access tokens
    r"|1//[\w.-]+"  # Google refresh tokens
    r"|(?i:bearer)\s+[\w.~+/-]+=*"  # any bearer credential
    r"|(?i:(?:access_|refresh_|id_)?token|code|secret)=[^&\s\"']+"  # in query strings or forms
)

LOG_FILE = "colabtray.log"


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


class _MaskingFormatter(logging.Formatter):
    """Masks the whole formatted record: message, traceback and stack."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each file it opens, the first and every one after a rollover, is 0600."""

    def _open(self) -> TextIO:
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
    console.addFilter(redact)
    root.addHandler(console)

    path: Path | None = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = log_dir / LOG_FILE
            file_handler = _PrivateRotatingFileHandler(
                path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
            )
            file_handler.setFormatter(formatter)
            file_handler.addFilter(redact)
            root.addHandler(file_handler)
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write the log file: %s", exc)
            path = None

    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    if not verbose:  # each retry is logged as a warning; the final error says enough
        logging.getLogger("stamina").setLevel(logging.ERROR)
    return path
