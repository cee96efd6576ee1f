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


class CredentialsRefusedError(SignInError):
    """A sign-in gives no more tokens until the person acts (signs in again, runs a gcloud
    command): the account is marked "sign in again" with this sentence."""


class InvalidGrantError(CredentialsRefusedError):
    """Google answered invalid_grant: the refresh token was revoked or has expired."""

    def __init__(self) -> None:
        super().__init__(
            "Google no longer accepts this account's sign-in (revoked or expired); sign in again."
        )


class NotSignedInError(SignInError):
    def __init__(self) -> None:
        from colabtray.auth.methods import not_signed_in  # it imports these errors

        super().__init__(not_signed_in())


class NoSignInMethodError(SignInError):
    """Nothing to sign in with: no OAuth client configured (the sentence lists the ways)."""

    def __init__(self, ways: str) -> None:
        super().__init__(f"colabtray has no OAuth client to sign in with. {ways}")


class SignInAgainError(NotSignedInError):
    """The account is listed but gives no tokens any more (``reason`` says why, if known)."""

    def __init__(self, email: str, reason: str | None = None) -> None:
        from colabtray.auth.methods import sign_in_again

        self.email = email
        SignInError.__init__(self, reason or sign_in_again(email))
