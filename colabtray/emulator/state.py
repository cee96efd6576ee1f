"""Everything the emulated Google remembers: accounts, runtimes, XSRF tickets, consents.

Plain objects mutated from the one asyncio loop; no locking beyond what the callers need
around awaits (see ``runtimes.RuntimeManager``).
"""

from __future__ import annotations

import hashlib
import secrets
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colabtray.emulator.catalog import (
    FREE_QUOTA_MILLI,
    FREE_REFILL_SECONDS,
    TIER_INFO,
    Accelerator,
    Tier,
)
from colabtray.emulator.config import EmulatorConfig
from colabtray.emulator.tokens import CLIENT_SECRET_PREFIX, TokenStore

XSRF_TTL = 3600.0
CONSENT_TTL = 600.0


def _display_name(email: str) -> str:
    known = {"ada@example.com": "Ada Lovelace", "free@example.com": "Fran Free"}
    if email in known:
        return known[email]
    local = email.split("@", 1)[0].replace(".", " ").replace("_", " ")
    return local.title() or email


@dataclass
class Account:
    """One Google account and its Colab subscription."""

    email: str
    tier: Tier
    name: str = ""
    id: str = ""
    max_runtimes: int | None = None  # per-account override (admin)
    quota_outcome: int | None = None  # 1 or 2: assign answers that outcome (admin)
    denylisted: bool = False
    paid_balance: float | None = None  # None: the tier's usual start
    free_milli: float = float(FREE_QUOTA_MILLI)
    next_refill: float = 0.0  # Unix seconds
    settled_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.name = self.name or _display_name(self.email)
        digest = hashlib.sha256(self.email.encode()).hexdigest()
        self.id = self.id or str(int(digest[:16], 16)).rjust(21, "1")[:21]
        if self.paid_balance is None:
            self.paid_balance = TIER_INFO[self.tier].initial_balance
        self.next_refill = self.next_refill or time.time() + FREE_REFILL_SECONDS

    @property
    def paid_units(self) -> float:
        return self.paid_balance or 0.0

    def settle(self, rate_per_hour: float, now: float | None = None) -> None:
        """Charge what the account's runtimes burned since the last settlement: paid units
        while there are any (whatever the plan: pay-as-you-go units come without one), else
        the free allowance."""
        now = time.monotonic() if now is None else now
        hours = max(0.0, now - self.settled_at) / 3600
        self.settled_at = now
        if time.time() >= self.next_refill:
            self.free_milli = float(FREE_QUOTA_MILLI)
            self.next_refill = time.time() + FREE_REFILL_SECONDS
        cost = rate_per_hour * hours
        if self.paid_units > 0:
            self.paid_balance = max(0.0, self.paid_units - cost)
        else:
            self.free_milli = max(0.0, self.free_milli - cost * 1000)


@dataclass
class Runtime:
    """One assignment and the real Jupyter server behind it."""

    endpoint: str
    email: str
    accelerator: Accelerator
    machine_shape: int
    nbh: str
    version_label: str | None
    root_dir: Path
    proxy_url: str = ""
    jupyter_port: int = 0
    jupyter_pid: int | None = None
    assigned_at: float = field(default_factory=time.time)  # Unix seconds
    last_keepalive: float = field(default_factory=time.monotonic)
    last_keepalive_wall: float = field(default_factory=time.time)
    proxy_tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    ready: bool = False

    def touch(self) -> None:
        self.last_keepalive = time.monotonic()
        self.last_keepalive_wall = time.time()

    def mint_proxy_token(self, ttl: float) -> tuple[str, float]:
        """A new proxy token; older ones stay valid until their own expiry."""
        now = time.monotonic()
        for token, expiry in list(self.proxy_tokens.items()):
            if expiry <= now:
                del self.proxy_tokens[token]
        token = secrets.token_urlsafe(32)
        self.proxy_tokens[token] = now + ttl
        return token, ttl

    def current_proxy_token(self, ttl: float, min_left: float = 60.0) -> tuple[str, float]:
        """The newest proxy token with its remaining life, or a new one if it is nearly spent."""
        now = time.monotonic()
        if self.proxy_tokens:
            token, expiry = max(self.proxy_tokens.items(), key=lambda kv: kv[1])
            if expiry - now >= min_left:
                return token, expiry - now
        return self.mint_proxy_token(ttl)

    def revoke_proxy_tokens(self) -> int:
        """Refuse every token issued so far (as Colab may before their expiry); returns how
        many were still live. Tokens minted afterwards work as usual."""
        now = time.monotonic()
        live = sum(1 for expiry in self.proxy_tokens.values() if expiry > now)
        self.proxy_tokens.clear()
        return live

    def proxy_token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        expiry = self.proxy_tokens.get(token)
        return expiry is not None and expiry > time.monotonic()


