"""The client on the wire, against a scripted HTTP server on loopback.

These pin exact request shapes (hosts, authuser, headers, XSRF), the documented example
replies, and every way a reply can go wrong: the emulator is well-behaved on purpose, so
broken bodies, dropped connections and slow answers come from a scripted server here.
"""

from __future__ import annotations

import pytest

from colabtray.auth.identities import ReadyToken
from colabtray.colab import errors
from colabtray.colab.client import ColabClient, new_notebook_hash
from colabtray.colab.models import GPU, HIGH_MEM, TPU, Runtime, RuntimeProxyInfo
from colabtray.settings import load_settings
from tests.fixtures.scripted_http import Reply, ScriptedServer

TOKEN = "test-access-token"


def make_client(server: ScriptedServer, tokens=None, **overrides) -> ColabClient:
    values = {
        "colab_url": server.url,
        "gapi_url": server.url + "/gapi",
        "runtime_api": "tun",  # the /tun/m wire; tests/integration/test_public_api.py: the other
        "retry_initial_wait": 0,
        "retry_max_wait": 0,
        "request_timeout": 2,
        "keepalive_timeout": 0.5,
        **overrides,
    }
    settings = load_settings(**values)
    return ColabClient(settings, tokens or ReadyToken(TOKEN))


class RefreshingTokens:
    """A token source whose first token is stale; counts refreshes."""

    def __init__(self) -> None:
        self.current = "stale"
        self.refreshes = 0

    async def access_token(self) -> str:
        return self.current

    async def token_rejected(self, token: str) -> str | None:
        self.refreshes += 1
        self.current = "fresh"
        return self.current


ASSIGNED_T4 = (
    '{"accelerator":"T4","endpoint":"gpu-t4-s-1","variant":1,"machineShape":0,'
    '"runtimeProxyInfo":{"token":"rpt-1","tokenExpiresInSeconds":3600,"url":"http://rt"}}'
)


def ticket(nbh: str = "x" * 44) -> str:
    return f'{{"acc":"T4","nbh":"{nbh}","p":false,"token":"XSRF-1","variant":"GPU"}}'


async def test_assign_sends_get_then_post_with_the_xsrf_token(scripted: ScriptedServer):
    scripted.xssi("GET", "/tun/m/assign", ticket())
    scripted.xssi("POST", "/tun/m/assign", ASSIGNED_T4)
    async with make_client(scripted) as client:
        runtime = await client.assign(GPU, "t4")
    assert runtime.endpoint == "gpu-t4-s-1"
    (get,) = scripted.of("GET", "/tun/m/assign")
    (post,) = scripted.of("POST", "/tun/m/assign")
    assert get.query == post.query
    assert get.query["variant"] == "GPU" and get.query["accelerator"] == "T4"
    assert get.query["authuser"] == "0" and "shape" not in get.query
    assert len(get.query["nbh"]) == 44
    assert post.headers["X-Goog-Colab-Token"] == "XSRF-1"
    assert "X-Goog-Colab-Token" not in get.headers
    for request in (get, post):
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/json"
        assert request.headers["X-Colab-Client-Agent"] == "colabtray"


async def test_assign_cpu_sends_no_variant_and_high_mem_rules(scripted: ScriptedServer):
    scripted.xssi("GET", "/tun/m/assign", ticket())
    scripted.xssi("POST", "/tun/m/assign", ASSIGNED_T4)
    async with make_client(scripted) as client:
        await client.assign()
        await client.assign(GPU, "A100", high_mem=True, runtime_version="2025.10")
        await client.assign(GPU, "L4", high_mem=True)  # high-mem only: no shape on the wire
        await client.assign(TPU, "V6E1", high_mem=True)
    cpu, a100, l4, tpu = (r.query for r in scripted.of("GET", "/tun/m/assign"))
    assert "variant" not in cpu and "accelerator" not in cpu
    assert a100["shape"] == "hm" and a100["runtime_version_label"] == "2025.10"
    assert "shape" not in l4 and "shape" not in tpu


