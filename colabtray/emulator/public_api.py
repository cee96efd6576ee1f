"""Colab's public API, ``colaboratory.googleapis.com`` v1beta, and its operations call.

Written from the API's own description (docs: colab-public-api.md §1) with plain dicts:
proto-JSON (camelCase, enum names, RFC 3339 times), no ``)]}'`` line, Google's error bodies.
It is served under ``/public`` of the emulator (``COLABTRAY_PUBLIC_API_URL``) and sees the same
runtimes as ``/tun/m``, as on Colab. Google keeps the API on an allowlist: with
``--public-api denied`` (the default, as for most OAuth clients today) every call with a
valid token is refused with 403 ``PERMISSION_DENIED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from colabtray.emulator.assigning import Refusal, StartFailed, refusal, start_runtime
from colabtray.emulator.catalog import ACCELERATORS, CPU, TIER_INFO, Accelerator
from colabtray.emulator.guards import (
    INVALID_CREDENTIALS,
    MISSING_CREDENTIALS,
    Rejected,
    bearer_value,
)
from colabtray.emulator.runtimes import RuntimeManager
from colabtray.emulator.state import Account, EmulatorState, Runtime
from colabtray.emulator.tokens import SCOPE_COLAB

PREFIX = "/public"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
METADATA_TYPE = "type.googleapis.com/google.colab.v1beta.CreateRuntimeMetadata"
RUNTIME_TYPE = "type.googleapis.com/google.colab.v1beta.Runtime"
DOMAIN = "colaboratory.googleapis.com"
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_RUNTIME_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_WAIT = re.compile(r"^(\d{1,4})(\.\d+)?s$")
_MAX_WAIT = 200.0
_KEPT_OPERATIONS = 500

VARIANTS = {"DEFAULT": "VARIANT_CPU", "GPU": "VARIANT_GPU", "TPU": "VARIANT_TPU"}
TIERS = {
    "free": "SUBSCRIPTION_TIER_FREE",
    "pro": "SUBSCRIPTION_TIER_PRO",
    "pro_plus": "SUBSCRIPTION_TIER_PRO_PLUS",
}

# google.rpc.Code numbers and names of the statuses an operation can end in.
_CODES = {
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    13: "INTERNAL",
}
# What CreateRuntime's operation says for each refusal: code, reason (None: no ErrorInfo).
_REFUSALS: dict[Refusal, tuple[int, str | None, str]] = {
    "denylisted": (7, "DENYLISTED", "This account cannot be assigned Colab runtimes."),
    "quota_denied": (8, "QUOTA_EXCEEDED_USAGE_TIME", "Colab usage limit reached."),
    "quota_exceeded": (8, "QUOTA_EXCEEDED_USAGE_TIME", "Colab usage limit reached."),
    "too_many": (8, "TOO_MANY_ACTIVE_RUNTIMES", "Too many active runtimes."),
    "ineligible": (7, None, "The requested runtime spec is not available to this user."),
    "unavailable": (9, None, "The requested accelerator is not available right now."),
}


def _error(status: int, status_name: str, message: str, reason: str | None) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": status_name}
    if reason:
        error["details"] = [{"@type": ERROR_INFO, "reason": reason, "domain": DOMAIN}]
    return web.json_response({"error": error}, status=status)


def _rfc3339(seconds_from_now: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Operation:
    """One CreateRuntime, as ``operations/{id}``."""

    id: str
    email: str
    runtime_id: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: dict[str, Any] | None = None
    endpoint: str | None = None
    started: float = field(default_factory=time.monotonic)


class PublicApi:
    """Request handlers of ``colaboratory.googleapis.com`` (v1beta and v1 operations)."""

    def __init__(self, state: EmulatorState, manager: RuntimeManager, *, allowed: bool) -> None:
        self.state = state
        self.manager = manager
        self.allowed = allowed
        self._ids: dict[str, str] = {}  # runtime id -> endpoint
        self._operations: dict[str, _Operation] = {}
        self._by_request: dict[tuple[str, str], str] = {}  # (email, requestId) -> operation id
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/v1beta/runtimes", self.list_runtimes),
            web.post(f"{PREFIX}/v1beta/runtimes", self.create_runtime),
            web.get(f"{PREFIX}/v1beta/runtimes/{{runtime}}", self.get_runtime),
            web.delete(f"{PREFIX}/v1beta/runtimes/{{runtime}}", self.delete_runtime),
            web.get(f"{PREFIX}/v1beta/runtimespecs", self.list_specs),
            web.get(f"{PREFIX}/v1beta/subscription", self.subscription),
            web.get(f"{PREFIX}/v1/operations/{{operation:[^/:]+}}:wait", self.wait_operation),
            web.get(f"{PREFIX}/v1/operations/{{operation:[^/:]+}}", self.get_operation),
        ]

    # -- checks ----------------------------------------------------------------------------

    def _account(self, request: web.Request) -> Account:
        """The caller: a live token with the ``colaboratory`` scope, on the allowlist."""
        if "Authorization" not in request.headers:
            raise Rejected(_error(401, "UNAUTHENTICATED", MISSING_CREDENTIALS, None))
        checked = self.state.tokens.check(bearer_value(request))
        if isinstance(checked, str) or checked.email not in self.state.accounts:
            raise Rejected(_error(401, "UNAUTHENTICATED", INVALID_CREDENTIALS, None))
        if SCOPE_COLAB not in checked.scopes:
            raise Rejected(
                _error(
                    403,
                    "PERMISSION_DENIED",
                    "Request had insufficient authentication scopes.",
                    "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                )
            )
        if not self.allowed:
            raise Rejected(
                _error(
                    403,
                    "PERMISSION_DENIED",
                    "The caller does not have permission",
                    "IAM_PERMISSION_DENIED",
                )
            )
        return self.state.accounts[checked.email]

    def _runtime_id(self, endpoint: str) -> str:
        for runtime_id, known in self._ids.items():
            if known == endpoint:
                return runtime_id
        runtime_id = str(uuid.uuid4())
        self._ids[runtime_id] = endpoint
        return runtime_id

    def _owned(self, account: Account, runtime_id: str) -> Runtime:
        endpoint = self._ids.get(runtime_id, "")
        runtime = self.state.runtimes.get(endpoint)
        if runtime is None or runtime.email != account.email or not runtime.ready:
            raise Rejected(
                _error(404, "NOT_FOUND", f"Runtime runtimes/{runtime_id} not found.", None)
            )
        return runtime

    # -- shapes ----------------------------------------------------------------------------

    def _runtime(self, runtime: Runtime) -> dict[str, Any]:
        token, left = runtime.current_proxy_token(self.state.config.proxy_token_ttl)
        body: dict[str, Any] = {
            "name": f"runtimes/{self._runtime_id(runtime.endpoint)}",
            "runtimeSpec": _key(runtime.accelerator, runtime.machine_shape),
            "connectionInfo": {
                "url": runtime.proxy_url,
                "token": token,
                "expireTime": _rfc3339(left),
                "endpoint": runtime.endpoint,
            },
        }
        if runtime.version_label:
            body["version"] = runtime.version_label
        return body

    def _operation(self, operation: _Operation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"operations/{operation.id}",
            "metadata": {"@type": METADATA_TYPE, "runtime": f"runtimes/{operation.runtime_id}"},
            "done": operation.done.is_set(),
        }
        if operation.error is not None:
            body["error"] = operation.error
        elif operation.endpoint is not None:
            runtime = self.state.runtimes.get(operation.endpoint)
            if runtime is not None:
                body["response"] = {"@type": RUNTIME_TYPE, **self._runtime(runtime)}
        return body

    # -- runtimes --------------------------------------------------------------------------

    async def list_runtimes(self, request: web.Request) -> web.Response:
        account = self._account(request)
        runtimes = [r for r in self.state.runtimes_of(account.email) if r.ready]
        body = {"runtimes": [self._runtime(r) for r in runtimes]} if runtimes else {}
        return web.json_response(body)

    async def get_runtime(self, request: web.Request) -> web.Response:
        account = self._account(request)
        return web.json_response(self._runtime(self._owned(account, request.match_info["runtime"])))

    async def delete_runtime(self, request: web.Request) -> web.Response:
        account = self._account(request)
        runtime = self._owned(account, request.match_info["runtime"])
        await self.manager.release(runtime, "deleted")
        return web.json_response({})

    async def create_runtime(self, request: web.Request) -> web.Response:
        account = self._account(request)
        request_id = request.query.get("requestId")
        if request_id is not None and not _UUID4.fullmatch(request_id):
            raise Rejected(_error(400, "INVALID_ARGUMENT", "request_id must be a UUID4.", None))
        if request_id is not None:
            known = self._by_request.get((account.email, request_id))
            if known is not None and known in self._operations:
                return web.json_response(self._operation(self._operations[known]))
        runtime_id = request.query.get("runtimeId") or str(uuid.uuid4())
        if "runtimeId" in request.query and not _RUNTIME_ID.fullmatch(runtime_id):
            raise Rejected(
                _error(400, "INVALID_ARGUMENT", "runtime_id must follow RFC 1034.", None)
            )
        accelerator, high_mem, version = await _requested(request)
        operation = _Operation(secrets.token_hex(16), account.email, runtime_id)
        self._keep(operation, account.email, request_id)
        if runtime_id in self._ids and self._ids[runtime_id] in self.state.runtimes:
            operation.error = _status(6, None, f"Runtime runtimes/{runtime_id} already exists.")
            operation.done.set()
            return web.json_response(self._operation(operation))
        why = refusal(self.state, account, accelerator)
        if why is not None:
            code, reason, message = _REFUSALS[why]
            operation.error = _status(code, reason, message)
            operation.done.set()
            return web.json_response(self._operation(operation))
        task = asyncio.create_task(self._create(operation, account, accelerator, high_mem, version))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(self._operation(operation))

    async def _create(
        self,
        operation: _Operation,
        account: Account,
        accelerator: Accelerator,
        high_mem: bool,
        version: str | None,
    ) -> None:
        try:
            runtime = await start_runtime(
                self.state,
                self.manager,
                account,
                accelerator,
                high_mem=high_mem,
                nbh=secrets.token_urlsafe(33)[:44],
                version=version,
            )
        except StartFailed:
            operation.error = _status(13, None, "The runtime could not be started.")
        else:
            self._ids[operation.runtime_id] = runtime.endpoint
            operation.endpoint = runtime.endpoint
        finally:
            operation.done.set()

    def _keep(self, operation: _Operation, email: str, request_id: str | None) -> None:
        if len(self._operations) >= _KEPT_OPERATIONS:
            for old_id in [k for k, op in self._operations.items() if op.done.is_set()][:100]:
                del self._operations[old_id]
            self._by_request = {k: v for k, v in self._by_request.items() if v in self._operations}
        self._operations[operation.id] = operation
        if request_id is not None:
            self._by_request[(email, request_id)] = operation.id

    # -- specs and plan --------------------------------------------------------------------

    async def list_specs(self, request: web.Request) -> web.Response:
        account = self._account(request)
        tier = TIER_INFO[account.tier]
        specs = []
        for accelerator in ACCELERATORS.values():
            eligible = accelerator.name == CPU or accelerator.name in tier.eligible
            if accelerator.high_mem_only:  # one shape only: the high-memory machine
                specs.append({"key": _key(accelerator, 1), "eligible": eligible})
                continue
            specs.append({"key": _key(accelerator, 0), "eligible": eligible})
            specs.append({"key": _key(accelerator, 1), "eligible": eligible and tier.high_mem})
        return web.json_response({"runtimeSpecs": specs})

    async def subscription(self, request: web.Request) -> web.Response:
        account = self._account(request)
        return web.json_response({"name": "subscription", "tier": TIERS[account.tier]})

    # -- operations ------------------------------------------------------------------------

    def _own_operation(self, account: Account, operation_id: str) -> _Operation:
        operation = self._operations.get(operation_id)
        if operation is None or operation.email != account.email:
            raise Rejected(
                _error(404, "NOT_FOUND", f"Operation operations/{operation_id} not found.", None)
            )
        return operation

    async def get_operation(self, request: web.Request) -> web.Response:
        account = self._account(request)
        operation = self._own_operation(account, request.match_info["operation"])
        return web.json_response(self._operation(operation))

    async def wait_operation(self, request: web.Request) -> web.Response:
        account = self._account(request)
        operation = self._own_operation(account, request.match_info["operation"])
        match = _WAIT.fullmatch(request.query.get("timeout", f"{_MAX_WAIT:.0f}s"))
        if match is None:
            raise Rejected(
                _error(400, "INVALID_ARGUMENT", "timeout must be a duration like '200s'.", None)
            )
        wait = min(_MAX_WAIT, float(match.group(1) + (match.group(2) or "")))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await operation.done.wait()
        return web.json_response(self._operation(operation))

    async def close(self) -> None:
        """Cancel creations still starting (their runtimes clean up after themselves)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _key(accelerator: Accelerator, shape: int) -> dict[str, str]:
    return {
        "variant": VARIANTS[accelerator.variant],
        "accelerator": accelerator.name,
        "shape": "SHAPE_HIGHMEM" if shape else "SHAPE_STANDARD",
    }


