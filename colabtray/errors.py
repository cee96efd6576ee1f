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


def bug_sentence(doing: str, error: str = "", *, details: str = "see its log") -> str:
    """colabtray itself failed (a bug): what it failed to do, the kind of error (never its
    text, which may carry a token or a path) and where the details are."""
    what = f" {doing}" if doing else ""
    kind = f" ({error})" if error else ""
    return f"colabtray failed{what}{kind}, which is a bug; {details}."


class UserError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