async def test_assign_returns_an_existing_assignment_without_a_post(scripted: ScriptedServer):
    scripted.xssi("GET", "/tun/m/assign", ASSIGNED_T4)
    async with make_client(scripted) as client:
        runtime = await client.assign(GPU, "T4", notebook_hash=new_notebook_hash())
    assert runtime.accelerator == "T4"
    assert scripted.of("POST", "/tun/m/assign") == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=412, body=""), errors.TooManyRuntimesError),
        (Reply(status=503, body="busy"), errors.AcceleratorUnavailableError),
        (Reply(body=')]}\'\n{"outcome":1}'), errors.QuotaExceededError),
        (Reply(body=')]}\'\n{"outcome":2,"sub":1}'), errors.QuotaExceededError),
        (Reply(body=')]}\'\n{"outcome":3}'), errors.QuotaExceededError),
        (Reply(body=')]}\'\n{"outcome":5}'), errors.DenylistedError),
        (Reply(body=')]}\'\n{"outcome":4}'), errors.MalformedResponseError),
        (Reply(status=400, body="bad accelerator"), errors.AcceleratorRefusedError),
    ],
)
async def test_assign_outcomes_become_typed_errors(scripted: ScriptedServer, reply, error):
    scripted.xssi("GET", "/tun/m/assign", ticket())
    scripted.add("POST", "/tun/m/assign", reply)
    async with make_client(scripted) as client:
        with pytest.raises(error) as caught:
            await client.assign(GPU, "H100")
    assert caught.value.message.endswith(".")
    assert len(scripted.of("POST", "/tun/m/assign")) == 1  # a POST is never retried
    if error is errors.AcceleratorUnavailableError:
        assert "H100" in caught.value.message


async def test_listing_on_the_colab_host_and_on_gapi(scripted: ScriptedServer):
    scripted.xssi(
        "GET",
        "/tun/m/assignments",
        '{"assignments":[{"accelerator":"NONE","endpoint":"m-s-1","variant":0,"machineShape":0,'
        '"runtimeProxyInfo":{"token":"t","tokenExpiresInSeconds":3600,"url":"http://rt"}}]}',
    )
    scripted.xssi("GET", "/gapi/v1/assignments", "{}")
    async with make_client(scripted) as client:
        (runtime,) = await client.list_assignments()
    async with make_client(scripted, listing_api="gapi") as client:
        assert await client.list_assignments() == []
    assert runtime.endpoint == "m-s-1"
    assert scripted.of("GET", "/tun/m/assignments")[0].query == {"authuser": "0"}
    assert "authuser" not in scripted.of("GET", "/gapi/v1/assignments")[0].query


async def test_unassign_gets_a_token_then_posts_it(scripted: ScriptedServer):
    scripted.xssi("GET", "/tun/m/unassign/m-s-1", '{"token":"XSRF-U"}')
    scripted.xssi("POST", "/tun/m/unassign/m-s-1", "{}")
    async with make_client(scripted) as client:
        await client.unassign("m-s-1")
    (post,) = scripted.of("POST", "/tun/m/unassign/m-s-1")
    assert post.headers["X-Goog-Colab-Token"] == "XSRF-U" and post.query["authuser"] == "0"


async def test_keep_alive_wire_shape_and_outcomes(scripted: ScriptedServer):
    scripted.add("GET", "/tun/m/m-s-1/keep-alive/", Reply(body=""))
    scripted.add("GET", "/tun/m/slow/keep-alive/", Reply(delay=2))
    scripted.add("GET", "/tun/m/gone/keep-alive/", Reply(status=404))
    async with make_client(scripted) as client:
        await client.keep_alive("m-s-1")
        await client.keep_alive("slow")  # a read timeout counts as sent
        with pytest.raises(errors.RuntimeGoneError):
            await client.keep_alive("gone")
    (ping,) = scripted.of("GET", "/tun/m/m-s-1/keep-alive/")
    assert ping.headers["X-Colab-Tunnel"] == "Google" and ping.query == {"authuser": "0"}
    # Neither a ping counted as sent nor a refused one is sent again.
    assert len(scripted.of("GET", "/tun/m/slow/keep-alive/")) == 1
    assert len(scripted.of("GET", "/tun/m/gone/keep-alive/")) == 1


