"""Runtimes through Colab's public API (``colaboratory.googleapis.com`` v1beta).

Google designates this API for integrations like colabtray, but keeps it on an allowlist
(docs: colab-public-api.md §1). :class:`PublicRuntimes` makes the calls that have a public
form — list, get (a fresh proxy token), create (a long-running operation), delete, runtime
specs and the plan — and returns the models the ``/tun/m`` calls return, so that nothing above
the client knows which API found a runtime. Keep-alive, credentials and the balance have no
public form and stay on ``/tun/m``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2

from colabtray.colab import errors
from colabtray.colab.models import (
    CPU,
    GPU,
    HIGH_MEM_ONLY,
    TPU,
    AssignedRuntime,
    Eligibility,
    Runtime,
    RuntimeProxyInfo,
    chooses_high_mem,
)
from colabtray.colab.public_models import (
    Operation,
    PublicRuntime,
    RuntimeList,
    RuntimeSpecs,
    Status,
    Subscription,
)
from colabtray.colab.replies import parse

log = logging.getLogger(__name__)

# How long one WaitOperation may hold the request (Google's extension asks for 200 s).
WAIT = "200s"
WAIT_TIMEOUT = httpx2.Timeout(230.0, connect=20.0)
_VARIANTS = {CPU: "VARIANT_CPU", GPU: "VARIANT_GPU", TPU: "VARIANT_TPU"}
# Statuses with which the API refuses a client as a whole (not one call): use /tun/m instead.
REFUSING = (403, 404, 501)

# The client's plumbing: one authenticated call to a host, JSON back (see ColabClient._backend).
Call = Callable[..., Awaitable[Any]]


def refused(response: httpx2.Response) -> errors.ColabError:
    """The error for a status in ``REFUSING``: the API is not open to this sign-in."""
    try:
        status = parse(Status, response.json().get("error", {}), "the refusal")
        reason = status.reason
    except (ValueError, AttributeError, errors.ColabError):
        reason = None
    return errors.PublicApiRefusedError(response.status_code, reason)


class PublicRuntimes:
    """The calls of the public API, sent through the client's ``call``."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._names: dict[str, str] = {}  # endpoint → runtimes/ID
        self._plan: str | None = None  # as GetSubscription last named it

    async def _get(self, path: str, what: str, **kwargs: Any) -> Any:
        return await self._call("GET", "public", path, what=what, **kwargs)

    async def plan(self) -> str:
        """The account's plan (GetSubscription); PublicApiRefusedError where the API is shut
        to this sign-in, which is how ``auto`` finds out."""
        body = await self._get(
            "/v1beta/subscription",
            "the plan (Colab's public API)",
            status_errors=dict.fromkeys(REFUSING, refused),
            retry=False,  # asked on the way to another call: an outage must not slow it
        )
        self._plan = str(parse(Subscription, body, "the plan").tier)
        return self._plan

    async def list(self) -> list[Runtime]:
        body = await self._get("/v1beta/runtimes", "the runtime list")
        listed = parse(RuntimeList, RuntimeList.read(body), "the runtime list").runtimes
        runtimes = [entry.runtime() for entry in listed]
        self._names = {r.endpoint: r.public_name for r in runtimes if r.public_name}
        return runtimes

    async def _name_of(self, endpoint: str) -> str:
        if endpoint not in self._names:
            await self.list()
        name = self._names.get(endpoint)
        if name is None:
            raise errors.RuntimeGoneError(endpoint)
        return name

    async def refresh(self, endpoint: str) -> RuntimeProxyInfo:
        """A fresh proxy token: GetRuntime answers with a new ``connectionInfo``."""
        name = await self._name_of(endpoint)
        body = await self._get(
            f"/v1beta/{name}",
            f"a new access token for runtime {endpoint}",
            status_errors={404: lambda _: errors.RuntimeGoneError(endpoint)},
        )
        proxy = parse(PublicRuntime, body, "the runtime access token").runtime().proxy
        assert proxy is not None  # connectionInfo is required in PublicRuntime
        return proxy

    async def delete(self, endpoint: str) -> None:
        name = await self._name_of(endpoint)
        await self._call(
            "DELETE",
            "public",
            f"/v1beta/{name}",
            what=f"disconnecting runtime {endpoint}",
            status_errors={404: lambda _: errors.RuntimeGoneError(endpoint)},
            expect_json=False,
        )
        self._names.pop(endpoint, None)

    async def create(
        self,
        variant: str,
        accelerator: str | None,
        *,
        high_mem: bool,
        runtime_version: str | None,
    ) -> AssignedRuntime:
        """CreateRuntime, then wait on its operation. A ``requestId`` makes the retried POST
        the same operation, so the call is retried like a read."""
        what = "the new runtime"
        # L4 and the TPUs exist only as high-memory machines, and are listed so.
        shape = accelerator in HIGH_MEM_ONLY or chooses_high_mem(variant, accelerator, high_mem)
        spec = {
            "variant": _VARIANTS.get(variant, f"VARIANT_{variant}"),
            "accelerator": accelerator or "NONE",
            "shape": "SHAPE_HIGHMEM" if shape else "SHAPE_STANDARD",
        }
        body: dict[str, Any] = {"runtimeSpec": spec}
        if runtime_version:
            body["version"] = runtime_version
        reply = await self._call(
            "POST",
            "public",
            "/v1beta/runtimes",
            what=what,
            params={"requestId": str(uuid.uuid4())},
            body=body,
            retry=True,
        )
        operation = parse(Operation, reply, what)
        while not operation.done:
            reply = await self._get(
                f"/v1/{operation.name}:wait",
                what,
                params={"timeout": WAIT},
                request_timeout=WAIT_TIMEOUT,
            )
            operation = parse(Operation, reply, what)
        if operation.error is not None:
            raise _operation_error(operation.name, operation.error, accelerator)
        if operation.response is None:
            raise errors.MalformedResponseError(what, "a finished operation without a runtime")
        runtime = operation.response.runtime()
        self._names[runtime.endpoint] = operation.response.name
        return AssignedRuntime.model_validate(dict(runtime))

    async def eligibility(self) -> Eligibility:
        """What this account may create (ListRuntimeSpecs) and its plan (GetSubscription)."""
        body = await self._get("/v1beta/runtimespecs", "the account's eligible runtimes")
        specs = parse(RuntimeSpecs, body, "the account's eligible runtimes")
        return specs.eligibility(self._plan or await self.plan())


def _operation_error(operation: str, status: Status, accelerator: str | None) -> errors.ColabError:
    """The sentence colabtray already has for each of Google's reasons; else the operation,
    its code and its message."""
    reason = status.reason
    if reason == "TOO_MANY_ACTIVE_RUNTIMES":
        return errors.TooManyRuntimesError()
    if reason == "QUOTA_EXCEEDED_USAGE_TIME":
        return errors.QuotaExceededError()
    if reason == "DENYLISTED":
        return errors.DenylistedError()
    if accelerator and status.code == 9:  # FAILED_PRECONDITION: not available right now
        return errors.AcceleratorUnavailableError(accelerator)
    return errors.OperationFailedError("the new runtime", operation, status.code, status.message)