@dataclass
class _Ticket:
    email: str
    action: str
    resource: str
    expires_at: float


class XsrfTickets:
    """The ``X-Goog-Colab-Token`` values handed out by the GET half of two-step calls.

    A ticket is bound to the account, the action (assign, unassign, propagate) and the
    resource (nbh or endpoint). It may be reused until it expires: Google's CLI sends the
    same ticket for the dry-run and the real credentials propagation.
    """

    def __init__(self) -> None:
        self._tickets: dict[str, _Ticket] = {}

    def issue(self, email: str, action: str, resource: str) -> str:
        now = time.monotonic()
        if len(self._tickets) > 5000:
            self._tickets = {k: t for k, t in self._tickets.items() if t.expires_at > now}
        token = f"AJQx7x{secrets.token_urlsafe(24)}:{int(time.time() * 1000)}"
        self._tickets[token] = _Ticket(email, action, resource, now + XSRF_TTL)
        return token

    def valid(self, token: str | None, email: str, action: str, resource: str) -> bool:
        ticket = self._tickets.get(token or "")
        return (
            ticket is not None
            and ticket.expires_at > time.monotonic()
            and (ticket.email, ticket.action, ticket.resource) == (email, action, resource)
        )


@dataclass
class ConsentRequest:
    """A pending "allow this runtime to use your credentials" page."""

    email: str
    endpoint: str
    authtype: str
    expires_at: float


class Consents:
    """Which runtime may receive which credentials (credentials propagation)."""

    def __init__(self) -> None:
        self._granted: set[tuple[str, str, str]] = set()
        self._pending: dict[str, ConsentRequest] = {}

    def granted(self, email: str, endpoint: str, authtype: str) -> bool:
        return (email, endpoint, authtype) in self._granted

    def request(self, email: str, endpoint: str, authtype: str) -> str:
        state = secrets.token_urlsafe(24)
        self._pending[state] = ConsentRequest(
            email, endpoint, authtype, time.monotonic() + CONSENT_TTL
        )
        return state

    def pending(self, state: str) -> ConsentRequest | None:
        request = self._pending.get(state)
        if request is None or request.expires_at <= time.monotonic():
            return None
        return request

    def decide(self, state: str, allow: bool) -> ConsentRequest | None:
        request = self.pending(state)
        self._pending.pop(state, None)
        if request is not None and allow:
            self._granted.add((request.email, request.endpoint, request.authtype))
        return request

    def forget_runtime(self, endpoint: str) -> None:
        self._granted = {g for g in self._granted if g[1] != endpoint}


@dataclass
class Faults:
    """Run-time switchable misbehaviour of the backend."""

    fault_rate: float = 0.0
    latency: float = 0.0
    # Keep-alive pings refused with this status (401, 403 for a missing scope, 404), as Colab
    # answers a token it no longer takes, one without the scope, or a runtime it dropped.
    refuse_keepalive: int | None = None
    # The terminal's output goes out as binary frames of raw bytes instead of {"data"} text
    # frames: a client must show them as text, not take them for the end of the session.
    terminal_binary: bool = False


class EmulatorState:
    """The whole emulated world of one emulator process."""

    def __init__(self, config: EmulatorConfig, temp_dir: Path) -> None:
        self.config = config
        self.temp_dir = temp_dir
        self.base_url = ""  # set once the server is listening
        # With --tls: the runtime proxies' server context and the certificate to trust.
        self.runtime_tls: ssl.SSLContext | None = None
        self.runtime_certificate: Path | None = None
        self.client_id = "colabtray-emulator.apps.googleusercontent.com"
        self.client_secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(24)
        self.accounts: dict[str, Account] = {
            spec.email: Account(spec.email, spec.tier, paid_balance=spec.paid_balance)
            for spec in config.accounts
        }
        self.default_email = config.accounts[0].email
        self.tokens = TokenStore(config.access_token_ttl)
        self.runtimes: dict[str, Runtime] = {}
        self.tickets = XsrfTickets()
        self.consents = Consents()
        self.unavailable: set[str] = set()
        self.faults = Faults(config.fault_rate, config.latency)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=1000)
        self.request_seq = 0

    def runtimes_of(self, email: str) -> list[Runtime]:
        return [r for r in self.runtimes.values() if r.email == email]

    def burn_rate(self, email: str) -> float:
        return sum(r.accelerator.burn_rate for r in self.runtimes_of(email) if r.ready)

    def settle(self, email: str) -> Account:
        """Bring an account's balance up to now and return it."""
        account = self.accounts[email]
        account.settle(self.burn_rate(email))
        return account

    def max_runtimes(self, account: Account) -> int:
        if account.max_runtimes is not None:
            return account.max_runtimes
        if self.config.max_runtimes is not None:
            return self.config.max_runtimes
        return TIER_INFO[account.tier].max_runtimes
