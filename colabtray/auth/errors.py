"""Errors of signing in; each carries a sentence a person can act on."""

from __future__ import annotations

from colabtray.colab.errors import ColabError


class SignInError(ColabError):
    """Signing in did not complete."""


class SignInDeclinedError(SignInError):
    def __init__(self) -> None:
        super().__init__("You declined the sign-in in the browser; nothing was changed.")


class SignInTimeoutError(SignInError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"Sign-in timed out after {seconds:.0f} seconds without an answer from the browser; "
            "try again."
        )


class SignInCancelledError(SignInError):
    def __init__(self) -> None:
        super().__init__("Sign-in was cancelled.")


class InvalidGrantError(SignInError):
    """Google answered invalid_grant: the refresh token was revoked or has expired."""

    def __init__(self) -> None:
        super().__init__(
            "Google no longer accepts this account's sign-in (revoked or expired); sign in again."
        )


class NotSignedInError(SignInError):
    def __init__(self) -> None:
        super().__init__("Not signed in. Run 'colabtray signin' (or set COLABTRAY_ACCESS_TOKEN).")


class SignInAgainError(NotSignedInError):
    """The account is listed but has no usable refresh token any more."""

    def __init__(self, email: str) -> None:
        self.email = email
        SignInError.__init__(
            self, f"{email} needs to sign in again: run 'colabtray signin' or use the tray."
        )
