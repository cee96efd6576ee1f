"""What ``colabtray cp`` raises: CopyError, the one sentence a user reads, and the two
failures it is made from along the way (Lost: the runtime stopped answering; Refused: it
said no, or what arrived was not intact)."""

from __future__ import annotations

from colabtray.errors import UserError


class CopyError(UserError):
    """The copy failed: one sentence saying why and what was not written."""


class CopyUsageError(CopyError):
    """The command line names no runtime, or two (exit status 2, as for other usage errors)."""


class Lost(Exception):
    """The runtime stopped answering (a broken connection, its proxy gone)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Refused(Exception):
    """The runtime said no, or the file did not arrive intact; ``reason`` starts the sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
