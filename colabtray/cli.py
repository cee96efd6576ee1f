"""The ``colabtray`` command: argument parsing and the subcommands for scripts.

Errors print one sentence to stderr and exit 1; usage errors exit 2. No tracebacks unless
``--verbose`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import webbrowser
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from colabtray import __version__
from colabtray.auth.adc import adc_file
from colabtray.auth.client_file import configured_client, install_client_file
from colabtray.auth.errors import NotSignedInError
from colabtray.auth.gcloud import adc_login_command, find_gcloud
from colabtray.auth.methods import choices, discover
from colabtray.auth.tokens import SecretStore
from colabtray.auth.userinfo import fetch_email
from colabtray.colab import errors
from colabtray.colab.client import ColabClient, StaticToken, TokenSource
from colabtray.colab.models import CPU, GPU, HIGH_MEM, TPU, ComputeUnits, Runtime
from colabtray.core.naming import RuntimeNames, kind_label, shape_label
from colabtray.core.session import AccountState, Session
from colabtray.logs import configure_logging
from colabtray.settings import Settings, load_settings

log = logging.getLogger("colabtray")

# What people type for TPUs → Colab's model names.
_TPU_ALIASES = {"V5E": "V5E1", "V5E-1": "V5E1", "V6E": "V6E1", "V6E-1": "V6E1", "V2-8": "V28"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colabtray",
        description="Google Colab runtimes one click away from any local editor.",
    )
    parser.add_argument("--version", action="version", version=f"colabtray {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    # Without a COMMAND, colabtray runs the tray app (colabtray.launch starts it quickly).
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against a local emulator of Google and Colab (nothing of yours is touched)",
    )
    parser.add_argument(
        "--headless", action="store_true", help="run the app without any UI (until SIGTERM)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    signin = commands.add_parser(
        "signin",
        help="sign in with Google (your OAuth client, gcloud, or Application Default Credentials)",
    )
    way = signin.add_mutually_exclusive_group()
    way.add_argument(
        "--client-file",
        metavar="PATH",
        type=lambda value: Path(value).expanduser(),
        help="sign in with your own OAuth client: its JSON file from the Google Cloud console",
    )
    way.add_argument("--gcloud", action="store_true", help="use the Google Cloud CLI's sign-in")
    way.add_argument("--adc", action="store_true", help="use Application Default Credentials")
    way.add_argument(
        "--switch", metavar="EMAIL", help="make an account that is signed in already active"
    )
    signin.add_argument(
        "--no-browser", action="store_true", help="print the sign-in URL instead of opening it"
    )
    signin.add_argument(
        "--account",
        metavar="EMAIL",
        help="suggest this account to Google (with --gcloud: gcloud's account to use)",
    )

    signout = commands.add_parser("signout", help="sign out (revokes and forgets the token)")
    who = signout.add_mutually_exclusive_group()
    who.add_argument("--account", metavar="EMAIL", help="the account (default: the active one)")
    who.add_argument("--all", action="store_true", help="every account")

    status = commands.add_parser("status", help="show the account and its runtimes")
    status.add_argument("--json", action="store_true", help="print one JSON object")

    new = commands.add_parser("new", help="assign a new runtime")
    kind = new.add_mutually_exclusive_group()
    kind.add_argument("--gpu", metavar="MODEL", help="a GPU runtime: T4, L4, A100, H100…")
    kind.add_argument("--tpu", metavar="MODEL", help="a TPU runtime: v5e, v6e, v2-8…")
    kind.add_argument("--cpu", action="store_true", help="a CPU runtime (the default)")
    new.add_argument("--high-mem", action="store_true", help="a High-RAM machine (paid tiers)")
    new.add_argument("--runtime-version", metavar="LABEL", help="a pinned runtime version")
    new.add_argument("--json", action="store_true", help="print the new runtime as JSON")

    remove = commands.add_parser("remove", help="disconnect a runtime (give it back to Colab)")
    remove.add_argument("runtime", metavar="NAME_OR_ENDPOINT")

    url = commands.add_parser(
        "url", help="print a runtime's local Jupyter URL (for VS Code, PyCharm, scripts)"
    )
    url.add_argument("runtime", metavar="NAME_OR_ENDPOINT")
    url.add_argument(
        "--lab", action="store_true", help="print the 'jupyter lab --gateway-url=…' command instead"
    )

    doctor = commands.add_parser(
        "doctor", help="check the sign-in, the network and Colab, and say what Google answered"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object")

    commands.add_parser(
        "emulator",
        help="run the local emulator of Google sign-in and Colab (see: colabtray emulator -h)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # Imported here: the emulator pulls in Jupyter, which the app itself never needs.
        from colabtray.emulator.__main__ import main as emulator_main

        return emulator_main(argv[1:])

    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"COLABTRAY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        print(f"colabtray: invalid setting ({problems}).", file=sys.stderr)
        return 2
    configure_logging(args.verbose, settings.log_dir)
    handlers: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
        "signin": _signin,
        "signout": _signout,
        "status": _status,
        "new": _new,
        "remove": _remove,
        "url": _url,
        "doctor": _doctor,
    }
    if args.command is None:
        from colabtray.launch import run_app

        return run_app(demo=args.demo, headless=args.headless, verbose=args.verbose)
    _sessions.clear()
    try:
        return asyncio.run(handlers[args.command](args, settings))
    except errors.ColabError as exc:
        print(f"colabtray: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("colabtray: cancelled.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line, keep the details for --verbose
        log.debug("unexpected error", exc_info=True)
        print(
            f"colabtray: unexpected {type(exc).__name__}; run again with --verbose for details.",
            file=sys.stderr,
        )
        return 1
    finally:
        _keyring_warnings()


# Sessions this command opened: whether the keyring was usable is known once it was asked.
_sessions: list[Session] = []


def _session(settings: Settings) -> Session:
    session = Session(settings, SecretStore())
    _sessions.append(session)
    return session


def _keyring_warnings() -> None:
    for warning in dict.fromkeys(s.keyring_warning for s in _sessions if s.keyring_warning):
        print(f"colabtray: {warning}", file=sys.stderr)


def _tokens(settings: Settings) -> TokenSource:
    """COLABTRAY_ACCESS_TOKEN if set, else the active signed-in account."""
    if settings.access_token is not None:
        return StaticToken(settings.access_token.get_secret_value())
    session = _session(settings)
    if session.active_email is None:
        raise NotSignedInError()
    return session


def _client(settings: Settings, tokens: TokenSource | None = None) -> ColabClient:
    return ColabClient(settings, tokens or _tokens(settings))


def _names(settings: Settings) -> RuntimeNames:
    return RuntimeNames(settings.state_dir / "runtime-names.json")


def runtime_json(runtime: Runtime, name: str, url: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": runtime.endpoint,
        "variant": runtime.variant,
        "accelerator": runtime.accelerator,
        "shape": runtime.shape,
        "kind": kind_label(runtime.variant, runtime.accelerator),
        "runtime_version": runtime.runtime_version,
        "url": url,  # the editor bridge's, while the app runs
    }


def compute_units_json(units: ComputeUnits) -> dict[str, Any]:
    return {
        "tier": units.tier,
        "balance": units.balance,
        "rate_per_hour": units.rate_per_hour,
        "hours_left": units.hours_left,
        "free_remaining": units.free_remaining,
        "assignments": units.assignments,
    }


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    tokens = _tokens(settings)
    async with _client(settings, tokens) as client:
        runtimes = await client.list_assignments()
        if isinstance(tokens, Session):
            email = tokens.active_email
            others = [a for a in tokens.accounts() if not a.active]
        else:
            email = await _email_of_static_token(settings, tokens)
            others = []
        units: ComputeUnits | None
        try:
            units = await client.compute_units()
        except errors.SignedOutError:
            raise
        except errors.ColabError as exc:
            log.warning("could not read compute units: %s", exc.message)
            units = None
    names = _names(settings).sync(runtimes)
    if args.json:
        urls = await _bridge_urls(settings)
        print(
            json.dumps(
                {
                    "account": {"email": email} if email else None,
                    "other_accounts": [{"email": a.email, "state": str(a.state)} for a in others],
                    "runtimes": [
                        runtime_json(r, names[r.endpoint], urls.get(r.endpoint)) for r in runtimes
                    ],
                    "compute_units": compute_units_json(units) if units else None,
                },
                indent=2,
            )
        )
        return 0
    print(f"Signed in as {email}" if email else "Signed in (account email unknown)")
    for account in others:
        note = "sign in again" if account.state == AccountState.NEEDS_SIGN_IN else "signed in"
        print(f"  also: {account.email} ({note}; colabtray signin --switch {account.email})")
    if not runtimes:
        print("No runtimes. Start one with: colabtray new --gpu T4")
    for runtime in runtimes:
        print(
            f"  {names[runtime.endpoint]:<16} "
            f"{kind_label(runtime.variant, runtime.accelerator)}, {shape_label(runtime.shape)}"
            f"  ({runtime.endpoint})"
        )
    if units and units.rate_per_hour is not None:
        left = f", about {units.hours_left:.1f} h left" if units.hours_left is not None else ""
        balance = f"{units.balance:.2f} compute units" if units.balance is not None else "free tier"
        print(f"Compute units: {balance}, using {units.rate_per_hour:.2f}/h{left}")
    return 0


async def _bridge_urls(settings: Settings) -> dict[str, str]:
    """endpoint → URL from the running app's editor bridge; empty if no app runs."""
    from colabtray import ipc

    try:
        reply = await ipc.request(settings.config_dir, "urls", answer_within=3)
    except ipc.IpcError as exc:
        if not isinstance(exc, ipc.NotRunningError):
            log.info("could not ask colabtray for the connection URLs: %s", exc.message)
        return {}
    runtimes = reply.get("runtimes")
    if not isinstance(runtimes, dict):
        return {}
    return {
        endpoint: entry["url"]
        for endpoint, entry in runtimes.items()
        if isinstance(entry, dict) and isinstance(entry.get("url"), str)
    }


