"""The base of every error colabtray shows a person: its ``message`` is one sentence they can
act on (never a token, a query string or a traceback). Whatever shows errors (the CLI, the
tray, the control channel) shows ``message`` for these and treats anything else as a bug."""

from __future__ import annotations

import os


def describe_os_error(exc: OSError) -> str:
    """Why an operating-system call failed, in the system's words ("Permission denied",
    "No space left on device"), else the error's kind ("IsADirectoryError"); never a path."""
    if exc.strerror:
        return exc.strerror
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


class UserError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
