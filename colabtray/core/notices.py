"""Which registry events deserve a desktop notification, and what it says.

The registry already reports episodes (one BackendLost per outage, one RuntimeRemoved per
runtime), so one event gives at most one notice: no popup storm while Colab is down.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    urgent: bool = False


def notice_for(event: Event) -> Notice | None:
    """The notice for ``event``, or None for events the user need not hear about."""
    match event:
        case RuntimeAdded(runtime=runtime, name=name, by_user=True):
            return Notice(
                f"{name} is ready",
                f"Your {kind_label(runtime.variant, runtime.accelerator)} runtime is assigned "
                "and running; it uses compute units until you disconnect it.",
            )
        case RuntimeAdded(runtime=runtime, name=name, by_user=False):
            return Notice(
                f"New runtime: {name}",
                f"A {kind_label(runtime.variant, runtime.accelerator)} runtime was assigned to "
                "this account elsewhere (Colab in a browser, another app).",
            )
        case RuntimeRemoved(name=name, by_user=False):
            return Notice(
                f"{name} was disconnected",
                "Colab reclaimed this runtime or it was disconnected elsewhere; "
                "files and variables on it are gone.",
                urgent=True,
            )
        case SignInNeeded(message=message):
            return Notice("Sign in to Colab again", message, urgent=True)
        case BackendLost(message=message, untrusted=True):
            return Notice("Colab's certificate is not trusted", message, urgent=True)
        case BackendLost(message=message):
            return Notice(
                "Colab is unreachable",
                f"{message} colabtray keeps trying and will say when it is back.",
            )
        case BackendBack():
            return Notice("Colab is reachable again", "Runtimes and compute units are current.")
    return None