async def _url(args: argparse.Namespace, settings: Settings) -> int:
    """The URL is served by the running app's editor bridge: ask it."""
    from colabtray import ipc

    try:
        reply = await ipc.request(settings.config_dir, "url", {"runtime": args.runtime})
    except ipc.NotRunningError:
        raise errors.ColabError(
            "colabtray is not running, and connection URLs are served by the running app. "
            "Start it with 'colabtray' (or 'colabtray --headless' where there is no tray), "
            "then try again."
        ) from None
    except ipc.IpcError as exc:
        raise errors.ColabError(exc.message) from None
    print(reply["gateway_command"] if args.lab else reply["url"])
    return 0


def _requested_kind(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.gpu:
        return GPU, args.gpu.strip().upper()
    if args.tpu:
        model = args.tpu.strip().upper()
        return TPU, _TPU_ALIASES.get(model, model)
    return CPU, None


async def _new(args: argparse.Namespace, settings: Settings) -> int:
    variant, accelerator = _requested_kind(args)
    wanted = kind_label(variant, accelerator)
    async with _client(settings) as client:
        try:
            eligibility = await client.eligibility()
        except errors.SignedOutError:
            raise
        except errors.ColabError as exc:  # let the backend decide; it has the last word
            log.warning("could not read what this account may have: %s", exc.message)
            eligibility = None
        if eligibility is not None:
            if not eligibility.may_have(variant, accelerator):
                offered = ", ".join(eligibility.eligible.get(variant, ())) or "none"
                raise errors.ColabError(
                    f"This account may not have a {wanted} runtime "
                    f"({variant} models it may have: {offered})."
                )
            if args.high_mem and HIGH_MEM not in eligibility.shapes_for(accelerator):
                raise errors.ColabError("High-RAM machines need a paid Colab plan (Pro or Pro+).")
        result = await client.assign(
            variant, accelerator, high_mem=args.high_mem, runtime_version=args.runtime_version
        )
    runtime = result.runtime
    name = _names(settings).name_of(runtime)
    if args.json:
        print(json.dumps(runtime_json(runtime, name), indent=2))
    else:
        print(f"Assigned {name} ({shape_label(runtime.shape)}): {runtime.endpoint}")
    return 0


async def _remove(args: argparse.Namespace, settings: Settings) -> int:
    names = _names(settings)
    async with _client(settings) as client:
        runtimes = await client.list_assignments()
        runtime = names.find(args.runtime, runtimes)
        if runtime is None:
            known = ", ".join(names.sync(runtimes).values()) or "none"
            raise errors.ColabError(f"No runtime named {args.runtime!r} (runtimes: {known}).")
        name = names.name_of(runtime)
        await _close_sessions(client, runtime)
        await client.unassign(runtime.endpoint)
    names.sync([r for r in runtimes if r.endpoint != runtime.endpoint])
    print(f"Disconnected {name} ({runtime.endpoint}).")
    return 0


async def _close_sessions(client: ColabClient, runtime: Runtime) -> None:
    """Best effort, as Google's extension does: attached notebooks then disconnect at once."""
    try:
        for session in await client.sessions(runtime):
            await client.delete_session(runtime, session.id)
    except errors.ColabError as exc:
        log.info("could not close the sessions on %s first: %s", runtime.endpoint, exc.message)


async def _email_of_static_token(settings: Settings, tokens: StaticToken) -> str | None:
    try:
        return await fetch_email(settings, tokens.token)
    except errors.SignedOutError:
        raise
    except errors.ColabError as exc:
        log.warning("could not read the account's email: %s", exc.message)
        return None


def _open_in_browser(url: str) -> None:
    """The platform's standard way; honours $BROWSER. Says where to go if nothing opened."""
    if not webbrowser.open(url):
        print(f"Open this URL in your browser to sign in:\n{url}", file=sys.stderr)


def _print_url(url: str) -> None:
    print(f"Open this URL in your browser to sign in:\n{url}", flush=True)


async def _signin(args: argparse.Namespace, settings: Settings) -> int:
    session = _session(settings)
    if args.switch:
        session.switch(args.switch)
        print(f"Active account: {args.switch}")
        return 0
    if args.gcloud:
        email = await session.sign_in_gcloud(args.account)
        print(f"Signed in as {email} with gcloud (colabtray asks gcloud for each token).")
        return 0
    if args.adc:
        return await _signin_adc(session, settings)
    if args.client_file:
        client = install_client_file(args.client_file, settings.config_dir)
        print(f"Using the OAuth client {client.client_id} (kept in {client.origin}).")
    elif configured_client(settings) is None:
        for line in choices(await discover(settings)):
            print(line, file=sys.stderr)
        return 2
    hint = args.account or session.active_email
    email = await session.sign_in(
        _print_url if args.no_browser else _open_in_browser,
        login_hint=hint,
        wait_seconds=settings.signin_timeout,
        on_waiting=lambda: print(
            "Waiting for you to sign in with Google in your browser (Ctrl-C cancels)…",
            file=sys.stderr,
        ),
    )
    where = "the system keyring" if not session.keyring_warning else "memory only"
    print(f"Signed in as {email} (kept in {where}).")
    return 0


async def _signin_adc(session: Session, settings: Settings) -> int:
    """Sign in with the ADC file; without one, offer to have gcloud make it."""
    path = adc_file()
    if path is None:
        command = adc_login_command(settings.oauth_scopes)
        shown = " ".join(command)
        if not (sys.stdin.isatty() and find_gcloud()):
            print(
                f"colabtray: there are no Application Default Credentials; make them with: {shown}",
                file=sys.stderr,
            )
            return 2
        answer = await asyncio.to_thread(
            input, f"No Application Default Credentials. Run '{shown}' now? [Y/n] "
        )
        if answer.strip().lower() not in ("", "y", "yes"):
            return 2
        done = await asyncio.to_thread(subprocess.run, command, check=False)
        path = adc_file()
        if done.returncode != 0 or path is None:
            raise errors.ColabError("gcloud did not make Application Default Credentials.")
    email = await session.sign_in_adc(path)
    print(f"Signed in as {email} with the Application Default Credentials in {path}.")
    return 0


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from colabtray import doctor

    ready = StaticToken(settings.access_token.get_secret_value()) if settings.access_token else None
    email = await _email_of_static_token(settings, ready) if ready is not None else None
    identity = doctor.identity_of(settings, _session(settings), ready, email)
    checks = await doctor.run_checks(settings, identity)
    print(doctor.as_json(checks) if args.json else doctor.as_text(checks))
    return doctor.exit_status(checks)


async def _signout(args: argparse.Namespace, settings: Settings) -> int:
    session = _session(settings)
    gone = await session.sign_out(args.account, everyone=args.all)
    if not gone:
        raise NotSignedInError()
    for email, note in gone:
        print(f"Signed out {email}." + (f" {note}" if note else ""))
    return 0
