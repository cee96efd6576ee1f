"""An async client for the Colab backend, speaking it as Google's own clients do.

One class owns request building (hosts, ``authuser=0``, headers), the XSSI prefix, retries
and the mapping of HTTP outcomes to the typed errors of :mod:`colabtray.colab.errors`.
The user's Google token goes only to the colab and GAPI hosts; a runtime sees only its own
proxy token. Nothing here logs a token, a query string or a body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx2
import stamina
from pydantic import TypeAdapter

from colabtray import __version__
from colabtray.colab import errors
from colabtray.colab.models import (
    CPU,
    AssignedRuntime,
    AssignmentList,
    AssignTicket,
    CcuInfo,
    ComputeUnits,
    ConsumptionUserInfo,
    Eligibility,
    JupyterSession,
    Kernel,
    PropagationResult,
    Resources,
    Runtime,
    RuntimeProxyInfo,
    UserInfo,
    XsrfTicket,
    chooses_high_mem,
)
from colabtray.colab.public_api import PublicRuntimes
from colabtray.colab.replies import parse, try_parse
from colabtray.colab.wire import RUNTIME_TOKEN_HEADER
from colabtray.settings import Settings
from colabtray.system import trust

log = logging.getLogger(__name__)

XSSI_PREFIX = ")]}'\n"
XSRF_HEADER = "X-Goog-Colab-Token"

Host = Literal["colab", "gapi", "public"]


class TokenSource(Protocol):
    """Where the client gets the user's Google access token."""

    async def access_token(self) -> str:
        """A token to use now (refreshed ahead of expiry by the implementation)."""
        ...

    async def token_rejected(self, token: str) -> str | None:
        """The backend said 401 to ``token``: a fresh one to retry with once, or ``None``.

        It may instead raise a ColabError that says better what the user should do.
        """
        ...


@dataclass(frozen=True)
class ApiChoice:
    """Which API serves runtimes for the signed-in account, and why (``colabtray doctor``)."""

    api: Literal["public", "tun"]
    why: str


def new_notebook_hash() -> str:
    """A fresh ``nbh``: a UUID with ``_`` for ``-``, padded with dots to 44 characters."""
    return str(uuid.uuid4()).replace("-", "_").ljust(44, ".")


class _Retryable(Exception):
    """Raised inside the retry loop for outcomes worth another try; carries the final error."""

    def __init__(self, error: errors.ColabError) -> None:
        self.error = error


ErrorFactory = Callable[[httpx2.Response], errors.ColabError]