def _status(code: int, reason: str | None, message: str) -> dict[str, Any]:
    """A ``google.rpc.Status`` for an operation's ``error``."""
    status: dict[str, Any] = {"code": code, "message": message}
    if reason:
        status["details"] = [{"@type": ERROR_INFO, "reason": reason, "domain": DOMAIN}]
    return status


async def _requested(request: web.Request) -> tuple[Accelerator, bool, str | None]:
    """The accelerator, High-RAM wish and version a CreateRuntime body asks for."""
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        raise Rejected(_error(400, "INVALID_ARGUMENT", "Invalid JSON payload.", None)) from None
    spec = body.get("runtimeSpec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise Rejected(_error(400, "INVALID_ARGUMENT", "runtime.runtime_spec is required.", None))
    variant = {v: k for k, v in VARIANTS.items()}.get(spec.get("variant", ""))
    accelerator = ACCELERATORS.get(spec.get("accelerator", ""))
    shape = spec.get("shape", "SHAPE_STANDARD")
    if variant is None or accelerator is None or accelerator.variant != variant:
        raise Rejected(
            _error(400, "INVALID_ARGUMENT", "runtime_spec names no runtime Colab offers.", None)
        )
    if shape not in ("SHAPE_STANDARD", "SHAPE_HIGHMEM") or (
        accelerator.high_mem_only and shape != "SHAPE_HIGHMEM"  # a key Colab does not list
    ):
        raise Rejected(_error(400, "INVALID_ARGUMENT", f"Invalid shape {shape!r}.", None))
    version = body.get("version") or None
    if version is not None and not isinstance(version, str):
        raise Rejected(_error(400, "INVALID_ARGUMENT", "version must be a string.", None))
    return accelerator, shape == "SHAPE_HIGHMEM", version
