"""The emulator's command-line options, parsed into one immutable object."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field
from typing import NamedTuple

from colabtray.emulator.catalog import TIERS, Tier
from colabtray.emulator.tokens import normalize_scopes


class AccountSpec(NamedTuple):
    """An account as ``--account`` names it. ``paid_balance`` None: the tier's usual start
    (0 for free); a number makes e.g. a Pro plan with no units left, or a free account that
    bought pay-as-you-go units."""

    email: str
    tier: Tier
    paid_balance: float | None = None

    def __str__(self) -> str:
        balance = "" if self.paid_balance is None else f":{self.paid_balance:g}"
        return f"{self.email}:{self.tier}{balance}"


DEFAULT_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec("ada@example.com", "pro"),
    AccountSpec("free@example.com", "free"),
    AccountSpec("plus@example.com", "pro_plus"),
)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator is told at start; run-time changes go through the admin API."""

    host: str = "127.0.0.1"
    port: int = 0
    idle_timeout: float = 5400.0
    proxy_token_ttl: float = 3600.0
    access_token_ttl: float = 3600.0
    auto_approve: bool = False
    fault_rate: float = 0.0
    latency: float = 0.0
    max_runtimes: int | None = None
    tls: bool = False
    ssh: bool = True  # runtimes answer /colab/ssh (Colab decides that when it makes one)
    # Whether Colab's public API (v1beta, on an allowlist) lets this OAuth client in.
    public_api: bool = False
    # Scopes of the ready-made access token it exports; None: every scope it knows.
    token_scopes: tuple[str, ...] | None = None
    # The first one is the default account.
    accounts: tuple[AccountSpec, ...] = field(default=DEFAULT_ACCOUNTS)


def _loopback_host(value: str) -> str:
    if value == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an IP address") from None
    if not address.is_loopback:
        raise argparse.ArgumentTypeError(f"{value} is not a loopback address; refusing to listen")
    return str(address)


def _scopes(value: str) -> tuple[str, ...]:
    scopes = normalize_scopes(value)
    if scopes is None:
        raise argparse.ArgumentTypeError(f"unknown or no scopes in {value!r}")
    return scopes


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _rate(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def _account(value: str) -> AccountSpec:
    """``EMAIL[:TIER[:PAID_BALANCE]]``."""
    email, _, rest = value.partition(":")
    tier, _, balance = rest.partition(":")
    tier = tier or "pro"
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise argparse.ArgumentTypeError(f"{email!r} is not an e-mail address")
    if tier not in TIERS:
        raise argparse.ArgumentTypeError(f"tier must be one of {', '.join(TIERS)}")
    return AccountSpec(email.lower(), tier, _balance(balance) if balance else None)


def _balance(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"paid balance {value!r} is not a number") from None
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError("paid balance must be a number of units, 0 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colabtray emulator",
        description=(
            "Local stand-in for Google sign-in and the Colab backend; its runtimes are real "
            "Jupyter servers. Prints `export NAME=value` lines for colabtray, then "
            "'# colabtray emulator ready', and runs until SIGINT/SIGTERM."
        ),
    )
    parser.add_argument(
        "--host",
        type=_loopback_host,
        default="127.0.0.1",
        help="loopback address to listen on (default 127.0.0.1)",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--idle-timeout",
        type=_positive,
        default=5400.0,
        metavar="SECONDS",
        help="reclaim a runtime after this long without keep-alive (5400)",
    )
    parser.add_argument(
        "--proxy-token-ttl",
        type=_positive,
        default=3600.0,
        metavar="SECONDS",
        help="lifetime of runtime proxy tokens (3600)",
    )
    parser.add_argument(
        "--access-token-ttl",
        type=_positive,
        default=3600.0,
        metavar="SECONDS",
        help="lifetime of issued access tokens (3600)",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="consent pages approve at once for the default account",
    )
    parser.add_argument(
        "--fault-rate",
        type=_rate,
        default=0.0,
        metavar="FLOAT",
        help="share of backend requests answered 500/503 (0)",
    )
    parser.add_argument(
        "--latency",
        type=_non_negative,
        default=0.0,
        metavar="SECONDS",
        help="delay added to backend requests (0)",
    )
    parser.add_argument(
        "--max-runtimes",
        type=int,
        default=None,
        metavar="N",
        help="runtimes per account, overriding the tier's limit",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="runtime proxies speak HTTPS, as Colab's do, with a self-signed certificate "
        "that the COLABTRAY_CA_FILE export names",
    )
    parser.add_argument(
        "--no-ssh",
        action="store_true",
        help="runtimes without SSH (/colab/ssh answers 404, as Colab's do when SSH is off)",
    )
    parser.add_argument(
        "--public-api",
        choices=("allowed", "denied"),
        default="denied",
        help="whether Colab's public API (v1beta) lets this OAuth client in; 'denied' "
        "(default) answers 403 PERMISSION_DENIED, as Google does for clients off its allowlist",
    )
    parser.add_argument(
        "--token-scopes",
        type=_scopes,
        default=None,
        metavar='"SCOPE …"',
        help="scopes of the ready-made COLABTRAY_ACCESS_TOKEN (default: all), e.g. 'openid' "
        "for a token Colab refuses",
    )
    parser.add_argument(
        "--account",
        type=_account,
        action="append",
        default=None,
        metavar="EMAIL[:free|pro|pro_plus[:PAID_BALANCE]]",
        help="an account (repeatable; the first is the default), its plan and paid compute "
        "units (default: the plan's usual start; e.g. x@example.com:pro:0 has a plan and no "
        "units, y@example.com:free:50 bought units without a plan); default accounts: "
        + ", ".join(map(str, DEFAULT_ACCOUNTS)),
    )
    return parser


def parse_config(argv: list[str] | None) -> EmulatorConfig:
    """Parse the command line; exits with status 2 on bad options (argparse's convention)."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.max_runtimes is not None and ns.max_runtimes < 0:
        parser.error("--max-runtimes must not be negative")
    accounts = tuple(ns.account) if ns.account else DEFAULT_ACCOUNTS
    if len({spec.email for spec in accounts}) != len(accounts):
        parser.error("each --account must be listed once")
    return EmulatorConfig(
        host=ns.host,
        port=ns.port,
        idle_timeout=ns.idle_timeout,
        proxy_token_ttl=ns.proxy_token_ttl,
        access_token_ttl=ns.access_token_ttl,
        auto_approve=ns.auto_approve,
        fault_rate=ns.fault_rate,
        latency=ns.latency,
        max_runtimes=ns.max_runtimes,
        tls=ns.tls,
        ssh=not ns.no_ssh,
        public_api=ns.public_api == "allowed",
        token_scopes=ns.token_scopes,
        accounts=accounts,
    )
