"""Typed errors of the Colab backend client.

Every error carries ``message``: one sentence a person can act on. Messages name the
operation and never contain a token, a query string or a response body.
"""

from __future__ import annotations

from collections.abc import Sequence

from colabtray import hints
from colabtray.errors import UserError


class ColabError(UserError):
    """Base class; ``str(error)`` is the sentence to show the user."""


class SignedOutError(ColabError):
    """The backend refused our Google credentials (401), even after a refresh."""

    def __init__(self) -> None:
        super().__init__("Google no longer accepts this sign-in; sign in again.")


class TooManyRuntimesError(ColabError):
    """Assign answered 412: the account has as many runtimes as it may have."""

    def __init__(self) -> None:
        super().__init__(
            "Colab will not assign another runtime: this account has too many "
            "(or may not have this kind right now). Disconnect one and try again."
        )


class AcceleratorUnavailableError(ColabError):
    """Assign answered 503: no machine of that kind is free.

    The client knows only the accelerator; the core, which knows the plan, raises it again
    with ``alternatives``: the plan's other accelerators of the same kind, in the order to
    try them. ``hint`` says how to try them where the sentence is read (the CLI's flag).
    """

    def __init__(
        self,
        accelerator: str | None,
        alternatives: Sequence[str] = (),
        *,
        hint: str | None = None,
    ) -> None:
        self.accelerator = accelerator
        self.alternatives = tuple(alternatives)
        what = f"No {accelerator} is" if accelerator else "No runtime is"
        self._not_free = f"{what} free on Colab right now"
        if self.alternatives:
            how = f" ({hint})" if hint else ""
            others = ", ".join(self.alternatives)
            super().__init__(f"{self._not_free}; this account may also have: {others}{how}.")
        else:
            super().__init__(self.plain)

    @property
    def plain(self) -> str:
        """The sentence without the alternatives, for where they are offered as buttons."""
        return f"{self._not_free}; try another kind or try later."

    def with_hint(self, hint: str) -> AcceleratorUnavailableError:
        """The same error, its sentence saying how to try the alternatives."""
        return AcceleratorUnavailableError(self.accelerator, self.alternatives, hint=hint)


class NoneFreeError(ColabError):
    """Every accelerator of one kind that the plan allows answered 503, one after another."""

    def __init__(self, variant: str, tried: Sequence[str]) -> None:
        self.variant = variant
        self.tried = tuple(tried)
        super().__init__(
            f"None of this account's {variant}s is free on Colab right now "
            f"(tried {', '.join(self.tried)}); try later or another kind."
        )


class QuotaExceededError(ColabError):
    """Assign answered with a quota outcome (1, 2 or the deprecated 3)."""

    def __init__(self) -> None:
        super().__init__(
            "Colab says this account has used up its quota for this kind of runtime; "
            "try a smaller one, wait, or add compute units."
        )


class DenylistedError(ColabError):
    """Assign answered outcome 5: the account is blocked from Colab runtimes."""

    def __init__(self) -> None:
        super().__init__(
            "Colab has blocked this account from using runtimes (suspected abuse); "
            "other Google products are not affected. See Colab's usage limits FAQ."
        )


class RuntimeGoneError(ColabError):
    """The runtime no longer exists on the backend (404, or absent from the listing)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"The Colab runtime {endpoint} is gone (disconnected or reclaimed).")


class RuntimeAccessError(ColabError):
    """The runtime refused its proxy token (expired, or the runtime was just removed)."""

    def __init__(self, endpoint: str, status: int) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(
            f"The Colab runtime {endpoint} refused the request (HTTP {status}); "
            "its access token may have expired."
        )


class BackendUnavailableError(ColabError):
    """5xx, 429, a connection error or a timeout, after the allowed retries."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        super().__init__(f"Colab could not be reached for {what} ({detail}); try again later.")


class UntrustedCertificateError(BackendUnavailableError):
    """The TLS handshake failed verification: nothing was sent, and retrying will not help."""

    def __init__(self, what: str) -> None:
        self.what = what
        ColabError.__init__(
            self,
            f"Colab's TLS certificate for {what} is not trusted, so nothing was sent. On a network "
            "that inspects TLS, add its CA to the system's certificates or name its file in "
            "the ca_file setting, then restart colabtray.",
        )


