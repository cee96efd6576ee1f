"""The ``colabtray`` command: argument parsing and the subcommands for scripts.

Errors print one sentence to stderr and exit 1; usage errors exit 2. No tracebacks unless
``--verbose`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from colabtray import __version__
from colabtray.auth.userinfo import fetch_email
from colabtray.colab import errors
from colabtray.colab.client import ColabClient, StaticToken
from colabtray.colab.models import CPU, GPU, HIGH_MEM, TPU, ComputeUnits, Runtime
from colabtray.core.naming import RuntimeNames, kind_label, shape_label
from colabtray.settings import Settings, load_settings

log = logging.getLogger("colabtray")

# What people type for TPUs → Colab's model names.
_TPU_ALIASES = {"V5E": "V5E1", "V5E-1": "V5E1", "V6E": "V6E1", "V6E-1": "V6E1", "V2-8": "V28"}


class NotSignedInError(errors.ColabError):
    def __init__(self) -> None:
        super().__init__(
            "Not signed in. Set COLABTRAY_ACCESS_TOKEN to a Google access token "
            "(or run 'colabtray emulator' and export the lines it prints)."
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colabtray",
        description="Google Colab runtimes one click away from any local editor.",
    )
    parser.add_argument("--version", action="version", version=f"colabtray {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # each retry is logged as a warning; the final error says enough
        logging.getLogger("stamina").setLevel(logging.ERROR)
    handlers: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
        "status": _status,
        "new": _new,
        "remove": _remove,
    }
    if args.command is None:
        print(
            "The tray is not built yet. Try 'colabtray status', 'colabtray new' or "
            "'colabtray --help'.",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_settings()
        return asyncio.run(handlers[args.command](args, settings))
    except errors.ColabError as exc:
        print(f"colabtray: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line, keep the details for --verbose
        log.debug("unexpected error", exc_info=True)
        print(
            f"colabtray: unexpected {type(exc).__name__}; run again with --verbose for details.",
            file=sys.stderr,
        )
        return 1


def _client(settings: Settings) -> ColabClient:
    if settings.access_token is None:
        raise NotSignedInError()
    return ColabClient(settings, StaticToken(settings.access_token.get_secret_value()))


def _names(settings: Settings) -> RuntimeNames:
    return RuntimeNames(settings.state_dir / "runtime-names.json")


def runtime_json(runtime: Runtime, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": runtime.endpoint,
        "variant": runtime.variant,
        "accelerator": runtime.accelerator,
        "shape": runtime.shape,
        "kind": kind_label(runtime.variant, runtime.accelerator),
        "runtime_version": runtime.runtime_version,
        "url": None,  # the editor bridge fills this in once it exists
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
    async with _client(settings) as client:
        runtimes = await client.list_assignments()
        email: str | None
        try:
            assert settings.access_token is not None
            email = await fetch_email(settings, settings.access_token.get_secret_value())
        except errors.SignedOutError:
            raise
        except errors.ColabError as exc:
            log.warning("could not read the account's email: %s", exc.message)
            email = None
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
        print(
            json.dumps(
                {
                    "account": {"email": email} if email else None,
                    "runtimes": [runtime_json(r, names[r.endpoint]) for r in runtimes],
                    "compute_units": compute_units_json(units) if units else None,
                },
                indent=2,
            )
        )
        return 0
    print(f"Signed in as {email}" if email else "Signed in (account email unknown)")
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
