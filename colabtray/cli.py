"""The ``colabtray`` command: argument parsing and the subcommands for scripts.

Errors print one sentence to stderr and exit 1; usage errors exit 2. No tracebacks unless
``--verbose`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colabtray import hints
from colabtray.auth.state import AccountState
from colabtray.colab import errors
from colabtray.colab.kinds import CPU, GPU, TPU, kind_label, plan_line, shape_label
from colabtray.errors import UserError
from colabtray.system.dirs import app_dir
from colabtray.text import say

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    from colabtray.core.session import Session
    from colabtray.settings import Settings

log = logging.getLogger("colabtray")

# What people type for TPUs → Colab's model names.
_TPU_ALIASES = {"V5E": "V5E1", "V5E-1": "V5E1", "V6E": "V6E1", "V6E-1": "V6E1", "V2-8": "V28"}

# How long a command may take in the running app before the CLI gives up waiting (seconds):
# an assignment waits for Colab, a sign-in for the person at the browser.
SLOW_COMMAND = 300.0


class DemoNotRunningError(Exception):
    """A ``--demo`` command found no running demo (it never falls back to the real account)."""


class InvalidSettingsError(UserError):
    """A ``COLABTRAY_*`` variable the settings refuse (a usage error: exit status 2)."""


class Place:
    """Where this command's colabtray keeps its files (the demo's own, or the person's), and
    its settings, loaded only when the command does work here: the directories come from the
    environment alone, and a command the running app carries out needs no more than them."""

    def __init__(self, *, demo: bool) -> None:
        kinds = ("config", "state", "log")
        self.dirs = {f"{k}_dir": app_dir(k) / "demo" if demo else app_dir(k) for k in kinds}
        self.config_dir = self.dirs["config_dir"]
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        """All the settings (environment, then the settings file); InvalidSettingsError."""
        if self._settings is None:
            from pydantic import ValidationError

            from colabtray.settings import load_settings

            try:
                self._settings = load_settings(**self.dirs)
            except ValidationError as exc:
                problems = "; ".join(
                    f"COLABTRAY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                    for e in exc.errors()
                )
                raise InvalidSettingsError(f"invalid setting ({problems}).") from None
        return self._settings


class _Version(argparse.Action):
    """``--version``: colabtray's version on stdout, as argparse's own version action prints
    it (``colabtray.__version__``: importlib.metadata would cost a start ~10 ms)."""

    def __init__(self, option_strings: list[str], dest: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from colabtray import __version__

        print(f"colabtray {__version__}")
        parser.exit()


RUNTIME_HELP = 'the runtime: its name as colabtray status shows it ("T4 GPU"), or its endpoint'


def _add(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` begins with a description: the one line the list of
    commands shows for it (as a sentence), unless it has a longer one of its own."""
    kwargs.setdefault("description", f"{help[0].upper()}{help[1:]}.")
    return commands.add_parser(name, help=help, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colabtray",
        description="Google Colab runtimes one click away from any local editor.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
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
    parser.add_argument("--at-login", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="without one, colabtray starts the tray app"
    )

    signin = _add(
        commands,
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

    signout = _add(commands, "signout", help="sign out (revokes and forgets the token)")
    who = signout.add_mutually_exclusive_group()
    who.add_argument("--account", metavar="EMAIL", help="the account (default: the active one)")
    who.add_argument("--all", action="store_true", help="every account")

    status = _add(commands, "status", help="show the account and its runtimes")
    status.add_argument("--json", action="store_true", help="print one JSON object")

    new = _add(commands, "new", help="assign a new runtime")
    kind = new.add_mutually_exclusive_group()
    kind.add_argument("--gpu", metavar="MODEL", help="a GPU runtime: T4, L4, A100, H100…")
    kind.add_argument("--tpu", metavar="MODEL", help="a TPU runtime: v5e, v6e, v2-8…")
    kind.add_argument("--cpu", action="store_true", help="a CPU runtime (the default)")
    new.add_argument(
        "--high-mem", action="store_true", help="a High-RAM machine (Colab Pro and Pro+)"
    )
    new.add_argument(
        "--fallback",
        action="store_true",
        help="if that GPU (or TPU) is not free, try the others your plan has, in turn",
    )
    new.add_argument("--runtime-version", metavar="LABEL", help="a pinned runtime version")
    new.add_argument(
        "--account",
        metavar="EMAIL",
        help="a signed-in account other than the active one (colabtray status lists them)",
    )
    new.add_argument("--json", action="store_true", help="print the new runtime as JSON")

    remove = _add(commands, "remove", help="disconnect a runtime (give it back to Colab)")
    remove.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)

    url = _add(
        commands, "url", help="print a runtime's local Jupyter URL (for VS Code, PyCharm, scripts)"
    )
    url.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)
    url.add_argument(
        "--lab",
        action="store_true",
        help="print the JupyterLab line instead (its secret in the environment, not in argv)",
    )
    colab_page = _add(
        commands,
        "open",
        help="print the link to Colab's web page attached to a runtime",
        description=(
            "Print the link to Colab's web page with a blank notebook attached to the runtime, "
            "built as Google's CLI builds it. Attaching is best-effort: Colab may open a "
            "notebook of its own instead, and its Connect button would then make a new runtime."
        ),
    )
    colab_page.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)
    colab_page.add_argument(
        "-b", "--browser", action="store_true", help="also open it in your web browser"
    )

    secret = _add(
        commands, "secret", help="secrets notebooks read with google.colab.userdata.get(NAME)"
    )
    secret_ops = secret.add_subparsers(
        dest="op", required=True, metavar="OPERATION", help="what to do with secrets"
    )
    setting = _add(
        secret_ops,
        "set",
        help="store a secret (the value from the terminal without echo, or stdin)",
    )
    setting.add_argument("name", metavar="NAME", help="the name notebooks read it by")
    setting.add_argument(
        "--no-ask", action="store_true", help="every runtime may read it without a question"
    )
    _add(secret_ops, "list", help="the secrets' names (never their values)")
    removing = _add(secret_ops, "rm", help="forget a secret")
    removing.add_argument("name", metavar="NAME", help="the secret's name")
    for op, what in (("allow", "let a runtime that asks read"), ("deny", "refuse a runtime")):
        answer = _add(secret_ops, op, help=f"{what} a secret (answers the app's question)")
        answer.add_argument("name", metavar="NAME", help="the secret's name")
        answer.add_argument("runtime", metavar="RUNTIME", help="the runtime that asks, as named")

    keep = _add(
        commands, "keep", help="keep an idle runtime running (answers the app's idle question)"
    )
    keep.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)

    cp = _add(
        commands,
        "cp",
        help='copy files between this machine and a runtime ("T4 GPU:data/x.csv" is a path on it)',
    )
    cp.add_argument("-r", "--recursive", action="store_true", help="copy folders and all in them")
    cp.add_argument("source", metavar="SRC", help="a local path, or NAME:PATH on a runtime")
    cp.add_argument("destination", metavar="DST", help="a local path, or NAME:PATH on a runtime")

    shell = _add(
        commands, "shell", help="a shell on a runtime in this terminal (bash in tmux, as in Colab)"
    )
    shell.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)

    ssh = _add(
        commands,
        "ssh",
        help="ssh into a runtime as root with the system's ssh (or run COMMAND there)",
        description="Log in to a runtime as root with the system's ssh, or run COMMAND there.",
    )
    ssh.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)
    ssh.add_argument(
        "remote_command",
        metavar="COMMAND",
        nargs=argparse.REMAINDER,
        help="a command to run there instead of a login shell (the rest of the line)",
    )
    ssh_proxy = _add(
        commands,
        "ssh-proxy",
        help="ssh's ProxyCommand for a runtime (stdin and stdout are the SSH stream)",
        description="The ProxyCommand ssh runs to reach a runtime (colabtray ssh-config "
        "writes it): stdin and stdout are the SSH stream.",
    )
    ssh_proxy.add_argument("runtime", metavar="NAME_OR_ENDPOINT", help=RUNTIME_HELP)
    ssh_config = _add(
        commands,
        "ssh-config",
        help="write a Host entry per runtime (ssh colab-t4-gpu, VS Code Remote-SSH, rsync)",
    )
    ssh_config.add_argument(
        "--add-include",
        action="store_true",
        help="also put the Include line at the top of ~/.ssh/config",
    )
    for parser_ in (ssh, ssh_proxy, ssh_config):
        parser_.add_argument(
            "-i",
            dest="identity",
            metavar="IDENTITY",
            type=lambda value: Path(value).expanduser(),
            help="the private key (default ~/.ssh/id_ed25519, then ~/.ssh/id_ecdsa)",
        )

    doctor = _add(
        commands,
        "doctor",
        help="check the sign-in, the network and Colab, and say what Google answered",
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object")

    _add(
        commands,
        "emulator",
        help="run the local emulator of Google sign-in and Colab (see: colabtray emulator -h)",
        add_help=False,
    )
    _demo_anywhere(commands)
    return parser


def _demo_anywhere(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``--demo`` after the command too (``colabtray status --demo``), as before it."""
    for name, sub in commands.choices.items():
        if name == "emulator":
            continue
        sub.add_argument(
            "--demo",
            action="store_true",
            default=argparse.SUPPRESS,  # leaves the one before the command as it was
            help="in the running demo (as colabtray --demo COMMAND)",
        )
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _demo_anywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # Imported here: the emulator pulls in Jupyter, which the app itself never needs.
        from colabtray.emulator.__main__ import main as emulator_main

        return emulator_main(argv[1:])

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the app itself is started by colabtray.launch, never from here
        parser.print_help(sys.stderr)
        return 2
    hints.set_demo(args.demo)
    if args.headless:
        say(
            "colabtray: --headless starts the app; run commands without it (they go to the "
            "running app).",
            err=True,
        )
        return 2
    import asyncio

    from colabtray.system.logs import configure_logging

    place = Place(demo=args.demo)
    configure_logging(args.verbose, place.dirs["log_dir"])
    handlers: dict[str, Callable[[argparse.Namespace, Place], Coroutine[Any, Any, int]]] = {
        "signin": _signin,
        "signout": _signout,
        "status": _status,
        "new": _new,
        "remove": _remove,
        "url": _url,
        "open": _open,
        "keep": _keep,
        "secret": _secret,
        "doctor": _doctor,
        "cp": _cp,
        "shell": _shell,
        "ssh": _ssh,
        "ssh-proxy": _ssh_proxy,
        "ssh-config": _ssh_config,
    }
    made = _sessions_made.set([])
    try:
        if args.demo and args.command != "doctor":
            return asyncio.run(_demo_command(args, place, handlers[args.command]))
        return asyncio.run(handlers[args.command](args, place))
    except InvalidSettingsError as exc:
        say(f"colabtray: {exc.message}", err=True)
        return 2
    except UserError as exc:
        say(f"colabtray: {exc.message}", err=True)
        return 1
    except KeyboardInterrupt:
        say("colabtray: cancelled.", err=True)
        return 130
    except BrokenPipeError:  # stdout's reader has gone: launch.main ends quietly
        raise
    except Exception as exc:  # a bug: say so in one line, keep the details for --verbose
        log.debug("unexpected error", exc_info=True)
        say(
            f"colabtray: unexpected {type(exc).__name__}; run again with --verbose for details.",
            err=True,
        )
        return 1
    finally:
        _keyring_warnings(_sessions_made.get())
        _sessions_made.reset(made)


# The sessions of cores this run of a command made (no app was running): whether the keyring
# was usable is known once it was asked, and is said at the end (a list per call of main).
_sessions_made: ContextVar[list[Session]] = ContextVar("sessions_made")


def _session(settings: Settings) -> Session:
    from colabtray.auth.tokens import SecretStore
    from colabtray.core.session import Session

    session = Session(settings, SecretStore())
    _sessions_made.get().append(session)
    return session


def _keyring_warnings(sessions: list[Session]) -> None:
    for warning in dict.fromkeys(s.keyring_warning for s in sessions if s.keyring_warning):
        say(f"colabtray: {warning}", err=True)


async def _command(
    place: Place,
    name: str,
    args: dict[str, Any],
    *,
    demo: bool,
    within: float = SLOW_COMMAND,
) -> dict[str, Any]:
    """Carry out a control command: in the running app if there is one (so the tray, its
    bridge and the CLI agree at once), else on a core made here for this one call; with
    ``demo`` only in the running demo app (DemoNotRunningError otherwise)."""
    from colabtray.system import ipc

    try:
        return await ipc.request(place.config_dir, name, args, answer_within=within)
    except ipc.NotRunningError:
        if demo:
            raise DemoNotRunningError() from None
    except ipc.IpcError as exc:
        raise errors.ColabError(exc.message) from None
    from colabtray.core.commands import carry_out_here

    return await carry_out_here(place.settings(), name, args, cores=_sessions_made.get())


async def _ask_running_app(
    place: Place, name: str, request: dict[str, Any], *, demo: bool, not_running: str
) -> dict[str, Any]:
    """A command only the running app can answer (it holds the URL or the question);
    ``not_running`` is the sentence when there is none."""
    from colabtray.system import ipc

    try:
        return await ipc.request(place.config_dir, name, request)
    except ipc.NotRunningError:
        if demo:
            raise DemoNotRunningError() from None
        raise errors.ColabError(not_running) from None
    except ipc.IpcError as exc:
        raise errors.ColabError(exc.message) from None


async def _demo_command(
    args: argparse.Namespace,
    place: Place,
    handler: Callable[[argparse.Namespace, Place], Awaitable[int]],
) -> int:
    """``colabtray --demo COMMAND``: carried out by the running demo app, or refused."""
    try:
        return await handler(args, place)
    except DemoNotRunningError:
        say(
            "colabtray: the demo is not running, so --demo has nothing to act on (your own "
            f"account is never used with --demo). Start it with '{hints.command()}', then "
            "run this again beside it.",
            err=True,
        )
        return 2


async def _status(args: argparse.Namespace, place: Place) -> int:
    data = await _command(place, "status", {}, demo=args.demo)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    email = (data.get("account") or {}).get("email")
    say(f"Signed in as {email}" if email else "Signed in (account email unknown)")
    for account in data["other_accounts"]:
        note = "sign in again" if account["state"] == AccountState.NEEDS_SIGN_IN else "signed in"
        switch = hints.command("signin", "--switch", account["email"])
        say(f"  also: {account['email']} ({note}; {switch})")
    if not data["runtimes"]:
        say(f"No runtimes. Start one with: {hints.command('new', '--gpu', 'T4')}")
    several = bool(data["other_accounts"])  # then each account's runtimes under its email
    heading = None
    for runtime in data["runtimes"]:
        if several and runtime.get("account") != heading:
            heading = runtime.get("account")
            say(f"{heading or 'Account not known yet'}:")
        url = f"  {runtime['url']}" if runtime["url"] else ""
        say(
            f"  {runtime['name']:<16} {runtime['kind']}, {shape_label(runtime['shape'])}"
            f"  ({runtime['endpoint']}){url}"
        )
        if runtime.get("keep_alive"):  # only the running app keeps runtimes alive
            say(f"  {'':<16} {runtime['keep_alive']['says']}")
    units = data["compute_units"]
    if units:
        say(plan_line(units["tier"]))
    if units and units["rate_per_hour"] is not None:
        hours = units["hours_left"]
        left = f", about {hours:.1f} h left" if hours is not None else ""
        balance = (
            f"{units['balance']:.2f} compute units"
            if units["balance"] is not None
            else "no paid compute units"
        )
        say(f"Compute units: {balance}, using {units['rate_per_hour']:.2f}/h{left}")
    return 0


async def _url(args: argparse.Namespace, place: Place) -> int:
    """The URL is served by the running app's editor bridge: ask it."""
    reply = await _ask_running_app(
        place,
        "url",
        {"runtime": args.runtime},
        demo=args.demo,
        not_running=(
            "colabtray is not running, and connection URLs are served by the running app. "
            f"Start it with '{hints.command()}' (or '{hints.command('--headless')}' where "
            "there is no tray), then try again."
        ),
    )
    print(reply["gateway_command"] if args.lab else reply["url"])
    return 0


async def _open(args: argparse.Namespace, place: Place) -> int:
    """The link alone on stdout, so that it pipes; with --browser it is opened too."""
    reply = await _command(place, "colab_page", {"runtime": args.runtime}, demo=args.demo)
    say(reply["link"])
    if args.browser and not _browser(reply["link"]):
        say("colabtray: no web browser could be opened; open the link above.", err=True)
        return 1
    return 0


async def _secret(args: argparse.Namespace, place: Place) -> int:
    if args.op == "list":
        reply = await _command(place, "secret", {"op": "list"}, demo=args.demo)
        for name, entry in sorted(reply["names"].items()):
            say(f"{name}{'  (no question asked)' if entry['no_ask'] else ''}")
        if not reply["names"]:
            say(f"No secrets. Add one with: {hints.command('secret', 'set', 'NAME')}")
        return 0
    if args.op == "set":
        import asyncio

        value = await asyncio.to_thread(_read_secret_value, args.name)
        request = {"op": "set", "name": args.name, "value": value, "no_ask": args.no_ask}
        reply = await _command(place, "secret", request, demo=args.demo)
        say(f"Stored the secret {args.name} (in {reply['place']}).")
        return 0
    if args.op == "rm":
        await _command(place, "secret", {"op": "remove", "name": args.name}, demo=args.demo)
        say(f"Forgot the secret {args.name}.")
        return 0
    reply = await _ask_running_app(
        place,
        "secret",
        {"op": args.op, "name": args.name, "runtime": args.runtime},
        demo=args.demo,
        not_running="colabtray is not running, so no runtime is waiting for an answer.",
    )
    verb = "may read" if args.op == "allow" else "may not read"
    say(f"{reply['runtime']} {verb} the secret {reply['name']}.")
    return 0


def _read_secret_value(name: str) -> str:
    """The value: typed without echo at a terminal, else all of stdin (one trailing newline
    dropped)."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"Value of {name} (not shown): ")
    value = sys.stdin.read()
    return value[:-1] if value.endswith("\n") else value


async def _keep(args: argparse.Namespace, place: Place) -> int:
    """Answer the running app's idle question: keep the runtime."""
    reply = await _ask_running_app(
        place,
        "keep",
        {"runtime": args.runtime},
        demo=args.demo,
        not_running="colabtray is not running, so no idle question is waiting for an answer.",
    )
    say(f"Keeping {reply['name']} running.")
    return 0


def _requested_kind(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.gpu:
        return GPU, args.gpu.strip().upper()
    if args.tpu:
        model = args.tpu.strip().upper()
        return TPU, _TPU_ALIASES.get(model, model)
    return CPU, None


async def _new(args: argparse.Namespace, place: Place) -> int:
    variant, accelerator = _requested_kind(args)
    runtime = await _command(
        place,
        "new",
        {
            "variant": variant,
            "accelerator": accelerator,
            "high_mem": args.high_mem,
            "runtime_version": args.runtime_version,
            "fallback": args.fallback,
            "account": args.account,
        },
        demo=args.demo,
    )
    if args.json:
        print(json.dumps(runtime, indent=2))
        return 0
    not_free = [kind_label(variant, model) for model in runtime.get("not_free") or ()]
    if not_free:
        verb = "was" if len(not_free) == 1 else "were"
        say(f"{' and '.join(not_free)} {verb} not free; assigned {runtime['kind']} instead.")
    shape = shape_label(runtime["shape"])
    say(f"Assigned {runtime['name']} ({shape}): {runtime['endpoint']}")
    if runtime["url"]:
        say(f"Editors connect to: {runtime['url']}")
    return 0


async def _remove(args: argparse.Namespace, place: Place) -> int:
    gone = await _command(place, "remove", {"runtime": args.runtime}, demo=args.demo)
    say(f"Disconnected {gone['name']} ({gone['endpoint']}).")
    return 0


def _browser(url: str) -> bool:
    """Open ``url`` the platform's standard way (honours $BROWSER); whether one opened."""
    import webbrowser

    return webbrowser.open(url)


def _open_in_browser(url: str) -> None:
    """The platform's standard way; honours $BROWSER. Says where to go if nothing opened."""
    if not _browser(url):
        say("Open this URL in your browser to sign in:", url, err=True)


def _print_url(url: str) -> None:
    say("Open this URL in your browser to sign in:", url)


async def _signin(args: argparse.Namespace, place: Place) -> int:
    if args.switch:
        await _command(place, "signin", {"how": "switch", "account": args.switch}, demo=args.demo)
        say(f"Active account: {args.switch}")
        return 0
    if args.gcloud:
        reply = await _command(
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
        reply = await _command(
            place, "signin", {"how": "browser", "account": args.account}, demo=args.demo
        )
        say(f"Signed in as {reply['email']}.")
        return 0
    if args.demo:
        raise DemoNotRunningError()
    session = _session(settings)
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

        from colabtray.auth.gcloud import adc_login_command, find_gcloud

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
        done = await asyncio.to_thread(subprocess.run, command, check=False)
        path = adc_file()
        if done.returncode != 0 or path is None:
            raise errors.ColabError("gcloud did not make Application Default Credentials.")
    reply = await _command(place, "signin", {"how": "adc", "path": str(path)}, demo=demo)
    say(f"Signed in as {reply['email']} with the Application Default Credentials in {path}.")
    return 0


async def _cp(args: argparse.Namespace, place: Place) -> int:
    """Files both ways between this machine and a runtime (colabtray.tools.copy)."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools.copy import CopyUsageError, copy

    async def ask(name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await _command(place, name, request, demo=args.demo)

    try:
        await copy(settings, args.source, args.destination, recursive=args.recursive, ask=ask)
    except CopyUsageError as exc:
        say(f"colabtray: {exc.message}", err=True)
        return 2
    return 0


async def _trusting_as_the_app(place: Place) -> Settings:
    """The settings a tool reaches a runtime with: the running app's extra certificate
    authorities, if it has any (the demo's runtimes), as the tool acts for it."""
    from colabtray.system import ipc

    settings = place.settings()
    try:
        reply = await ipc.request(place.config_dir, "trust", answer_within=10)
    except ipc.IpcError:  # no app (the tool then asks a core made here), or an older one
        return settings
    ca_file = reply.get("ca_file")
    if not ca_file or settings.ca_file == Path(ca_file):
        return settings
    return settings.model_copy(update={"ca_file": Path(ca_file)})


async def _shell(args: argparse.Namespace, place: Place) -> int:
    """This terminal connected to a shell on a runtime (colabtray.tools.terminal)."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools import terminal

    return await terminal.shell(settings, args.runtime, _asker(args, place))


def _asker(args: argparse.Namespace, place: Place) -> Any:
    async def ask(name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await _command(place, name, request, demo=args.demo)

    return ask


async def _ssh(args: argparse.Namespace, place: Place) -> int:
    """The system's ssh to a runtime (colabtray.tools.ssh)."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools import ssh

    return await ssh.ssh(
        settings,
        args.runtime,
        args.identity,
        args.remote_command,
        _asker(args, place),
        demo=args.demo,
    )


async def _ssh_proxy(args: argparse.Namespace, place: Place) -> int:
    """ssh's ProxyCommand: stdout is the SSH stream, so logs go to stderr only with -v."""
    settings = await _trusting_as_the_app(place)
    from colabtray.tools import ssh

    if not args.verbose:
        for handler in logging.getLogger().handlers:
            if getattr(handler, "stream", None) is sys.stderr:
                handler.setLevel(logging.CRITICAL + 1)
    return await ssh.proxy(settings, args.runtime, args.identity, _asker(args, place))


async def _ssh_config(args: argparse.Namespace, place: Place) -> int:
    """Host entries for every runtime, in a file of their own."""
    from colabtray.tools import ssh

    path, include, added, problem = await ssh.ssh_config(
        place.settings(), args.identity, _asker(args, place), add=args.add_include, demo=args.demo
    )
    say(f"Wrote {path}: one Host entry per runtime (ssh colab-NAME), kept up to date.")
    if added:
        say(f"Added '{include}' at the top of ~/.ssh/config.")
    elif args.add_include:
        say(f"~/.ssh/config has '{include}' already.")
    else:
        say("Add this line at the top of ~/.ssh/config (or run with --add-include):", include)
    if problem:
        say(f"colabtray: {problem}", err=True)
    return 0


async def _doctor(args: argparse.Namespace, place: Place) -> int:
    from colabtray import doctor
    from colabtray.auth.identities import ReadyToken
    from colabtray.auth.userinfo import fetch_email

    settings = place.settings()
    ready = ReadyToken(settings.access_token.get_secret_value()) if settings.access_token else None
    if ready is not None:
        try:
            ready.email = await fetch_email(settings, ready.token)
        except errors.ColabError as exc:  # the token line says more
            log.info("could not read the account's email: %s", exc.message)
    identity = doctor.identity_of(settings, _session(settings), ready)
    checks = await doctor.run_checks(settings, identity)
    if args.json:
        print(doctor.as_json(checks))
    else:
        say(*doctor.as_text(checks).split("\n"))
    return doctor.exit_status(checks)


async def _signout(args: argparse.Namespace, place: Place) -> int:
    reply = await _command(
        place, "signout", {"account": args.account, "all": args.all}, demo=args.demo
    )
    for email, note in reply["signed_out"]:
        say(f"Signed out {email}." + (f" {note}" if note else ""))
    return 0
