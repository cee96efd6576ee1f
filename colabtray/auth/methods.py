"""What this machine offers to sign in with, so that nobody meets a dead end.

The CLI lists it when ``colabtray signin`` has nothing to go on, the sign-in window shows it
as buttons, and ``colabtray doctor`` lists the same ways (:func:`ways`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from colabtray import hints
from colabtray.auth import gcloud
from colabtray.auth.adc import adc_file, login_hint
from colabtray.auth.client_file import CONSOLE_URL, ClientFileError, OAuthClient, configured_client
from colabtray.settings import Settings

READY_VARIABLE = "COLABTRAY_ACCESS_TOKEN"


def not_signed_in() -> str:
    """Nobody is signed in: what to do (the CLI's error, headless's line)."""
    return f"Not signed in. Run '{hints.command('signin')}' (or set {READY_VARIABLE})."


def sign_in_again(email: str | None) -> str:
    """An account gives no tokens any more and must sign in again (its source's own remedy,
    gcloud's or ADC's, is said by the account's problem instead)."""
    if email is None:
        return f"This account needs to sign in again: run '{hints.command('signin')}'."
    again = hints.command("signin", "--account", email)  # Google is told which account
    return f"{email} needs to sign in again: run '{again}' or use the tray."


def other_ways() -> str:
    """The ways to sign in besides colabtray's own, when it has no OAuth client (as pasted:
    with ``--demo`` in the demo, by full path where PATH finds no colabtray)."""
    return (
        f"Sign in another way: '{hints.command('signin', '--gcloud')}' (the Google Cloud "
        f"CLI's sign-in), '{hints.command('signin', '--adc')}' (Application Default "
        f"Credentials), '{hints.command('signin', '--client-file', 'PATH')}' (an OAuth client "
        f"of your own, of type Desktop app), or set {READY_VARIABLE} to a ready access token."
    )


def client_how_to() -> tuple[str, ...]:
    """How to make an OAuth client of one's own, step by step."""
    return (
        "1. In the Google Cloud console, open a project and set up its OAuth consent screen "
        '(user type "External", publishing status "Testing") and add yourself as a test user.',
        '2. Under APIs & Services → Credentials, create an OAuth client ID of type "Desktop app".',
        "3. Download its JSON file and choose it here (or run: "
        f"{hints.command('signin', '--client-file', 'PATH')}).",
    )


@dataclass(frozen=True)
class Methods:
    """The ways to sign in, as found on this machine now."""

    client: OAuthClient | None  # an OAuth client to run colabtray's own sign-in with
    client_problem: str | None  # why the kept client file cannot be used, if so
    gcloud: bool  # gcloud is installed
    gcloud_account: str | None  # gcloud's active account, if it has one
    adc: Path | None  # an Application Default Credentials file
    adc_command: str  # the gcloud command that makes one with the scopes colabtray needs


async def discover(settings: Settings) -> Methods:
    """Look (gcloud is asked for its account, so this may take a second)."""
    try:
        client, problem = configured_client(settings), None
    except ClientFileError as exc:
        client, problem = None, exc.message
    installed = gcloud.find_gcloud() is not None
    account = await gcloud.active_account() if installed else None
    return Methods(client, problem, installed, account, adc_file(), login_hint(settings))


def ways(methods: Methods) -> list[tuple[str, str]]:
    """Each way to sign in: the command, and what it uses (or what it needs first)."""
    found = []
    if methods.client is not None:
        found.append((hints.command("signin"), f"the OAuth client from {methods.client.origin}"))
    if methods.gcloud_account:
        gcloud_note = f"use gcloud, signed in as {methods.gcloud_account}"
    elif methods.gcloud:
        gcloud_note = "use gcloud, after 'gcloud auth login'"
    else:
        gcloud_note = "use gcloud (install the Google Cloud CLI first)"
    found.append((hints.command("signin", "--gcloud"), gcloud_note))
    if methods.adc is not None:
        adc_note = f"use Application Default Credentials ({methods.adc})"
    else:
        adc_note = f"after: {methods.adc_command}"
    found.append((hints.command("signin", "--adc"), adc_note))
    found.append(
        (
            hints.command("signin", "--client-file", "PATH"),
            f"your own OAuth client of type Desktop app, made at {CONSOLE_URL}",
        )
    )
    return found


def choices(methods: Methods) -> list[str]:
    """The ways as command lines with a note each (for ``colabtray signin`` with no way)."""
    found = ways(methods)
    width = max(len(command) for command, _ in found)
    lines = ["How to sign in (choose one):"]
    lines += [f"  {command.ljust(width)}    {note}" for command, note in found]
    lines.append(f"  (or set {READY_VARIABLE} to a ready access token, for scripts)")
    if methods.client_problem:
        lines.append(f"(The kept OAuth client file cannot be used: {methods.client_problem})")
    return lines
