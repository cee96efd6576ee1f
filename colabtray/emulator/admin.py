"""``/_emulator/*``: a JSON API for tests and the demo to inspect and bend the emulated world.

Loopback clients only. Nothing here ever returns a token.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

from aiohttp import web

from colabtray.emulator.catalog import ACCELERATORS, TIER_INFO, TIERS
from colabtray.emulator.oauth import OAuth
from colabtray.emulator.runtimes import RuntimeManager
from colabtray.emulator.state import EmulatorState

PREFIX = "/_emulator"


class BadRequest(Exception):
    pass


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = json.loads(await request.read())
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc.msg}") from None
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _number(body: dict[str, Any], key: str, low: float, high: float | None = None) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number")
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{key} out of range")
    return float(value)


class Admin:
    """Handlers of the admin API."""

    def __init__(self, state: EmulatorState, manager: RuntimeManager, oauth: OAuth) -> None:
        self.state = state
        self.manager = manager
        self.oauth = oauth

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/state", self.get_state),
            web.post(f"{p}/faults", self.set_faults),
            web.post(f"{p}/accounts/{{email}}", self.set_account),
            web.post(f"{p}/unavailable", self.set_unavailable),
            web.post(f"{p}/runtimes/{{endpoint}}/reclaim", self.reclaim),
            web.post(f"{p}/tokens/revoke", self.revoke_tokens),
            web.post(f"{p}/tokens/expire-access", self.expire_access),
            web.post(f"{p}/tokens/expire-codes", self.expire_codes),
            web.post(f"{p}/tokens/revoke-proxy", self.revoke_proxy_tokens),
            web.get(f"{p}/requests", self.get_requests),
            web.delete(f"{p}/requests", self.clear_requests),
        ]

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Loopback only, and BadRequest becomes a 400."""
        if not request.path.startswith(PREFIX + "/"):
            return await handler(request)
        try:
            if not ipaddress.ip_address(request.remote or "0.0.0.0").is_loopback:  # noqa: S104
                return _error(403, "the admin API answers loopback clients only")
        except ValueError:
            return _error(403, "the admin API answers loopback clients only")
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))

    def _account_view(self, email: str) -> dict[str, Any]:
        account = self.state.settle(email)
        return {
            "email": email,
            "name": account.name,
            "id": account.id,
            "tier": account.tier,
            "default": email == self.state.default_email,
            "max_runtimes": self.state.max_runtimes(account),
            "max_runtimes_override": account.max_runtimes,
            "quota_outcome": account.quota_outcome,
            "denylisted": account.denylisted,
            "paid_balance": account.paid_units,
            "free_remaining_milli": account.free_milli,
            "consumption_rate_hourly": self.state.burn_rate(email),
        }

    async def get_state(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        runtimes = [
            {
                "endpoint": r.endpoint,
                "account": r.email,
                "accelerator": r.accelerator.name,
                "variant": r.accelerator.variant,
                "machine_shape": r.machine_shape,
                "nbh": r.nbh,
                "runtime_version_label": r.version_label,
                "url": r.proxy_url,
                "ready": r.ready,
                "assigned_at": r.assigned_at,
                "last_keepalive": r.last_keepalive_wall,
                "idle_seconds": now - r.last_keepalive,
                "jupyter_pid": r.jupyter_pid,
                "jupyter_port": r.jupyter_port,
                "root_dir": str(r.root_dir),
            }
            for r in self.state.runtimes.values()
        ]
        return web.json_response(
            {
                "url": self.state.base_url,
                "temp_dir": str(self.state.temp_dir),
                "idle_timeout": self.state.config.idle_timeout,
                "proxy_token_ttl": self.state.config.proxy_token_ttl,
                "access_token_ttl": self.state.config.access_token_ttl,
                "auto_approve": self.state.config.auto_approve,
                "faults": {
                    "fault_rate": self.state.faults.fault_rate,
                    "latency": self.state.faults.latency,
                    "refuse_keepalive": self.state.faults.refuse_keepalive,
                    "terminal_binary": self.state.faults.terminal_binary,
                },
                "unavailable": sorted(self.state.unavailable),
                "accounts": [self._account_view(email) for email in self.state.accounts],
                "runtimes": runtimes,
            }
        )

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if "fault_rate" in body:
            self.state.faults.fault_rate = _number(body, "fault_rate", 0, 1)
        if "latency" in body:
            self.state.faults.latency = _number(body, "latency", 0, 600)
        if "refuse_keepalive" in body:
            if body["refuse_keepalive"] not in (None, 401, 403, 404):
                raise BadRequest("refuse_keepalive must be null, 401, 403 or 404")
            self.state.faults.refuse_keepalive = body["refuse_keepalive"]
        if "terminal_binary" in body:
            if not isinstance(body["terminal_binary"], bool):
                raise BadRequest("terminal_binary must be true or false")
            self.state.faults.terminal_binary = body["terminal_binary"]
        faults = self.state.faults
        return web.json_response(
            {
                "fault_rate": faults.fault_rate,
                "latency": faults.latency,
                "refuse_keepalive": faults.refuse_keepalive,
                "terminal_binary": faults.terminal_binary,
            }
        )

    async def set_account(self, request: web.Request) -> web.Response:
        email = request.match_info["email"].lower()
        if email not in self.state.accounts:
            return _error(404, f"no account {email}")
        body = await _body(request)
        unknown = set(body) - {
            "tier",
            "max_runtimes",
            "quota_outcome",
            "denylisted",
            "paid_balance",
            "free_remaining_milli",
        }
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
        account = self.state.settle(email)
        if "tier" in body:
            if body["tier"] not in TIERS:
                raise BadRequest(f"tier must be one of {', '.join(TIERS)}")
            account.tier = body["tier"]
            if account.tier != "free" and account.paid_units <= 0:
                account.paid_balance = TIER_INFO[account.tier].initial_balance
        if "max_runtimes" in body:
            value = body["max_runtimes"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise BadRequest("max_runtimes must be an integer or null")
            if value is not None and value < 0:
                raise BadRequest("max_runtimes must not be negative")
            account.max_runtimes = value
        if "quota_outcome" in body:
            if body["quota_outcome"] not in (None, 1, 2):
                raise BadRequest("quota_outcome must be null, 1 or 2")
            account.quota_outcome = body["quota_outcome"]
        if "denylisted" in body:
            if not isinstance(body["denylisted"], bool):
                raise BadRequest("denylisted must be true or false")
            account.denylisted = body["denylisted"]
        if "paid_balance" in body:
            account.paid_balance = _number(body, "paid_balance", 0)
        if "free_remaining_milli" in body:
            account.free_milli = _number(body, "free_remaining_milli", 0)
        return web.json_response(self._account_view(email))

    async def set_unavailable(self, request: web.Request) -> web.Response:
        body = await _body(request)
        names = body.get("accelerators")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadRequest("accelerators must be a list of names")
        unknown = [n for n in names if n not in ACCELERATORS]
        if unknown:
            raise BadRequest(f"unknown accelerators: {', '.join(unknown)}")
        self.state.unavailable = set(names)
        return web.json_response({"unavailable": sorted(self.state.unavailable)})

    async def reclaim(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        runtime = self.state.runtimes.get(endpoint)
        if runtime is None or not runtime.ready:
            return _error(404, f"no runtime {endpoint}")
        await self.manager.release(runtime, "reclaimed by the admin API")
        return web.json_response({"reclaimed": endpoint})

    async def revoke_tokens(self, request: web.Request) -> web.Response:
        body = await _body(request)
        email = str(body.get("email", "")).lower()
        if email not in self.state.accounts:
            raise BadRequest("email must name an account")
        return web.json_response({"revoked_grants": self.state.tokens.revoke_account(email)})

    async def expire_access(self, request: web.Request) -> web.Response:
        body = await _body(request)
        email = body.get("email")
        if email is not None and str(email).lower() not in self.state.accounts:
            raise BadRequest("email must name an account")
        count = self.state.tokens.expire_access(
            str(email).lower() if email else None,
            include_static=bool(body.get("include_static", False)),
        )
        return web.json_response({"expired": count})

    async def expire_codes(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.oauth.expire_codes()})

    async def revoke_proxy_tokens(self, request: web.Request) -> web.Response:
        """Runtime proxy tokens stop working now, before their expiry (one runtime or all)."""
        body = await _body(request)
        endpoint = body.get("endpoint")
        if endpoint is None:
            runtimes = list(self.state.runtimes.values())
        elif isinstance(endpoint, str) and endpoint in self.state.runtimes:
            runtimes = [self.state.runtimes[endpoint]]
        else:
            raise BadRequest("endpoint must name a runtime")
        revoked = sum(runtime.revoke_proxy_tokens() for runtime in runtimes)
        return web.json_response(
            {"revoked": revoked, "endpoints": [runtime.endpoint for runtime in runtimes]}
        )

    async def get_requests(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise BadRequest("since must be an integer") from None
        host = request.query.get("host")
        entries = [
            e
            for e in self.state.request_log
            if e["seq"] > since and (host is None or e["host"] == host)
        ]
        return web.json_response({"requests": entries, "last_seq": self.state.request_seq})

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.state.request_log.clear()
        return web.json_response({"cleared": True, "last_seq": self.state.request_seq})