async def test_keep_alive_to_a_closed_port_is_an_error_not_a_success():
    server = ScriptedServer(url="http://127.0.0.1:9")  # discard port: nothing listens
    async with make_client(server) as client:
        with pytest.raises(errors.BackendUnavailableError):
            await client.keep_alive("m-s-1")


async def test_proxy_token_refresh_from_gapi_and_from_the_listing(scripted: ScriptedServer):
    scripted.xssi(
        "GET", "/gapi/v1/runtime-proxy-token", '{"token":"new","tokenTtl":"1800.5s","url":"u"}'
    )
    scripted.xssi(
        "GET",
        "/tun/m/assignments",
        '{"assignments":[{"accelerator":"T4","endpoint":"e1","variant":1,"machineShape":0,'
        '"runtimeProxyInfo":{"token":"listed","tokenExpiresInSeconds":3600,"url":"u"}}]}',
    )
    async with make_client(scripted, listing_api="gapi") as client:
        info = await client.refresh_proxy_token("e1")
    assert info.token.get_secret_value() == "new" and info.ttl_seconds == 1800.5
    assert scripted.of("GET", "/gapi/v1/runtime-proxy-token")[0].query == {
        "endpoint": "e1",
        "port": "8080",
    }
    async with make_client(scripted) as client:
        assert (await client.refresh_proxy_token("e1")).token.get_secret_value() == "listed"
        with pytest.raises(errors.RuntimeGoneError):
            await client.refresh_proxy_token("not-listed")


async def test_compute_units_and_eligibility_on_both_hosts(scripted: ScriptedServer):
    scripted.xssi(
        "GET",
        "/tun/m/ccu-info",
        '{"currentBalance":289.81,"consumptionRateHourly":1.54,"assignmentsCount":1,'
        '"eligibleGpus":["T4"],"ineligibleGpus":["H100"],"eligibleTpus":[],"ineligibleTpus":[]}',
    )
    scripted.xssi(
        "GET",
        "/gapi/v1/user-info",
        '{"subscriptionTier":"SUBSCRIPTION_TIER_PRO","paidComputeUnitsBalance":3.1,'
        '"consumptionRateHourly":13.08,"assignmentsCount":2,'
        '"eligibleAccelerators":[{"variant":"VARIANT_GPU","models":["T4","L4"]}],'
        '"ineligibleAccelerators":[{"variant":"VARIANT_GPU","models":["H100"]}]}',
    )
    async with make_client(scripted) as client:
        units = await client.compute_units()
        eligibility = await client.eligibility()
    assert units.balance == 289.81 and eligibility.may_have(GPU, "T4")
    async with make_client(scripted, account_api="gapi") as client:
        units = await client.compute_units()
        eligibility = await client.eligibility()
    assert units.rate_per_hour == 13.08 and eligibility.ineligible[GPU] == ("H100",)
    consumption, plain = scripted.of("GET", "/gapi/v1/user-info")
    assert consumption.query == {"get_ccu_consumption_info": "true"} and plain.query == {}


def runtime_at(server: ScriptedServer) -> Runtime:
    proxy = RuntimeProxyInfo.model_validate(
        {"url": server.url + "/", "token": "rpt-secret", "tokenExpiresInSeconds": 60}
    )
    return Runtime(endpoint="m-s-1", variant=GPU, accelerator="T4", shape=HIGH_MEM, proxy=proxy)


async def test_runtime_calls_carry_only_the_proxy_token(scripted: ScriptedServer):
    scripted.add("GET", "/api/kernels", Reply(body='[{"id":"k1","execution_state":"busy"}]'))
    scripted.add("GET", "/api/sessions", Reply(body="[]"))
    scripted.add("GET", "/api/colab/resources", Reply(body='{"disks":[]}'))
    async with make_client(scripted) as client:
        runtime = runtime_at(scripted)
        (kernel,) = await client.kernels(runtime)
        assert await client.sessions(runtime) == []
        assert (await client.resources(runtime)).disks == []
    assert kernel.execution_state == "busy"
    for request in scripted.requests:
        assert request.headers["X-Colab-Runtime-Proxy-Token"] == "rpt-secret"
        assert "Authorization" not in request.headers  # the Google token stays home
        assert "authuser" not in request.query