class ColabClient:
    """Every call colabtray makes to the Colab backend and to its runtimes."""

    def __init__(
        self,
        settings: Settings,
        tokens: TokenSource,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(settings.request_timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"colabtray/{__version__}"},
            verify=trust.verification(settings),
        )
        self._public = PublicRuntimes(self._backend)
        self._choice: ApiChoice | None = None
        self._choosing = asyncio.Lock()  # concurrent first calls ask the public API once

    async def __aenter__(self) -> ColabClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- which API serves runtimes ---------------------------------------------------------

    async def api_choice(self) -> ApiChoice:
        """The public API or ``/tun/m``, as the ``runtime_api`` setting says. ``auto`` tries the
        public API once per account (GetSubscription) and keeps to ``/tun/m`` for the run when
        Google refuses it (most OAuth clients today: the API is on an allowlist)."""
        setting = self._settings.runtime_api
        if setting != "auto":
            return ApiChoice(setting, f"the runtime_api setting is {setting}")
        async with self._choosing:
            if self._choice is None:
                try:
                    await self._public.plan()
                except errors.RequestRejectedError as exc:  # refused (403, 404, 501, …)
                    self._choice = ApiChoice("tun", exc.message)
                except (errors.BackendUnavailableError, errors.MalformedResponseError) as exc:
                    # No verdict, but asking again before every call would make each one wait
                    # out an unreachable host: /tun/m for this run (a new sign-in asks again).
                    why = f"Colab's public API did not answer: {exc.message}"
                    self._choice = ApiChoice("tun", why)
                else:
                    self._choice = ApiChoice("public", "Colab's public API answers this account")
                log.info("runtimes through %s: %s", self._choice.api, self._choice.why)
            return self._choice

    def forget_api_choice(self) -> None:
        """Another account signed in: ``auto`` asks the public API again for it."""
        self._choice = None

    async def _public_api(self) -> bool:
        return (await self.api_choice()).api == "public"

    # ---- runtimes: list, assign, unassign, keep alive, refresh -----------------------------

    async def list_assignments(self) -> list[Runtime]:
        """All runtimes assigned to the account, including ones made elsewhere."""
        if await self._public_api():
            return await self._public.list()
        if self._settings.listing_api == "gapi":
            body = await self._backend("GET", "gapi", "/v1/assignments", what="the runtime list")
        else:
            body = await self._backend(
                "GET", "colab", "/tun/m/assignments", what="the runtime list"
            )
        return parse(AssignmentList, body, "the runtime list").assignments

    async def assign(
        self,
        variant: str = CPU,
        accelerator: str | None = None,
        *,
        high_mem: bool = False,
        runtime_version: str | None = None,
        notebook_hash: str | None = None,
    ) -> AssignedRuntime:
        """Assign a runtime (GET for the XSRF ticket, then POST), or return the existing one.

        Raises TooManyRuntimesError (412), AcceleratorUnavailableError (503),
        AcceleratorRefusedError (400 with an accelerator asked for), QuotaExceededError and
        DenylistedError (outcomes), and the common errors.
        """
        what = "the new runtime"
        accelerator = accelerator.upper() if accelerator else None
        if await self._public_api():
            return await self._public.create(
                variant, accelerator, high_mem=high_mem, runtime_version=runtime_version
            )
        params = {"nbh": notebook_hash or new_notebook_hash()}
        if variant != CPU:
            params["variant"] = variant
        if accelerator:
            params["accelerator"] = accelerator
        if chooses_high_mem(variant, accelerator, high_mem):
            params["shape"] = "hm"
        if runtime_version:
            params["runtime_version_label"] = runtime_version

        first = await self._backend("GET", "colab", "/tun/m/assign", params=params, what=what)
        ticket = try_parse(AssignTicket, first)
        if ticket is None:
            return parse(AssignedRuntime, first, what)

        refused: dict[int, ErrorFactory] = {}
        if accelerator and accelerator != "NONE":  # Colab's 400 then means "not for you"
            refused[400] = lambda _: errors.AcceleratorRefusedError(variant, accelerator)
        reply = await self._backend(
            "POST",
            "colab",
            "/tun/m/assign",
            params=params,
            headers={XSRF_HEADER: ticket.token},
            what=what,
            status_errors={
                412: lambda _: errors.TooManyRuntimesError(),
                503: lambda _: errors.AcceleratorUnavailableError(accelerator),
                **refused,
            },
        )
        outcome = reply.get("outcome") if isinstance(reply, dict) else None
        if outcome in (1, 2, 3):
            raise errors.QuotaExceededError()
        if outcome == 5:
            raise errors.DenylistedError()
        return parse(AssignedRuntime, reply, what)

    async def unassign(self, endpoint: str) -> None:
        """Give the runtime back (GET for the XSRF token, then POST; DeleteRuntime on the
        public API)."""
        if await self._public_api():
            await self._public.delete(endpoint)
            return
        what = f"disconnecting runtime {endpoint}"
        path = f"/tun/m/unassign/{endpoint}"
        gone = {404: lambda _: errors.RuntimeGoneError(endpoint)}
        ticket = parse(
            XsrfTicket,
            await self._backend("GET", "colab", path, what=what, status_errors=gone),
            what,
        )
        await self._backend(
            "POST",
            "colab",
            path,
            headers={XSRF_HEADER: ticket.token},
            what=what,
            status_errors=gone,
            expect_json=False,
        )

    async def keep_alive(self, endpoint: str) -> None:
        """Tell Colab the runtime is in use.

        A read timeout counts as success: the front end records the ping when the request
        arrives and often never answers (docs/protocol.md §7). Any other failure to get an
        answer (5xx, 429, a connect timeout, a broken connection) is tried again with backoff,
        as the other idempotent calls are; a refusal (401, 403, 404) is not. 404 raises
        RuntimeGoneError.
        """
        timeout = self._settings.keepalive_timeout
        try:
            await self._backend(
                "GET",
                "colab",
                f"/tun/m/{endpoint}/keep-alive/",
                headers={"X-Colab-Tunnel": "Google"},
                what=f"keeping runtime {endpoint} alive",
                status_errors={404: lambda _: errors.RuntimeGoneError(endpoint)},
                expect_json=False,
                request_timeout=httpx2.Timeout(timeout, connect=timeout),
                read_timeout_ok=True,
            )
        except _ReadTimedOut:
            log.debug("keep-alive for %s timed out reading; counted as sent", endpoint)

    async def tokens_come_with_listing(self) -> bool:
        """Whether a listing gives every runtime a fresh proxy token (``/tun/m``'s does), so
        one listing renews them all; else :meth:`refresh_proxy_token` asks for one runtime's."""
        return self._settings.listing_api != "gapi" and not await self._public_api()

    async def refresh_proxy_token(self, endpoint: str) -> RuntimeProxyInfo:
        """A fresh runtime proxy token (and URL); RuntimeGoneError if the runtime is gone."""
        if await self._public_api():
            return await self._public.refresh(endpoint)
        if self._settings.listing_api == "gapi":
            body = await self._backend(
                "GET",
                "gapi",
                "/v1/runtime-proxy-token",
                params={"endpoint": endpoint, "port": "8080"},
                what=f"a new access token for runtime {endpoint}",
                status_errors={404: lambda _: errors.RuntimeGoneError(endpoint)},
            )
            return parse(RuntimeProxyInfo, body, "the runtime access token")
        # The colab host mints a fresh token for every runtime on every listing.
        for runtime in await self.list_assignments():
            if runtime.endpoint == endpoint and runtime.proxy is not None:
                return runtime.proxy
        raise errors.RuntimeGoneError(endpoint)

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult:
        """Ask Colab to give the runtime the user's ``auth_type`` credentials (GET, then POST).

        ``auth_type`` is ``dfs_ephemeral`` (Drive) or ``auth_user_ephemeral`` (Google
        credentials). A dry run asks whether consent is needed first: then ``success`` is false
        and ``unauthorized_redirect_uri`` names the page where the user gives it. A real run
        pushes the credentials; ``success`` false means it failed. RuntimeGoneError on 404.
        """
        what = f"credentials for runtime {endpoint}"
        path = f"/tun/m/credentials-propagation/{endpoint}"
        params = {
            "authtype": auth_type,
            "version": "2",
            "dryrun": "true" if dry_run else "false",
            "propagate": "true",
            "record": "false",
        }
        gone = {404: lambda _: errors.RuntimeGoneError(endpoint)}
        ticket = parse(
            XsrfTicket,
            await self._backend("GET", "colab", path, params=params, what=what, status_errors=gone),
            what,
        )
        reply = await self._backend(
            "POST",
            "colab",
            path,
            params=params,
            headers={XSRF_HEADER: ticket.token},
            what=what,
            status_errors=gone,
        )
        return parse(PropagationResult, reply, what)

    # ---- the account ----------------------------------------------------------------------

    async def compute_units(self) -> ComputeUnits:
        """Balance, burn rate and free quota of the account."""
        what = "the compute-unit balance"
        if self._settings.account_api == "gapi":
            body = await self._backend(
                "GET",
                "gapi",
                "/v1/user-info",
                params={"get_ccu_consumption_info": "true"},
                what=what,
            )
            return parse(ConsumptionUserInfo, body, what).compute_units()
        body = await self._backend("GET", "colab", "/tun/m/ccu-info", what=what)
        return parse(CcuInfo, body, what).compute_units()

    async def eligibility(self) -> Eligibility:
        """Which accelerators this account may and may not assign (with the plan, where the
        reply names it)."""
        what = "the account's eligible runtimes"
        if await self._public_api():
            return await self._public.eligibility()
        if self._settings.account_api == "gapi":
            body = await self._backend("GET", "gapi", "/v1/user-info", what=what)
            return parse(UserInfo, body, what).eligibility()
        body = await self._backend("GET", "colab", "/tun/m/ccu-info", what=what)
        return parse(CcuInfo, body, what).eligibility()

    # ---- the runtime's own server ---------------------------------------------------------

    async def resources(self, runtime: Runtime) -> Resources:
        """Live RAM, disk and GPU figures of the runtime."""
        body = await self._runtime("GET", runtime, "api/colab/resources", what="its resources")
        return parse(Resources, body, "the runtime's resources")

    async def kernels(self, runtime: Runtime) -> list[Kernel]:
        body = await self._runtime("GET", runtime, "api/kernels", what="its kernels")
        return parse(TypeAdapter(list[Kernel]), body, "the runtime's kernels")

    async def sessions(self, runtime: Runtime) -> list[JupyterSession]:
        body = await self._runtime("GET", runtime, "api/sessions", what="its sessions")
        return parse(TypeAdapter(list[JupyterSession]), body, "the runtime's sessions")

    async def delete_session(self, runtime: Runtime, session_id: str) -> None:
        await self._runtime(
            "DELETE", runtime, f"api/sessions/{session_id}", what="closing a session"
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _url(self, host: Host, path: str) -> str:
        bases = {
            "colab": self._settings.colab_url,
            "gapi": self._settings.gapi_url,
            "public": self._settings.public_api_url,
        }
        return bases[host] + path

    async def _backend(
        self,
        method: str,
        host: Host,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        status_errors: Mapping[int, ErrorFactory] | None = None,
        expect_json: bool = True,
        retry: bool | None = None,
        request_timeout: httpx2.Timeout | None = None,
        read_timeout_ok: bool = False,
    ) -> Any:
        """One call to the colab host, GAPI or the public API, with auth, retries and error
        mapping."""
        query = dict(params or {})
        if host == "colab":
            query["authuser"] = "0"  # on every colab-host request, and on no other
        base_headers = {
            "Accept": "application/json",
            "X-Colab-Client-Agent": self._settings.client_agent,
            **(headers or {}),
        }
        url = self._url(host, path)
        idempotent = method == "GET" if retry is None else retry
        own_statuses = set(status_errors or ())

        async def send(token: str) -> httpx2.Response:
            return await self._request(
                method,
                url,
                what,
                params=query,
                headers={**base_headers, "Authorization": f"Bearer {token}"},
                body=body,
                request_timeout=request_timeout,
                read_timeout_ok=read_timeout_ok,
            )

        async def send_once() -> httpx2.Response:
            token = await self._tokens.access_token()
            response = await send(token)
            if response.status_code == 401:
                fresh = await self._tokens.token_rejected(token)
                if fresh is None:
                    raise errors.SignedOutError()
                response = await send(fresh)
                if response.status_code == 401:
                    raise errors.SignedOutError()
            status = response.status_code
            if (status >= 500 or status == 429) and status not in own_statuses:
                raise _Retryable(errors.BackendUnavailableError(what, f"HTTP {status}"))
            log.debug("%s %s -> %s", method, path, status)
            return response

        response = await self._with_retries(send_once, idempotent)
        _raise_for_status(response, what, status_errors or {})
        if not expect_json:
            return None
        return _decode_json(response, what)

    async def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: Any = None,
        request_timeout: httpx2.Timeout | None = None,
        read_timeout_ok: bool = False,
    ) -> httpx2.Response:
        """Send once (``body`` as JSON, if any); timeouts and broken connections become
        retryable errors."""
        try:
            return await self._http.request(
                method,
                url,
                params=params,
                headers=headers,
                json=body,
                timeout=request_timeout or self._http.timeout,
            )
        except httpx2.ReadTimeout as exc:
            if read_timeout_ok:
                raise _ReadTimedOut() from None
            raise _Retryable(errors.BackendUnavailableError(what, "timed out")) from exc
        except httpx2.TimeoutException as exc:
            raise _Retryable(errors.BackendUnavailableError(what, "timed out")) from exc
        except httpx2.TransportError as exc:
            error = errors.connection_failed(what, exc, _transport_detail(exc))
            if isinstance(error, errors.UntrustedCertificateError):
                raise error from None  # retrying will not make it trusted
            raise _Retryable(error) from exc

    async def _with_retries(self, send_once: Callable[[], Any], idempotent: bool) -> Any:
        """Retry idempotent calls on 5xx, 429, timeouts and connection errors, with backoff."""
        attempts = self._settings.retry_attempts if idempotent else 1
        try:
            async for attempt in stamina.retry_context(
                on=_Retryable,
                attempts=attempts,
                wait_initial=self._settings.retry_initial_wait,
                wait_max=self._settings.retry_max_wait,
                wait_jitter=self._settings.retry_initial_wait,
                timeout=None,
            ):
                with attempt:
                    return await send_once()
        except _Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _runtime(self, method: str, runtime: Runtime, path: str, *, what: str) -> Any:
        """One call to the runtime's Jupyter server, with its proxy token and nothing else."""
        full_what = f"runtime {runtime.endpoint} ({what})"
        if runtime.proxy is None:
            raise errors.RuntimeAccessError(runtime.endpoint, 0)
        url = runtime.proxy.url.rstrip("/") + "/" + path
        headers = {
            RUNTIME_TOKEN_HEADER: runtime.proxy.token.get_secret_value(),
            "X-Colab-Client-Agent": self._settings.client_agent,
            "Accept": "application/json",
        }

        async def send_once() -> httpx2.Response:
            response = await self._request(method, url, full_what, headers=headers)
            log.debug(
                "%s runtime %s /%s -> %s", method, runtime.endpoint, path, response.status_code
            )
            if response.status_code >= 500:
                raise _Retryable(
                    errors.BackendUnavailableError(full_what, f"HTTP {response.status_code}")
                )
            return response

        response = await self._with_retries(send_once, idempotent=method == "GET")
        if response.status_code in (401, 403, 404):
            raise errors.RuntimeAccessError(runtime.endpoint, response.status_code)
        _raise_for_status(response, full_what, {})
        if method == "DELETE" or not response.content:
            return None
        return _decode_json(response, full_what)


