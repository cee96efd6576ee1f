"""Which registry events deserve a desktop notification, and what it says.

The registry already reports episodes (one BackendLost per outage, one RuntimeRemoved per
runtime), so one event gives at most one notice: no popup storm while Colab is down. Compute
units running low is read from the registry's state instead (:class:`LowUnits`), since every
poll brings a new balance and only the moment it falls below an hour's burn is news.
"""

from __future__ import annotations

from dataclasses import dataclass

from colabtray import hints
from colabtray.colab import errors
from colabtray.colab.models import ComputeUnits
from colabtray.core.display import duration, running_low
from colabtray.core.keepalive import PingsRefused
from colabtray.core.naming import kind_label
from colabtray.core.registry import (
    BackendBack,
    BackendLost,
    Event,
    RuntimeAdded,
    RuntimeRemoved,
    SignInNeeded,
)


@dataclass(frozen=True)
class Notice:
    title: str
    body: str
    # What a face shows anyway (a runtime arriving or leaving, the account's state): one
    # without notifications, such as --headless, need not say it twice.
    shown_as_state: bool = False
    action: NoticeAction | None = None  # a button, where the face can show one


@dataclass(frozen=True)
class NoticeAction:
    """A button on a notice that opens a web page."""

    label: str
    url: str


# Colab's page to buy compute units or change plan (what Google's clients open to upgrade).
BUY_UNITS = NoticeAction("Buy units or change plan", "https://colab.research.google.com/signup")


def notice_for(event: Event) -> Notice | None:
    """The notice for ``event``, or None for events the user need not hear about."""
    match event:
        case RuntimeAdded(runtime=runtime, name=name, by_user=True):
            return Notice(
                f"{name} is ready",
                f"Your {kind_label(runtime.variant, runtime.accelerator)} runtime is assigned "
                "and running; it uses compute units until you disconnect it.",
                shown_as_state=True,
            )
        case RuntimeAdded(runtime=runtime, name=name, by_user=False):
            return Notice(
                f"New runtime: {name}",
                f"A {kind_label(runtime.variant, runtime.accelerator)} runtime was assigned to "
                "this account elsewhere (Colab in a browser, another app).",
                shown_as_state=True,
            )
        case RuntimeRemoved(signed_out=True):
            return None  # the person signed its account out: not news to them
        case RuntimeRemoved(name=name, by_user=False):
            return Notice(
                f"{name} was disconnected",
                "Colab reclaimed this runtime or it was disconnected elsewhere; "
                "files and variables on it are gone.",
                shown_as_state=True,
            )
        case SignInNeeded(message=message):
            return Notice("Sign in to Colab again", message, shown_as_state=True)
        case BackendLost(message=message, untrusted=True):
            return Notice("Colab's certificate is not trusted", message)
        case BackendLost(message=message):
            return Notice(
                "Colab is unreachable",
                f"{message} colabtray keeps trying and will say when it is back.",
            )
        case BackendBack():
            return Notice("Colab is reachable again", "Runtimes and compute units are current.")
    return None


class LowUnits:
    """One notice per episode of compute units running low (:func:`display.running_low`).

    The episode ends when the units would last an hour again (bought more, or fewer runtimes
    burn them) or nothing is known (another account); only a new fall starts another, so a
    balance that hovers low does not notify at every poll.
    """

    def __init__(self) -> None:
        self.low = False

    def notice(self, units: ComputeUnits | None) -> Notice | None:
        """The notice if ``units`` starts an episode, else None."""
        was_low, self.low = self.low, running_low(units)
        if units is None or not self.low or was_low:
            return None
        return low_units_notice(units)


def low_units_notice(units: ComputeUnits) -> Notice:
    """What to say when the units left will not last the running runtimes an hour."""
    rate = units.rate_per_hour or 0.0
    left = units.left
    advice = "Disconnect the runtimes you do not need, or buy more compute units from Colab."
    if left <= 0:
        return Notice(
            "No compute units left",
            f"Your runtimes use {rate:.2f} compute units an hour and none are left. {advice}",
            action=BUY_UNITS,
        )
    return Notice(
        "Compute units running low",
        f"{left:.2f} compute units left; your runtimes use {rate:.2f} an hour, so they last "
        f"{duration(left / rate)}. {advice}",
        action=BUY_UNITS,
    )


def pings_refused_notice(refused: PingsRefused) -> Notice:
    """What to say when Colab keeps refusing keep-alive pings to a runtime: without pings it
    reclaims the runtime within minutes, so the person must act now."""
    name, error = refused.name, refused.error
    if isinstance(error, errors.RuntimeGoneError):
        return Notice(
            f"{name} is gone from Colab",
            f"Colab answered keep-alive for {name} twice with HTTP 404: it no longer has this "
            "runtime. Save nothing more there; make a new runtime.",
        )
    if isinstance(error, errors.SignedOutError):
        why = "HTTP 401: Google no longer accepts this sign-in"
        act = f"Sign in again ({hints.command('signin')})"
    elif isinstance(error, errors.ScopeNotPermittedError) or (
        isinstance(error, errors.RequestRejectedError) and error.status == 403
    ):
        why = "HTTP 403: the sign-in lacks a scope Colab wants"
        act = f"Sign in again with {hints.command('signin')}, which asks for it"
    else:
        status = getattr(error, "status", None)
        why = f"HTTP {status}" if status else error.message
        act = f"Check {hints.command('doctor')}, or disconnect it and make a new one"
    return Notice(
        f"{name} is not being kept alive",
        f"Colab refused keep-alive for {name} twice ({why}), so it will reclaim the runtime "
        f"within minutes. {act}.",
    )