async def test_a_refused_runtime_token_is_a_runtime_access_error(scripted: ScriptedServer):
    scripted.add("GET", "/api/kernels", Reply(status=401, body="expired"))
    async with make_client(scripted) as client:
        with pytest.raises(errors.RuntimeAccessError) as caught:
            await client.kernels(runtime_at(scripted))
    assert "rpt-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (Reply(body="<html><body>Error 502</body></html>", content_type="text/html"), "HTML"),
        (Reply(body=')]}\'\n{"assignments": [{"endpoint"'), "not JSON"),
        (Reply(body=""), "empty"),
        (Reply(body='{"assignments": "nope"}'), "assignments"),
        (Reply(body='{"assignments": [{"endpoint": "e"}]}'), "variant"),
        (Reply(body="[1, 2]"), "the body"),
    ],
)
async def test_malformed_replies_are_a_clear_error(scripted: ScriptedServer, reply, detail):
    scripted.add("GET", "/tun/m/assignments", reply)
    async with make_client(scripted) as client:
        with pytest.raises(errors.MalformedResponseError) as caught:
            await client.list_assignments()
    assert detail in caught.value.message


async def test_idempotent_calls_retry_server_errors_then_succeed(scripted: ScriptedServer):
    scripted.add(
        "GET",
        "/tun/m/assignments",
        Reply(status=503),
        Reply(drop=True),
        Reply(body='{"assignments":[]}'),
    )
    async with make_client(scripted) as client:
        assert await client.list_assignments() == []
    assert len(scripted.of("GET", "/tun/m/assignments")) == 3


async def test_retries_are_bounded(scripted: ScriptedServer):
    scripted.add("GET", "/tun/m/assignments", Reply(status=500))
    async with make_client(scripted, retry_attempts=4) as client:
        with pytest.raises(errors.BackendUnavailableError) as caught:
            await client.list_assignments()
    assert len(scripted.of("GET", "/tun/m/assignments")) == 4
    assert "HTTP 500" in caught.value.message


async def test_a_hung_backend_times_out(scripted: ScriptedServer):
    scripted.add("GET", "/tun/m/assignments", Reply(delay=5))
    async with make_client(scripted, request_timeout=0.3, retry_attempts=2) as client:
        with pytest.raises(errors.BackendUnavailableError, match="timed out"):
            await client.list_assignments()


async def test_401_refreshes_the_token_once_and_retries(scripted: ScriptedServer):
    scripted.add("GET", "/tun/m/assignments", Reply(status=401), Reply(body="{}"))
    tokens = RefreshingTokens()
    async with make_client(scripted, tokens=tokens) as client:
        assert await client.list_assignments() == []
    first, second = scripted.of("GET", "/tun/m/assignments")
    assert first.headers["Authorization"] == "Bearer stale"
    assert second.headers["Authorization"] == "Bearer fresh"
    assert tokens.refreshes == 1


async def test_401_twice_or_without_refresh_means_signed_out(scripted: ScriptedServer):
    scripted.add("GET", "/tun/m/assignments", Reply(status=401))
    tokens = RefreshingTokens()
    async with make_client(scripted, tokens=tokens) as client:
        with pytest.raises(errors.SignedOutError):
            await client.list_assignments()
    assert tokens.refreshes == 1 and len(scripted.of("GET", "/tun/m/assignments")) == 2
    async with make_client(scripted) as client:  # a static token cannot be refreshed
        with pytest.raises(errors.SignedOutError, match="sign in again"):
            await client.list_assignments()


async def test_no_token_appears_in_error_messages(scripted: ScriptedServer):
    scripted.add("GET", "/tun/m/assignments", Reply(status=403, body=TOKEN))
    async with make_client(scripted) as client:
        with pytest.raises(errors.RequestRejectedError) as caught:
            await client.list_assignments()
    assert TOKEN not in str(caught.value) and caught.value.status == 403
