"""Every command of the control channel, carried out by the running app's core.

The CLI sends these when an app runs (tray or ``--headless``), so its registry, bridge and
menu change at once and the CLI, the tray and Colab agree; without an app the CLI does the
same work with the same core objects for one call. One JSON line each way
(:mod:`colabtray.system.ipc`):

* ``show`` ``{}`` → what the face showed (the tray's menu or window; headless: its status)
* ``menu`` ``{}`` → the tray's menu as text (tests; headless has none)
* ``status`` ``{}`` → the active account, the other accounts, every account's runtimes (each
  with its ``account`` and URL), the active account's compute units
* ``url`` ``{"runtime"}`` → ``{"name", "endpoint", "url", "gateway_command"}``
* ``urls`` ``{}`` → ``{"runtimes": {endpoint: {"name", "url"}}}``
* ``new`` ``{"variant", "accelerator", "high_mem", "runtime_version", "fallback", "account"}``
  (``account``: an email; the active account's when absent) → the
  runtime (as in ``status``), once it is bridged, plus ``"requested"`` (the accelerator asked
  for) and ``"not_free"`` (those tried first that were not free: with ``fallback``, the plan's
  other models of the kind are tried in turn)
* ``remove`` ``{"runtime"}`` → ``{"name", "endpoint"}`` (also the answer "give it back" to an
  idle question)
* ``keep`` ``{"runtime"}`` → ``{"name", "endpoint"}``: "keep it running", to an idle question
* ``signin`` ``{"how": "gcloud"|"adc"|"browser"|"switch"|"reload", "account", "path"}`` →
  ``{"email"}`` ("reload": another process signed in; read the accounts again)
* ``signout`` ``{"account", "all"}`` → ``{"signed_out": [[email, note], …]}``
* ``secret`` ``{"op": "set"|"list"|"remove"|"allow"|"deny", "name", "value", "no_ask",
  "runtime"}``: the notebooks' secrets (the value only ever in ``set``)
* ``runtime`` ``{"runtime"}`` → the runtime (as in ``status``) with ``proxy_url``,
  ``proxy_token``, ``proxy_expires_at``: for colabtray's own tools (shell, ssh, cp)
* ``colab_page`` ``{"runtime"}`` → ``{"name", "endpoint", "link"}``: Colab's page attached to it
* ``activity`` ``{"runtime"}``: a tool is using the runtime (keep-alive counts it)
* ``trust`` ``{}`` → ``{"ca_file"}``: the authorities the app trusts besides the system's (the
  demo's runtimes), which colabtray's tools trust too when they reach a runtime
"""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colabtray.auth.errors import NotSignedInError
from colabtray.auth.methods import sign_in_again
from colabtray.colab import errors
from colabtray.colab.links import open_in_colab
from colabtray.colab.models import ComputeUnits, Runtime
from colabtray.core.display import compute_units_line
from colabtray.core.display import keeping_json as keeping_words
from colabtray.core.keepalive import Choice, KeepAlive
from colabtray.core.naming import kind_label
from colabtray.core.notebook_secrets import check_name
from colabtray.errors import UserError
from colabtray.system.ipc import ControlServer

if TYPE_CHECKING:
    from colabtray.core.app import Core
    from colabtray.settings import Settings

# How long ``new`` waits for the bridge to serve the new runtime before answering without URL.
BRIDGED_WITHIN = 10.0
# How ``new``'s caller (the CLI) asks for the alternatives when the one asked for is not free.
FALLBACK_HINT = "try --fallback"


async def carry_out_here(
    settings: Settings, name: str, args: dict[str, Any], *, cores: list[Any] | None = None
) -> dict[str, Any]:
    """Carry out a control command on a core made for this one call: the CLI's, when no app
    runs (it asks the running app first). ``cores`` collects the sessions of cores made here
    (whether the keyring was usable is known afterwards)."""
    from colabtray.core.app import Core

    core = Core(settings)
    if cores is not None:
        cores.append(core.session)
    try:
        return await Commands(core).run(name, args)
    finally:
        await core.stop()


def runtime_json(
    runtime: Runtime, name: str, url: str | None = None, account: str | None = None
) -> dict[str, Any]:
    """A runtime as ``status --json`` and ``new --json`` print it."""
    return {
        "name": name,
        "account": account,  # the email of its account (None: not known yet)
        "endpoint": runtime.endpoint,
        "variant": runtime.variant,
        "accelerator": runtime.accelerator,
        "shape": runtime.shape,
        "kind": kind_label(runtime.variant, runtime.accelerator),
        "runtime_version": runtime.runtime_version,
        "url": url,  # the editor bridge's, while the app runs
    }


def keeping_json(keepalive: KeepAlive, endpoint: str) -> dict[str, object] | None:
    """Why keep-alive pings the runtime now, or not (None: it has not looked, e.g. a command
    run without the app)."""
    return keeping_words(keepalive.keeping(endpoint), pending=endpoint in keepalive.pending())


