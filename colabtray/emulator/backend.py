"""The Colab backend: the colab web host (``/tun/m/*``, ``/vscode/*``) and GAPI (``/gapi/v1/*``).

Written from docs/protocol.md with plain dicts. The
colab host speaks numbers for enums and plain-number TTLs; GAPI speaks ProtoJSON (enum
names, ``"3600s"`` durations, int64 as strings). Both put ``)]}'`` before JSON bodies.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from colabtray.emulator.assigning import StartFailed, refusal, start_runtime
from colabtray.emulator.catalog import (
    ACCELERATORS,
    CPU,
    RUNTIME_VERSIONS,
    SHAPE_GAPI,
    TIER_INFO,
    VARIANT_GAPI,
    VARIANT_NUMBER,
    Accelerator,
    Variant,
    models,
)
from colabtray.emulator.guards import (
    INVALID_CREDENTIALS,
    authenticate,
    reject,
    require_authuser,
)
from colabtray.emulator.runtimes import RuntimeManager
from colabtray.emulator.state import Account, EmulatorState, Runtime
from colabtray.emulator.wire import html_page as _page
from colabtray.emulator.wire import xssi_json

log = logging.getLogger("colabtray.emulator.backend")

NBH_RE = re.compile(r"^[a-zA-Z0-9\-_.]{44}$")
XSRF_HEADER = "X-Goog-Colab-Token"
AUTH_TYPES = ("dfs_ephemeral", "auth_user_ephemeral")
CONSENT_PATH = "/tun/m/authorize-for-drive-credentials-ephem"

# Outcomes of the assign POST (numbers on the wire).
OUTCOME_QUOTA_DENIED = 1
OUTCOME_QUOTA_EXCEEDED = 2
OUTCOME_SUCCESS = 4
OUTCOME_DENYLISTED = 5


@dataclass(frozen=True)
class AssignParams:
    nbh: str
    variant: Variant
    accelerator: Accelerator
    high_mem: bool
    version: str | None


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise reject(400, f"Parameter {name} given more than once.")
    return values[0] if values else None


def parse_assign(request: web.Request) -> AssignParams:
    """Validate the query of ``/tun/m/assign`` (both steps use the same one)."""
    nbh = _single(request, "nbh")
    if nbh is None or not NBH_RE.fullmatch(nbh):
        raise reject(400, "Invalid nbh: expected 44 characters of [a-zA-Z0-9-_.].")
    variant = _single(request, "variant") or "DEFAULT"
    if variant not in VARIANT_NUMBER:
        raise reject(400, f"Invalid variant {variant!r}: expected DEFAULT, GPU or TPU.")
    name = _single(request, "accelerator")
    if variant == "DEFAULT":
        name = name or CPU
    elif not name:
        raise reject(400, f"Variant {variant} needs an accelerator.")
    accelerator = ACCELERATORS.get(name)
    if accelerator is None or accelerator.variant != variant:
        raise reject(400, f"Accelerator {name!r} is not a {variant} accelerator.")
    shape = _single(request, "shape")
    if shape not in (None, "hm"):
        raise reject(400, f"Invalid shape {shape!r}: the only shape parameter is 'hm'.")
    version = _single(request, "runtime_version_label") or None
    if version is not None and version not in RUNTIME_VERSIONS:
        raise reject(400, f"Unknown runtime_version_label {version!r}.")
    return AssignParams(nbh, variant, accelerator, shape == "hm", version)


def _bool_param(request: web.Request, name: str, *, required: bool) -> bool | None:
    value = _single(request, name)
    if value is None:
        if required:
            raise reject(400, f"Missing required parameter {name}.")
        return None
    if value not in ("true", "false"):
        raise reject(400, f"Parameter {name} must be true or false.")
    return value == "true"


def _ttl(seconds: float) -> int:
    """Whole seconds for ``tokenExpiresInSeconds``, never 0 for a live token."""
    return max(1, round(seconds))


class Backend:
    """Request handlers of the colab host and GAPI."""

    def __init__(self, state: EmulatorState, manager: RuntimeManager) -> None:
        self.state = state
        self.manager = manager
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/tun/m/assign", self.assign_get),
            web.post("/tun/m/assign", self.assign_post),
            web.get("/tun/m/assignments", self.assignments),
            web.get("/tun/m/ccu-info", self.ccu_info),
            web.get(CONSENT_PATH, self.consent_page),
            web.post(CONSENT_PATH, self.consent_decision),
            web.get("/tun/m/unassign/{endpoint}", self.unassign_get),
            web.post("/tun/m/unassign/{endpoint}", self.unassign_post),
            web.get("/tun/m/credentials-propagation/{endpoint}", self.propagation_get),
            web.post("/tun/m/credentials-propagation/{endpoint}", self.propagation_post),
            web.get("/tun/m/{endpoint}/keep-alive/", self.keep_alive),
            web.get("/vscode/experiment-state", self.experiment_state),
            web.get("/gapi/v1/user-info", self.user_info),
            web.get("/gapi/v1/assignments", self.gapi_assignments),
            web.get("/gapi/v1/runtime-proxy-token", self.runtime_proxy_token),
        ]

    # -- helpers -------------------------------------------------------------------------

    def _colab(self, request: web.Request) -> Account:
        require_authuser(request)
        return self.state.accounts[authenticate(request, self.state, "colab").email]

    def _gapi(self, request: web.Request) -> Account:
        return self.state.accounts[authenticate(request, self.state, "gapi").email]

    def _owned(self, account: Account, endpoint: str) -> Runtime:
        runtime = self.state.runtimes.get(endpoint)
        if runtime is None or runtime.email != account.email or not runtime.ready:
            raise reject(404, f"No assignment with endpoint {endpoint}.")
        return runtime

    def _check_xsrf(self, request: web.Request, account: Account, action: str, res: str) -> None:
        token = request.headers.get(XSRF_HEADER)
        if not token:
            raise reject(400, f"Missing {XSRF_HEADER} header.")
        if not self.state.tickets.valid(token, account.email, action, res):
            raise reject(403, "Invalid or expired XSRF token.")

    def _by_nbh(self, account: Account, nbh: str) -> Runtime | None:
        for runtime in self.state.runtimes_of(account.email):
            if runtime.nbh == nbh and runtime.ready:
                return runtime
        return None

    def _assignment(self, account: Account, runtime: Runtime, *, fresh: bool) -> dict[str, Any]:
        ttl = self.state.config.proxy_token_ttl
        if fresh:
            token, left = runtime.mint_proxy_token(ttl)
        else:
            token, left = runtime.current_proxy_token(ttl)
        tier = TIER_INFO[account.tier]
        return {
            "accelerator": runtime.accelerator.name,
            "endpoint": runtime.endpoint,
            "fit": round(self.state.config.idle_timeout),
            "allowedCredentials": True,
            "sub": tier.sub,
            "subTier": tier.sub_tier,
            "outcome": OUTCOME_SUCCESS,
            "variant": VARIANT_NUMBER[runtime.accelerator.variant],
            "machineShape": runtime.machine_shape,
            "runtimeProxyInfo": {
                "token": token,
                "tokenExpiresInSeconds": _ttl(left),
                "url": runtime.proxy_url,
            },
        }

    # -- assign / unassign -----------------------------------------------------------------

    async def assign_get(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        params = parse_assign(request)
        existing = self._by_nbh(account, params.nbh)
        if existing is not None:
            return xssi_json(self._assignment(account, existing, fresh=False))
        return xssi_json(
            {
                "acc": params.accelerator.name,
                "nbh": params.nbh,
                "p": False,
                "token": self.state.tickets.issue(account.email, "assign", params.nbh),
                "variant": params.variant,
            }
        )

    async def assign_post(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        params = parse_assign(request)
        self._check_xsrf(request, account, "assign", params.nbh)
        lock = self._locks.setdefault((account.email, params.nbh), asyncio.Lock())
        async with lock:
            existing = self._by_nbh(account, params.nbh)
            if existing is not None:
                return xssi_json(self._assignment(account, existing, fresh=False))
            refused = self._refusal(account, params)
            if refused is not None:
                return refused
            try:
                runtime = await start_runtime(
                    self.state,
                    self.manager,
                    account,
                    params.accelerator,
                    high_mem=params.high_mem,
                    nbh=params.nbh,
                    version=params.version,
                )
            except StartFailed:
                raise reject(500, "The runtime could not be started.") from None
            return xssi_json(self._assignment(account, runtime, fresh=True))

    def _refusal(self, account: Account, params: AssignParams) -> web.Response | None:
        """The answer to an assign POST that must not succeed (the reasons and their order
        are :func:`~colabtray.emulator.assigning.refusal`'s), as the colab host words it."""
        tier = TIER_INFO[account.tier]
        why = refusal(self.state, account, params.accelerator)
        if why == "denylisted":
            return xssi_json({"outcome": OUTCOME_DENYLISTED})
        if why == "quota_denied":
            return xssi_json({"outcome": OUTCOME_QUOTA_DENIED, "sub": tier.sub})
        if why == "quota_exceeded":
            return xssi_json({"outcome": OUTCOME_QUOTA_EXCEEDED, "sub": tier.sub})
        if why == "ineligible":
            # Live findings: a free account asking for a GPU it may not have got 412 (G1);
            # a paying account without the entitlement got 400 (A6); docs/protocol.md §13.
            if account.tier == "free":
                return web.Response(status=412, text="Precondition Failed")
            name = params.accelerator.name
            raise reject(400, f"Accelerator {name} is not available to this account.")
        if why == "too_many":
            return web.Response(status=412, text="Precondition Failed")
        if why == "unavailable":
            return web.Response(status=503, text="Service Unavailable")
        return None

    async def unassign_get(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        runtime = self._owned(account, request.match_info["endpoint"])
        return xssi_json(
            {"token": self.state.tickets.issue(account.email, "unassign", runtime.endpoint)}
        )

    async def unassign_post(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        endpoint = request.match_info["endpoint"]
        self._check_xsrf(request, account, "unassign", endpoint)
        runtime = self._owned(account, endpoint)
        await self.manager.release(runtime, "unassigned")
        return xssi_json({})

    # -- keep-alive, listings, balance -----------------------------------------------------

    async def keep_alive(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        if request.headers.get("X-Colab-Tunnel") != "Google":
            raise reject(400, "Missing or wrong X-Colab-Tunnel header.")
        runtime = self._owned(account, request.match_info["endpoint"])
        self._refuse_keepalive(runtime)
        runtime.touch()
        return web.Response(status=200)

    def _refuse_keepalive(self, runtime: Runtime) -> None:
        """The admin API's keep-alive fault: Colab's answers to a token it no longer takes
        (401), one without the scope it wants (403, as Google's CLI met it), or a runtime the
        front end dropped (404). The runtime is not touched, so it idles towards reclaim."""
        status = self.state.faults.refuse_keepalive
        if status == 401:
            raise reject(401, INVALID_CREDENTIALS)
        if status == 403:
            raise reject(
                403, "Request had insufficient authentication scopes.", "SCOPE_NOT_PERMITTED"
            )
        if status == 404:
            raise reject(404, f"No assignment with endpoint {runtime.endpoint}.")

    async def assignments(self, request: web.Request) -> web.Response:
        """``/tun/m/assignments``: every listing mints a fresh proxy token (docs/protocol.md §6)."""
        account = self._colab(request)
        items = []
        for runtime in self.state.runtimes_of(account.email):
            if not runtime.ready:
                continue
            token, ttl = runtime.mint_proxy_token(self.state.config.proxy_token_ttl)
            item: dict[str, Any] = {
                "accelerator": runtime.accelerator.name,
                "endpoint": runtime.endpoint,
                "variant": VARIANT_NUMBER[runtime.accelerator.variant],
                "machineShape": runtime.machine_shape,
                "runtimeProxyInfo": {
                    "token": token,
                    "tokenExpiresInSeconds": _ttl(ttl),
                    "url": runtime.proxy_url,
                },
                "notebookIdHash": runtime.nbh,
            }
            if runtime.version_label:
                item["runtimeVersionLabel"] = runtime.version_label
            items.append(item)
        return xssi_json({"assignments": items})

    def _usage(self, account: Account) -> tuple[float, int]:
        self.state.settle(account.email)
        ready = [r for r in self.state.runtimes_of(account.email) if r.ready]
        return round(self.state.burn_rate(account.email), 4), len(ready)

    def _free_quota(self, account: Account, *, refill: float) -> dict[str, Any]:
        return {"remainingTokens": str(int(account.free_milli)), "nextRefillTimestampSec": refill}

    async def ccu_info(self, request: web.Request) -> web.Response:
        """``/tun/m/ccu-info`` in the schema VS Code used before moving to GAPI user-info, and
        nothing more: Colab names no plan here (the assign reply's ``subTier`` and GAPI
        user-info do). Its numbers are plain JSON numbers, so the refill time keeps its
        fraction of a second."""
        account = self._colab(request)
        rate, count = self._usage(account)
        body: dict[str, Any] = {
            "currentBalance": round(account.paid_units, 6),
            "consumptionRateHourly": rate,
            "assignmentsCount": count,
            "eligibleGpus": models(account.tier, "GPU", eligible=True),
            "ineligibleGpus": models(account.tier, "GPU", eligible=False),
            "eligibleTpus": models(account.tier, "TPU", eligible=True),
            "ineligibleTpus": models(account.tier, "TPU", eligible=False),
        }
        if account.paid_units <= 0:  # the free allowance shows only once paid units are gone
            body["freeCcuQuotaInfo"] = self._free_quota(
                account, refill=round(account.next_refill, 3)
            )
        return xssi_json(body)

    async def experiment_state(self, request: web.Request) -> web.Response:
        """Flags; the one colab-host call that may come without a bearer token (signed out)."""
        require_authuser(request)
        if "Authorization" in request.headers:
            authenticate(request, self.state, "colab")
        return xssi_json(
            {
                "experiments": {
                    "enable_public_api_vscode": False,
                    "enable_vscode_telemetry": False,
                    "resource_poll_interval_ms": 10000,
                    "runtime_version_names": list(RUNTIME_VERSIONS),
                },
                "selectedIds": [],
            }
        )

    # -- credentials propagation -----------------------------------------------------------

    def _propagation_params(self, request: web.Request) -> tuple[str, bool]:
        authtype = _single(request, "authtype")
        if authtype not in AUTH_TYPES:
            raise reject(400, f"Invalid authtype {authtype!r}.")
        if _single(request, "version") != "2":
            raise reject(400, "Parameter version must be 2.")
        dryrun = _bool_param(request, "dryrun", required=True)
        _bool_param(request, "propagate", required=False)
        _bool_param(request, "record", required=False)
        return authtype, bool(dryrun)

    async def propagation_get(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        self._propagation_params(request)
        runtime = self._owned(account, request.match_info["endpoint"])
        ticket = self.state.tickets.issue(account.email, "propagate", runtime.endpoint)
        return xssi_json({"token": ticket})

    async def propagation_post(self, request: web.Request) -> web.Response:
        account = self._colab(request)
        authtype, dryrun = self._propagation_params(request)
        endpoint = request.match_info["endpoint"]
        self._check_xsrf(request, account, "propagate", endpoint)
        runtime = self._owned(account, endpoint)
        consents = self.state.consents
        if consents.granted(account.email, runtime.endpoint, authtype):
            return xssi_json({"success": True})
        if not dryrun:
            return xssi_json({"success": False})
        state = consents.request(account.email, runtime.endpoint, authtype)
        uri = f"{self.state.base_url}{CONSENT_PATH}?state={state}"
        return xssi_json({"success": False, "unauthorized_redirect_uri": uri})

    async def consent_page(self, request: web.Request) -> web.Response:
        """The browser page behind ``unauthorized_redirect_uri`` (no bearer: a person is here)."""
        state = request.query.get("state", "")
        pending = self.state.consents.pending(state)
        if pending is None:
            return _page(
                400, "Error 400: invalid_request", "This consent link is unknown or expired."
            )
        if self.state.config.auto_approve:
            self.state.consents.decide(state, allow=True)
            return _page(200, "Access granted", _CONSENT_DONE)
        what = (
            "your Google Drive files"
            if pending.authtype == "dfs_ephemeral"
            else "your Google credentials"
        )
        body = (
            f"<p>{html.escape(pending.email)}: allow the Colab runtime "
            f"<code>{html.escape(pending.endpoint)}</code> to access {what}?</p>"
            f'<form method="post" action="{CONSENT_PATH}">'
            f'<input type="hidden" name="state" value="{html.escape(state)}">'
            '<button type="submit" name="decision" value="allow" id="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
            "</form>"
        )
        return _page(200, "Colab wants to access your Google Account", body)

    async def consent_decision(self, request: web.Request) -> web.Response:
        form = await request.post()
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return _page(400, "Error 400: invalid_request", "No decision was given.")
        decided = self.state.consents.decide(str(form.get("state", "")), decision == "allow")
        if decided is None:
            return _page(
                400, "Error 400: invalid_request", "This consent link is unknown or expired."
            )
        if decision == "allow":
            return _page(200, "Access granted", _CONSENT_DONE)
        return _page(200, "Access denied", "<p>You can close this tab.</p>")

    # -- GAPI ------------------------------------------------------------------------------

    def _gapi_groups(self, account: Account, *, eligible: bool) -> list[dict[str, Any]]:
        groups = []
        for variant in ("GPU", "TPU"):
            names = models(account.tier, variant, eligible=eligible)
            if names:
                groups.append({"variant": VARIANT_GAPI[variant], "models": names})
        return groups

    async def user_info(self, request: web.Request) -> web.Response:
        account = self._gapi(request)
        value = _single(request, "get_ccu_consumption_info")
        if value not in (None, "true", "false", "1", "0"):
            raise reject(400, "Invalid value for get_ccu_consumption_info.")
        consumption = value in ("true", "1")
        rate, count = self._usage(account)
        body: dict[str, Any] = {"subscriptionTier": TIER_INFO[account.tier].gapi_name}
        if account.tier != "free" or account.paid_units > 0 or consumption:
            body["paidComputeUnitsBalance"] = round(account.paid_units, 6)
        if consumption:
            body["consumptionRateHourly"] = rate
            body["assignmentsCount"] = count
        body["eligibleAccelerators"] = self._gapi_groups(account, eligible=True)
        body["ineligibleAccelerators"] = self._gapi_groups(account, eligible=False)
        if consumption and account.paid_units <= 0:
            body["freeCcuQuotaInfo"] = self._free_quota(account, refill=int(account.next_refill))
        return xssi_json(body)

    async def gapi_assignments(self, request: web.Request) -> web.Response:
        """GAPI listing: ProtoJSON, so an account without runtimes gets ``{}``."""
        account = self._gapi(request)
        items = []
        for runtime in self.state.runtimes_of(account.email):
            if not runtime.ready:
                continue
            token, left = runtime.current_proxy_token(self.state.config.proxy_token_ttl)
            item: dict[str, Any] = {
                "endpoint": runtime.endpoint,
                "accelerator": runtime.accelerator.name,
                "variant": VARIANT_GAPI[runtime.accelerator.variant],
                "machineShape": SHAPE_GAPI[runtime.machine_shape],
                "runtimeProxyInfo": {
                    "token": token,
                    "tokenTtl": f"{_ttl(left)}s",
                    "url": runtime.proxy_url,
                },
                "notebookIdHash": runtime.nbh,
            }
            if runtime.version_label:
                item["runtimeVersionLabel"] = runtime.version_label
            items.append(item)
        return xssi_json({"assignments": items} if items else {})

    async def runtime_proxy_token(self, request: web.Request) -> web.Response:
        account = self._gapi(request)
        endpoint = _single(request, "endpoint")
        if not endpoint:
            raise reject(400, "Missing required parameter endpoint.")
        if _single(request, "port") != "8080":
            raise reject(400, "Parameter port must be 8080.")
        runtime = self._owned(account, endpoint)
        token, ttl = runtime.mint_proxy_token(self.state.config.proxy_token_ttl)
        return xssi_json({"token": token, "tokenTtl": f"{ttl:g}s", "url": runtime.proxy_url})


_CONSENT_DONE = "<p>Access granted. Go back to your editor and click Continue.</p>"
