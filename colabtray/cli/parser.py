"""The ``colabtray`` command line: every subcommand, its options and its help."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Each command imports what it needs when it runs: a command the running app carries out
# needs only the control channel, not pydantic, httpx2 or the core (benchmarks/commands.py).
if TYPE_CHECKING:
    pass


log = logging.getLogger("colabtray")


# What people type for TPUs → Colab's model names.


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

    status = _add(commands, "status", help="show the accounts and their runtimes")
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
