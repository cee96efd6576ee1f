"""The base of every error colabtray shows a person: its ``message`` is one sentence they can
act on (never a token, a query string or a traceback). Whatever shows errors (the CLI, the
tray, the control channel) shows ``message`` for these and treats anything else as a bug."""

from __future__ import annotations


class UserError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
