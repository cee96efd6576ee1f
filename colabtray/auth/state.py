"""Whether an account that is signed in gives tokens: no imports, so the CLI reads a running
app's ``status`` without loading the session."""

from __future__ import annotations

from enum import StrEnum


class AccountState(StrEnum):
    SIGNED_IN = "signed-in"
    NEEDS_SIGN_IN = "needs-sign-in"  # listed, but it gives no tokens until the person acts