def connection_failed(what: str, exc: BaseException, detail: str) -> BackendUnavailableError:
    """The error for a request that got no answer: a refused TLS certificate says so by name
    (found anywhere in ``exc``'s chain of causes); anything else is ``detail``."""
    import ssl  # already loaded: the HTTP client made its TLS context with it

    visited: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in visited:
        if isinstance(current, ssl.SSLCertVerificationError):
            return UntrustedCertificateError(what)
        visited.add(id(current))
        current = current.__cause__ or current.__context__
    return BackendUnavailableError(what, detail)


class MalformedResponseError(ColabError):
    """The backend answered 2xx with something that is not the documented JSON."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        super().__init__(
            f"Colab answered {what} with something colabtray cannot read ({detail}); "
            "the service may be having trouble, or colabtray needs an update."
        )


class RequestRejectedError(ColabError):
    """Any other 4xx: the backend understood the request and said no."""

    def __init__(self, what: str, status: int, hint: str = "") -> None:
        self.what = what
        self.status = status
        super().__init__(f"Colab refused {what} (HTTP {status}).{(' ' + hint) if hint else ''}")


class ScopeNotPermittedError(RequestRejectedError):
    """403 SCOPE_NOT_PERMITTED: the token lacks a scope this host wants (GAPI: colaboratory)."""

    def __init__(self, what: str) -> None:
        ColabError.__init__(
            self,
            f"Google refused {what}: the token lacks the colaboratory scope, which the gapi "
            "API settings need. Sign in again (colabtray now asks for it), or set listing_api "
            "and account_api back to colab.",
        )
        self.what = what
        self.status = 403


class KeepAliveScopeError(ColabError):
    """The first keep-alive ping of a new runtime was refused for a missing scope (403): Colab
    would reclaim it within minutes while it spends units, so it was given back."""

    def __init__(self, name: str, given_back: bool) -> None:
        self.name = name
        back = (
            "colabtray gave it back"
            if given_back
            else "giving it back failed too, so disconnect it in the tray or with "
            + hints.command("remove", name)
        )
        super().__init__(
            f"Colab refused to keep {name} alive (HTTP 403): this sign-in lacks a scope Colab "
            f"wants, so the runtime would be reclaimed within minutes; {back}. Sign in again "
            f"with {hints.command('signin')}, then make a new runtime."
        )


class AcceleratorRefusedError(ColabError):
    """Assign answered 400 with an accelerator asked for: Colab's way of saying this account
    may not have it (an account without A100 quota got 400 for one, live)."""

    def __init__(self, variant: str, accelerator: str) -> None:
        self.accelerator = accelerator
        kind = f"{accelerator} {variant}"
        article = "an" if accelerator[:1] in "AEFHILMNORSX" else "a"
        super().__init__(
            f"Colab refused {article} {kind} for this account: it may lack the quota or the "
            "plan for it."
        )


class PublicApiRefusedError(RequestRejectedError):
    """Colab's public API refused this account or OAuth client as a whole (it is in beta, on
    an allowlist): 403 PERMISSION_DENIED or SERVICE_DISABLED, 404, 501 UNIMPLEMENTED."""

    def __init__(self, status: int, reason: str | None) -> None:
        self.reason = reason
        why = {
            "SERVICE_DISABLED": "the API is not enabled for this OAuth client's project",
            "ACCESS_TOKEN_SCOPE_INSUFFICIENT": "the token lacks the colaboratory scope",
        }.get(reason or "", "this OAuth client is not on Google's allowlist for it")
        ColabError.__init__(
            self, f"Colab's public API refused this sign-in (HTTP {status}): {why}."
        )
        self.what = "Colab's public API"
        self.status = status


class OperationFailedError(ColabError):
    """A public-API operation ended in an error colabtray has no sentence of its own for."""

    def __init__(self, what: str, operation: str, code: int, message: str) -> None:
        self.code = code
        said = f", {message}" if message else ""
        super().__init__(f"Colab could not finish {what} ({operation}: code {code}{said}).")
