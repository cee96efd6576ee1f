"""Every signed-in account's runtimes, served as one.

Each account has its own :class:`~colabtray.core.registry.RuntimeRegistry` (its own Colab
client and access tokens, its own listing, plan and compute units); the fleet puts them side
by side so that keep-alive, the editor bridge, ssh and the CLI reach any runtime by its
endpoint or name, whatever account it belongs to, and each call goes out with the tokens of
the runtime's own account. Names stay unique across accounts (one names file for all).

Which account is *active* only matters for what is made next (``new``, the New runtime
dialog) and for the account-wide figures shown (plan, compute units): :attr:`Fleet.state`
carries those of the active account. An account that leaves (signed out) takes its runtimes
with it: each is told as removed with ``signed_out`` set, so the bridge can say why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from colabtray.colab import errors
from colabtray.colab.models import PropagationResult, Runtime
from colabtray.colab.wire import PROXY_TOKEN_LEAD
from colabtray.core.listeners import Listeners
from colabtray.core.registry import (
    Event,
    RegistryState,
    RuntimeRegistry,
    RuntimeRemoved,
    StateChanged,
)


@dataclass
class Member:
    """One served account: its key (the email, or the ready token's), its registry, and the
    loops that run for it while the app runs."""

    key: str
    registry: RuntimeRegistry
    loops: list[asyncio.Task[object]] = field(default_factory=list)


class Fleet:
    """The runtimes of every served account; the registry-like view the rest of the app uses."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}
        self.active: str | None = None  # the key of the account that ``new`` uses
        self._listeners = Listeners("the runtimes")

    # ---- membership -----------------------------------------------------------------------

    def join(self, key: str, registry: RuntimeRegistry) -> Member:
        """Serve an account; its registry's events are told as the fleet's from now on."""
        member = self._members[key] = Member(key, registry)

        def forward(event: Event) -> None:
            if self._members.get(key) is member:  # not after it left
                self._listeners.tell(event)

        registry.subscribe(forward)
        self._listeners.tell(StateChanged())
        return member

    def leave(self, key: str) -> Member | None:
        """Stop serving an account: each of its runtimes is told as removed (``signed_out``)."""
        member = self._members.get(key)
        if member is None:
            return None
        registry = member.registry
        # Told while the fleet still lists them, so that whoever follows the whole list (the
        # bridge) retires them all at the StateChanged below, each knowing why.
        for endpoint in list(registry.state.runtimes):
            name = registry.name_of(endpoint)
            self._listeners.tell(RuntimeRemoved(endpoint, name, by_user=False, signed_out=True))
        del self._members[key]
        registry.release_names()
        self._listeners.tell(StateChanged())
        return member

    def member(self, key: str) -> Member | None:
        return self._members.get(key)

    def members(self) -> list[Member]:
        """The served accounts, the active one first, then by key."""
        return sorted(self._members.values(), key=lambda m: (m.key != self.active, m.key))

    @property
    def active_registry(self) -> RuntimeRegistry | None:
        member = self._members.get(self.active) if self.active is not None else None
        return member.registry if member is not None else None

    # ---- what the rest of the app reads ---------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.add(listener)

    def registry_of(self, endpoint: str) -> RuntimeRegistry | None:
        """The registry (so the account) the runtime belongs to; None if no account has it."""
        for member in self._members.values():
            if endpoint in member.registry.state.runtimes:
                return member.registry
        return None

    def account_of(self, endpoint: str) -> str | None:
        """The key of the runtime's account (its email, for a signed-in account)."""
        for key, member in self._members.items():
            if endpoint in member.registry.state.runtimes:
                return key
        return None

    def name_of(self, endpoint: str) -> str:
        registry = self.registry_of(endpoint)
        return registry.name_of(endpoint) if registry is not None else endpoint

    def runtimes(self) -> list[tuple[str, Runtime]]:
        """(name, runtime) pairs: the active account's first, each account's by name."""
        return [pair for member in self.members() for pair in member.registry.runtimes()]

    @property
    def state(self) -> RegistryState:
        """All runtimes and names; the active account's plan, eligibility and compute units.

        A snapshot, made at each read: read it again after an await, and change an account's
        state through its own registry.

        ``loaded`` once every account has listed (or needs a sign-in, so never will);
        ``reachable`` while Colab answers every account.
        """
        members = self.members()
        active = self.active_registry
        merged = RegistryState(
            loaded=bool(members)
            and all(m.registry.state.loaded or m.registry.state.signed_out for m in members),
            reachable=all(m.registry.state.reachable for m in members),
        )
        for member in members:
            merged.runtimes.update(member.registry.state.runtimes)
            merged.names.update(member.registry.state.names)
        if active is not None:
            mine = active.state
            merged.compute_units = mine.compute_units
            merged.eligibility = mine.eligibility
            merged.plan = mine.plan
            merged.signed_out = mine.signed_out
            merged.problem = mine.problem
        if merged.problem is None:
            merged.problem = next(
                (m.registry.state.problem for m in members if not m.registry.state.reachable),
                None,
            )
        return merged

    def age(self) -> float:
        """Seconds since the oldest of the accounts' last listings (inf: one has none yet)."""
        return max((m.registry.age() for m in self._members.values()), default=math.inf)

    # ---- what the rest of the app does ----------------------------------------------------

    async def refresh(self) -> None:
        """List every account's runtimes, side by side."""
        await asyncio.gather(*(m.registry.refresh() for m in list(self._members.values())))

    def poke(self) -> None:
        for member in self._members.values():
            member.registry.poke()

    async def fresh_runtime(
        self, endpoint: str, *, force: bool = False, ahead: float = PROXY_TOKEN_LEAD
    ) -> Runtime:
        """The runtime with a proxy token from its own account (RuntimeGoneError if none has
        it)."""
        return await self._owner(endpoint).fresh_runtime(endpoint, force=force, ahead=ahead)

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult:
        """The runtime's request for Google credentials, answered for its own account."""
        return await self._owner(endpoint).propagate_credentials(endpoint, auth_type, dry_run)

    async def remove(self, endpoint: str) -> None:
        """Give the runtime back, through its own account."""
        await self._owner(endpoint).remove(endpoint)

    def forget(self, endpoint: str) -> None:
        """The runtime is known to be gone (a 404 from keep-alive, say)."""
        registry = self.registry_of(endpoint)
        if registry is not None:
            registry.forget(endpoint)

    def _owner(self, endpoint: str) -> RuntimeRegistry:
        registry = self.registry_of(endpoint)
        if registry is None:
            raise errors.RuntimeGoneError(endpoint)
        return registry


Runtimes = RuntimeRegistry | Fleet  # what keep-alive and the bridge follow
