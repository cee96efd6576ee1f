"""``signin``, ``signout`` and ``doctor``: the accounts."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from colabtray import hints
from colabtray.colab import errors
from colabtray.text import say

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    pass

from colabtray.cli.place import DemoNotRunningError, Place, browser, new_session, run_command

log = logging.getLogger("colabtray")


def _open_in_browser(url: str) -> None:
    """The platform's standard way; honours $BROWSER. Says where to go if nothing opened."""
    if not browser(url):
        say("Open this URL in your browser to sign in:", url, err=True)


def _print_url(url: str) -> None:
    say("Open this URL in your browser to sign in:", url)


async def signin(args: argparse.Namespace, place: Place) -> int:
    if args.switch:
        await run_command(
            place, "signin", {"how": "switch", "account": args.switch}, demo=args.demo
        )
        say(f"Active account: {args.switch} (new runtimes go to it; every account stays served)")
        return 0
    if args.gcloud:
        reply = await run_command(
            place, "signin", {"how": "gcloud", "account": args.account}, demo=args.demo
        )
        say(f"Signed in as {reply['email']} with gcloud (colabtray asks gcloud for each token).")
        return 0
    if args.adc:
        return await _signin_adc(place, demo=args.demo)
    from colabtray.auth.client_file import configured_client, install_client_file
    from colabtray.auth.methods import choices, discover

    settings = place.settings()
    if args.client_file:
        client = install_client_file(args.client_file, settings.config_dir)
        say(f"Using the OAuth client {client.client_id} (kept in {client.origin}).")
    elif configured_client(settings) is None:
        for line in choices(await discover(settings)):
            say(line, err=True)
        return 2
    if not args.no_browser and await _app_runs(place.config_dir):
        # The running app opens the browser and keeps the sign-in (the demo's in memory).
        say("Waiting for you to sign in with Google in your browser…", err=True)
        reply = await run_command(
            place, "signin", {"how": "browser", "account": args.account}, demo=args.demo
        )
        say(f"Signed in as {reply['email']}.")
        return 0
    if args.demo:
        raise DemoNotRunningError()
    session = new_session(settings)
    email = await session.sign_in(
        _print_url if args.no_browser else _open_in_browser,
        login_hint=args.account or session.active_email,
        wait_seconds=settings.signin_timeout,
        on_waiting=lambda: say(
            "Waiting for you to sign in with Google in your browser (Ctrl-C cancels)…",
            err=True,
        ),
    )
    await _tell_app(place.config_dir)
    where = "the system keyring" if not session.keyring_warning else "memory only"
    say(f"Signed in as {email} (kept in {where}).")
    return 0


async def _app_runs(config_dir: Path) -> bool:
    from colabtray.system import ipc

    try:
        await ipc.request(config_dir, "urls", answer_within=5)
    except ipc.IpcError:
        return False
    return True


async def _tell_app(config_dir: Path) -> None:
    """A sign-in made here: the running app (if any) reads the accounts again at once."""
    from colabtray.system import ipc

    try:
        await ipc.request(config_dir, "signin", {"how": "reload"}, answer_within=10)
    except ipc.IpcError as exc:
        if not isinstance(exc, ipc.NotRunningError):
            log.info("could not tell colabtray about the sign-in: %s", exc.message)


async def _signin_adc(place: Place, *, demo: bool) -> int:
    """Sign in with the ADC file; without one, offer to have gcloud make it."""
    from colabtray.auth.adc import adc_file

    path = adc_file()
    if path is None:
        import asyncio
        import subprocess

        from colabtray.auth.gcloud import adc_login_command, adc_not_made, find_gcloud

        command = adc_login_command(place.settings().oauth_scopes)
        shown = " ".join(command)
        if not (sys.stdin.isatty() and find_gcloud()):
            say(
                f"colabtray: there are no Application Default Credentials; make them with: {shown}",
                err=True,
            )
            return 2
        question = f"No Application Default Credentials. Run '{shown}' now? [Y/n] "
        answer = await asyncio.to_thread(input, question)
        if answer.strip().lower() not in ("", "y", "yes"):
            say(
                "colabtray: not signed in: gcloud was not run. Make the credentials with "
                f"'{shown}' and run '{hints.command('signin', '--adc')}' again, or run "
                f"'{hints.command('signin')}' to see the other ways to sign in.",
                err=True,
            )
            return 2
        # In this terminal: gcloud's own words show (the link to open, where no browser can).
        done = await asyncio.to_thread(subprocess.run, command, check=False)
        path = adc_file()
        if done.returncode != 0 or path is None:
            raise adc_not_made(command, done.returncode)
    reply = await run_command(place, "signin", {"how": "adc", "path": str(path)}, demo=demo)
    say(f"Signed in as {reply['email']} with the Application Default Credentials in {path}.")
    return 0


async def signout(args: argparse.Namespace, place: Place) -> int:
    reply = await run_command(
        place, "signout", {"account": args.account, "all": args.all}, demo=args.demo
    )
    for email, note in reply["signed_out"]:
        say(f"Signed out {email}." + (f" {note}" if note else ""))
    return 0


async def doctor(args: argparse.Namespace, place: Place) -> int:
    from colabtray import doctor as diagnosis
    from colabtray.auth.identities import ReadyToken
    from colabtray.auth.userinfo import fetch_email

    settings = place.settings()
    ready = ReadyToken(settings.access_token.get_secret_value()) if settings.access_token else None
    if ready is not None:
        try:
            ready.email = await fetch_email(settings, ready.token)
        except errors.ColabError as exc:  # the token line says more
            log.info("could not read the account's email: %s", exc.message)
    identity = diagnosis.identity_of(settings, new_session(settings), ready)
    checks = await diagnosis.run_checks(settings, identity)
    if args.json:
        print(diagnosis.as_json(checks))
    else:
        say(*diagnosis.as_text(checks).split("\n"))
    return diagnosis.exit_status(checks)