class _ReadTimedOut(Exception):
    """Internal: a read timeout on a call where that means success (keep-alive)."""


def _transport_detail(exc: httpx2.TransportError) -> str:
    if isinstance(exc, httpx2.ConnectError):
        return "connection failed"
    return "the connection broke"


def _raise_for_status(
    response: httpx2.Response, what: str, status_errors: Mapping[int, ErrorFactory]
) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in status_errors:
        raise status_errors[status](response)
    if status == 401:
        raise errors.SignedOutError()
    hint = ""
    if status == 403:
        if "SCOPE_NOT_PERMITTED" in response.text or "insufficient authentication scopes" in (
            response.text
        ):
            raise errors.ScopeNotPermittedError(what)
        hint = "This Google account or OAuth client may not be allowed to use Colab this way."
    raise errors.RequestRejectedError(what, status, hint)


def _decode_json(response: httpx2.Response, what: str) -> Any:
    text = response.text
    if text.startswith(XSSI_PREFIX):
        text = text[len(XSSI_PREFIX) :]
    if not text.strip():
        raise errors.MalformedResponseError(what, "an empty body")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        content_type = response.headers.get("content-type", "").split(";")[0] or "unknown type"
        detail = "an HTML page" if "html" in content_type else f"not JSON ({content_type})"
        raise errors.MalformedResponseError(what, detail) from None