def compute_units_json(units: ComputeUnits) -> dict[str, Any]:
    return {
        "line": compute_units_line(units),  # the tray menu's words (the CLI prints them)
        "tier": units.tier,
        "balance": units.balance,
        "rate_per_hour": units.rate_per_hour,
        "hours_left": units.hours_left,
        "free_remaining": units.free_remaining,
        "assignments": units.assignments,
    }


class CommandRefused(UserError):
    """A command that cannot be carried out as asked ("No runtime named…"): its sentence goes
    back to the caller as the command's answer."""


def _text(args: dict[str, Any], key: str, what: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CommandRefused(f"Name {what}.")
    return value.strip()


def _optional(args: dict[str, Any], key: str) -> str | None:
    value = args.get(key)
    return value if isinstance(value, str) and value else None


class Commands:
    """The commands, each a coroutine from JSON arguments to a JSON result, on one core: the
    running app's, or (from the CLI, when no app runs) one made for a single call."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "status": self.status,
            "url": self.url,
            "urls": self.urls,
            "new": self.new,
            "remove": self.remove,
            "keep": self.keep,
            "signin": self.signin,
            "signout": self.signout,
            "secret": self.secret,
            "runtime": self.runtime,
            "colab_page": self.colab_page,
            "activity": self.activity,
            "trust": self.trust,
        }

    async def run(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return await self.handlers[name](args)

    def register(
        self,
        server: ControlServer,
        *,
        show: Callable[[], dict[str, Any]],
        menu: Callable[[], dict[str, Any]],
    ) -> None:
        """Answer every command on ``server``; ``show`` and ``menu`` come from the face."""
        server.register("show", lambda _args: show())
        server.register("menu", lambda _args: menu())
        for name, handler in self.handlers.items():
            server.register(name, handler)

    async def _bridged_url(self, endpoint: str) -> str | None:
        """The runtime's local URL, waiting a moment for a runtime that was just found (the
        bridge's thread opens its port); None without a bridge or after BRIDGED_WITHIN."""
        core = self.core
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BRIDGED_WITHIN
        while (address := core.connection_url(endpoint)) is None:
            if core.bridge is None or loop.time() >= deadline:
                return None
            await asyncio.sleep(0.05)  # no event for "the port listens" crosses the thread
        return address

    async def _find(self, args: dict[str, Any]) -> str:
        query = _text(args, "runtime", "a runtime (its name or endpoint)")
        if not self.core.signed_in:  # no runtime can be named: say why, not "runtimes: none"
            raise NotSignedInError()
        endpoint = await self.core.find_runtime(query)
        if endpoint is None and self.core.must_sign_in:
            again = sign_in_again(self.core.email)
            raise errors.ColabError(self.core.problem() or again)
        if endpoint is None:
            known = ", ".join(name for name, _ in self.core.fleet.runtimes()) or "none"
            raise CommandRefused(f"No runtime named {query!r} (runtimes: {known}).")
        return endpoint

    async def url(self, args: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        endpoint = await self._find(args)
        name = core.fleet.name_of(endpoint)
        address = await self._bridged_url(endpoint)
        if address is None:
            raise CommandRefused(f"{name} has no connection URL right now; try again in a moment.")
        return {
            "name": name,
            "endpoint": endpoint,
            "url": address,
            "gateway_command": core.lab_command(endpoint),
        }

    async def urls(self, _args: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        return {
            "runtimes": {
                rt.endpoint: {"name": name, "url": core.connection_url(rt.endpoint)}
                for name, rt in core.fleet.runtimes()
            }
        }

    async def status(self, _args: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        await core.fresh_listing()
        state = core.fleet.state
        if not state.loaded and state.problem:
            raise errors.ColabError(state.problem)
        if not core.signed_in:
            raise NotSignedInError()
        await core.learn_email()
        units = core.fleet.state.compute_units  # as the email just learned recalls its plan
        return {
            "account": {"email": core.email} if core.email else None,
            "other_accounts": [
                {"email": a.email, "state": str(a.state)} for a in core.other_accounts()
            ],
            "runtimes": [
                runtime_json(
                    rt, name, core.connection_url(rt.endpoint), core.account_of(rt.endpoint)
                )
                | {"keep_alive": keeping_json(core.keepalive, rt.endpoint)}
                for name, rt in core.fleet.runtimes()
            ],
            "compute_units": compute_units_json(units) if units else None,
        }

    async def new(self, args: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        variant = _text(args, "variant", "a kind of runtime (CPU, GPU or TPU)")
        fallback = bool(args.get("fallback"))
        try:
            made = await core.create_checked(
                variant,
                _optional(args, "accelerator"),
                high_mem=bool(args.get("high_mem")),
                runtime_version=_optional(args, "runtime_version"),
                fallback=fallback,
                account=_optional(args, "account"),
            )
        except errors.AcceleratorUnavailableError as exc:
            if exc.alternatives and not fallback:  # this command's callers: the CLI's flag
                raise exc.with_hint(FALLBACK_HINT) from None
            raise
        runtime = made.runtime
        url = await self._bridged_url(runtime.endpoint)
        return {
            **runtime_json(runtime, made.name, url, core.account_of(runtime.endpoint)),
            "requested": made.requested,
            "not_free": list(made.not_free),
        }

    async def remove(self, args: dict[str, Any]) -> dict[str, Any]:
        endpoint = await self._find(args)
        name = self.core.fleet.name_of(endpoint)
        await self.core.disconnect(endpoint)
        return {"name": name, "endpoint": endpoint}

    async def keep(self, args: dict[str, Any]) -> dict[str, Any]:
        endpoint = await self._find(args)
        name = self.core.fleet.name_of(endpoint)
        if not self.core.answer_idle(endpoint, Choice.KEEP):
            raise CommandRefused(f"{name} is not waiting for an answer about being idle.")
        return {"name": name, "endpoint": endpoint}

    async def signin(self, args: dict[str, Any]) -> dict[str, Any]:
        core = self.core
        how = args.get("how")
        account = _optional(args, "account")
        if how == "switch":
            email = _text(args, "account", "the account to switch to")
            core.switch(email)
        elif how == "gcloud":
            email = await core.sign_in_gcloud(account)
        elif how == "adc":
            email = await core.sign_in_adc(Path(_text(args, "path", "the ADC file")))
        elif how == "browser":
            signed = await core.sign_in(webbrowser.open, account)
            if signed is None:
                raise CommandRefused("Sign-in was cancelled in colabtray.")
            email = signed
        elif how == "reload":  # another process signed in: read the accounts again
            email = core.reload_accounts() or ""
        else:
            raise CommandRefused(f"Unknown way to sign in: {how!r}.")
        return {"email": email}

    async def runtime(self, args: dict[str, Any]) -> dict[str, Any]:
        """Where a runtime is and a proxy token valid for a while: for colabtray's own tools
        (shell, ssh, cp) in another process of the same user; never printed by them."""
        endpoint = await self._find(args)
        fresh = await self.core.fleet.fresh_runtime(endpoint)
        if fresh.proxy is None:
            raise errors.RuntimeAccessError(endpoint, 0)
        return {
            **runtime_json(
                fresh, self.core.fleet.name_of(endpoint), account=self.core.account_of(endpoint)
            ),
            "proxy_url": fresh.proxy.url,
            "proxy_token": fresh.proxy.token.get_secret_value(),
            "proxy_expires_at": fresh.proxy.expires_at.isoformat(),
        }

    async def colab_page(self, args: dict[str, Any]) -> dict[str, Any]:
        """Colab's web page attached to the runtime (``colabtray open``)."""
        endpoint = await self._find(args)
        link = open_in_colab(self.core.settings.colab_url, endpoint)
        return {"name": self.core.fleet.name_of(endpoint), "endpoint": endpoint, "link": link}

    async def activity(self, args: dict[str, Any]) -> dict[str, Any]:
        """A tool (shell, ssh, cp) is using the runtime: keep-alive counts it as use."""
        endpoint = await self._find(args)
        self.core.note_activity(endpoint)
        return {"endpoint": endpoint}

    async def trust(self, args: dict[str, Any]) -> dict[str, Any]:
        ca_file = self.core.settings.ca_file
        return {"ca_file": str(ca_file) if ca_file is not None else None}

    async def secret(self, args: dict[str, Any]) -> dict[str, Any]:
        """The notebooks' secrets: set, list, remove; allow or deny a runtime's request."""
        secrets = self.core.notebook_secrets
        op = args.get("op")
        if op == "list":
            return {"names": {n: {"no_ask": no_ask} for n, no_ask in secrets.names().items()}}
        name = check_name(_text(args, "name", "a secret"))
        if op == "set":
            value = args.get("value")
            await secrets.set(
                name, value if isinstance(value, str) else "", no_ask=bool(args.get("no_ask"))
            )
            return {"name": name, "place": secrets.place}
        if op == "remove":
            if not await secrets.remove(name):
                raise CommandRefused(f"There is no secret named {name}.")
            return {"name": name}
        if op in ("allow", "deny"):
            endpoint = await self._find(args)
            if not self.core.secret_gate.decide(endpoint, name, op == "allow"):
                runtime = self.core.fleet.name_of(endpoint)
                raise CommandRefused(f"{runtime} is not waiting for an answer about {name}.")
            return {"name": name, "runtime": self.core.fleet.name_of(endpoint)}
        raise CommandRefused(f"Unknown secret operation {op!r}.")

    async def signout(self, args: dict[str, Any]) -> dict[str, Any]:
        gone = await self.core.sign_out_of(
            _optional(args, "account"), everyone=bool(args.get("all"))
        )
        if not gone:
            raise NotSignedInError()
        return {"signed_out": [[email, note] for email, note in gone]}
