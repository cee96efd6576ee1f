"""Who gets through the bridge, what reaches the runtime, and what never reaches a log.

The emulator's runtime proxy records every request it receives (``/_emulator/requests``,
host ``runtime``), which is how "nothing forwarded" is checked.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.bridge import Bridged, bridge_on
from tests.fixtures.hostile import METHODS, VERSIONS, Canary, exchange, status_of, steering_targets
from tests.fixtures.jupyter_client import KernelSession, split_url
from tests.fixtures.waiting import until

pytestmark = pytest.mark.slow

GONE = "this Colab runtime was disconnected"


def runtime_paths(bridged: Bridged) -> list[str]:
    log = bridged.emulator.admin("GET", "requests")
    return [e["path"] for e in log["requests"] if e["host"] == "runtime"]


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What colabtray and the HTTP library under the bridge logged (not the test's clients)."""
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if r.name.startswith(("colabtray", "aiohttp"))
    )


def secrets_of(bridged: Bridged, endpoint: str, url: str) -> list[str]:
    runtime = bridged.registry.state.runtimes[endpoint]
    assert runtime.proxy is not None
    return [split_url(url)[1], runtime.proxy.token.get_secret_value()]


async def test_refused_requests_get_403_and_reach_nothing(
    bridged: Bridged, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    probe = f"/api/contents/probe-{uuid.uuid4().hex}"
    cases: dict[str, dict[str, Any]] = {
        "no secret": {},
        "wrong secret": {"params": {"token": token[:-2] + "xx"}},
        "wrong Authorization": {"headers": {"Authorization": "token nope"}},
        "wrong cookie": {"headers": {"Cookie": f"colabtray-bridge-{port}=nope"}},
        "foreign Host": {"params": {"token": token}, "headers": {"Host": f"evil.example:{port}"}},
        "other port": {"params": {"token": token}, "headers": {"Host": f"127.0.0.1:{port + 1}"}},
        "cross-origin": {"params": {"token": token}, "headers": {"Origin": "http://evil.example"}},
        "null origin": {"params": {"token": token}, "headers": {"Origin": "null"}},
    }
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        for case, options in cases.items():
            response = await http.get(probe, **options)
            assert response.status_code == 403, case
            assert response.text.count("\n") == 1 and response.text.startswith("403 Forbidden: ")
        ws_url = base.replace("http", "ws", 1) + f"/api/kernels/x/channels?token={token}"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(ws_url, origin="http://evil.example", open_timeout=10)
        assert refused.value.response.status_code == 403
        assert probe not in runtime_paths(bridged)
        assert all(not p.startswith("/api/kernels/x") for p in runtime_paths(bridged))

        # The control: the same request with the secret (and the bridge's own origin) passes.
        own = {"Origin": f"http://127.0.0.1:{port}"}
        response = await http.get(probe, params={"token": token}, headers=own)
        assert response.status_code == 404
        assert probe in runtime_paths(bridged)
    for secret in secrets_of(bridged, endpoint, url):
        assert secret not in our_logs(caplog)


async def test_a_browser_keeps_a_cookie_that_never_reaches_the_runtime(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        first = await http.get("/api/status", params={"token": token})
        assert first.status_code == 200
        (cookie,) = [
            c
            for c in first.headers.get_list("set-cookie")
            if c.startswith(f"colabtray-bridge-{port}=")
        ]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        other_app = "session=local-app-secret"  # another localhost app's cookie
        again = await http.get(
            "/api/kernels",
            headers={"Cookie": f"colabtray-bridge-{port}={token}; {other_app}"},
        )
        assert again.status_code == 200
    log = bridged.emulator.admin("GET", "requests")["requests"]
    (entry,) = [e for e in log if e["host"] == "runtime" and e["path"] == "/api/kernels"]
    assert "Cookie" not in entry["headers"]


async def test_a_runtime_that_is_gone_answers_502_and_its_url_stops(
    bridged: Bridged, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    secrets = secrets_of(bridged, endpoint, url)
    async with KernelSession(url) as kernel:
        output, _ = await kernel.execute("print(6*7)")
        assert output == "42\n"
        bridged.emulator.admin("POST", f"runtimes/{endpoint}/reclaim")
        async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
            gone = await http.get("/api/kernels", params={"token": token})
            assert gone.status_code == 502
            assert gone.text == f"502 Bad Gateway: {GONE}\n"
            await until(lambda: bridged.bridge.url_for(endpoint) is None, 10)
            assert not list(bridged.jupyter_dir.glob("jpserver-*.json"))
            again = await http.post("/api/kernels", params={"token": token}, json={})
            assert again.status_code == 502
        # The open kernel WebSocket is closed with the reason.
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await kernel.ws.recv()
    assert endpoint not in bridged.registry.state.runtimes
    for secret in secrets:
        assert secret not in our_logs(caplog)


async def test_proxy_tokens_of_12_s_do_not_disturb_a_long_session(
    emulator_factory: Any, tmp_path: Any
) -> None:
    # A session over three token lives long (renewed 3 s before expiry, AHEAD_SHARE).
    emulator = emulator_factory("--proxy-token-ttl", "12", "--idle-timeout", "600")
    async with bridge_on(emulator, tmp_path) as bridged:
        endpoint, url = await bridged.runtime()
        tokens: set[str] = set()
        async with KernelSession(url) as kernel:
            started = time.monotonic()
            rounds = 0
            while time.monotonic() - started < 40:
                output, reply = await kernel.execute(f"print({rounds} * 2)")
                assert (reply["status"], output) == ("ok", f"{rounds * 2}\n")
                listed = await kernel.http.get(f"/api/kernels/{kernel.kernel_id}")
                assert listed.status_code == 200, listed.text
                proxy = bridged.registry.state.runtimes[endpoint].proxy
                assert proxy is not None
                tokens.add(proxy.token.get_secret_value())
                rounds += 1
                await asyncio.sleep(1.0)
            # A new connection long after the first token expired.
            async with KernelSession(url, kernel_id=kernel.kernel_id) as second:
                output, _ = await second.execute("print('still here')")
                assert output == "still here\n"
        assert len(tokens) >= 3  # the token really changed, more than once
        log = bridged.emulator.admin("GET", "requests")["requests"]
        assert [e for e in log if e["host"] == "runtime" and e["status"] == 401] == []


@st.composite
def hostile_request(draw: st.DrawFn, port: int, token: str) -> tuple[bytes, bool]:
    """Raw HTTP/1.1 bytes, and whether they carry everything needed to be let through."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "G\x00T"]))
    path = draw(st.text(st.characters(codec="latin-1", exclude_characters="\r\n "), max_size=60))
    host = draw(
        st.sampled_from(
            [f"127.0.0.1:{port}", f"localhost:{port}", "evil.example", f"127.0.0.1:{port}0", ""]
        )
        | st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30)
    )
    credential = draw(st.sampled_from(["none", "query", "header", "wrong", "cookie-wrong"]))
    origin = draw(st.sampled_from([None, f"http://127.0.0.1:{port}", "http://evil.example"]))
    extra = draw(
        st.lists(
            st.tuples(
                st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
                st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40),
            ),
            max_size=4,
        )
    )
    upgrade = draw(st.booleans())
    tag = "ok" if credential in ("query", "header") else "no"
    target = f"/fuzz-{tag}/{path}"
    if credential == "query":
        target += f"?token={token}"
    elif credential == "wrong":
        target += "?token=" + draw(st.text(max_size=50)).encode("utf-8", "replace").hex()
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    if credential == "header":
        lines.append(f"Authorization: token {token}")
    if credential == "cookie-wrong":
        lines.append(f"Cookie: colabtray-bridge-{port}=x")
    if origin:
        lines.append(f"Origin: {origin}")
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"]
    lines += [f"X-{name}: {value}" for name, value in extra]
    lines += ["Content-Length: 0", "Connection: close", "", ""]
    admitted = (
        tag == "ok"
        and host in (f"127.0.0.1:{port}", f"localhost:{port}")
        and origin != "http://evil.example"
        and method != "G\x00T"
    )
    return "\r\n".join(lines).encode("latin-1"), admitted


def send_raw(port: int, data: bytes) -> int:
    """Send ``data``, read the status code of the answer (0 if the server closed)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return 0
            head += chunk
    parts = head.split(b" ", 2)
    return int(parts[1])


async def test_hostile_requests_crash_nothing_and_leak_nothing(
    bridged: Bridged, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    statuses: list[int] = []

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(hostile_request(port, token))
    def one(case: tuple[bytes, bool]) -> None:
        data, admitted = case
        status = send_raw(port, data)
        statuses.append(status)
        assert status != 500
        if not admitted:
            assert status in (400, 403, 0), status

    # Blocking sockets in a thread: the test's loop stays free for the registry's work.
    await asyncio.to_thread(one)
    assert not any(p.startswith("/fuzz-no") for p in runtime_paths(bridged))
    async with KernelSession(url) as kernel:  # still serving
        output, _ = await kernel.execute("print(6*7)")
        assert output == "42\n"
    for secret in secrets_of(bridged, endpoint, url):
        assert secret not in our_logs(caplog)
    assert 403 in statuses


# ---- request targets: no request moves the upstream host (issue: "@host" steering) ---------


def steering_property(
    port: int, canary: Canary, headers: list[str], secrets: Callable[[], list[str]], examples: int
) -> list[tuple[int, int]]:
    """Run the generator against a listener; returns (case number, status) of each request."""
    seen: list[tuple[int, int]] = []

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(  # mostly what a client sends, so that many requests get through to be checked
        method=st.sampled_from(["GET", "GET", "POST", *METHODS]),
        target=steering_targets(canary.port),
        version=st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", *VERSIONS]),
    )
    def one(method: str, target: str, version: str) -> None:
        case = len(seen)
        lines = [
            f"{method} {target} {version}",
            *headers,
            f"X-Case-{case}: 1",
            "Content-Length: 0",
            "Connection: close",
            "",
            "",
        ]
        answer = exchange(port, "\r\n".join(lines).encode("latin-1"))
        status = status_of(answer)
        seen.append((case, status))
        assert status not in (500, 502), answer[:300]  # 502: it tried a host that is not there
        for secret in secrets():
            assert secret.encode() not in answer
        assert canary.connections == 0, f"{method} {target!r} reached another server"

    one()
    return seen


def refused_here(status: int) -> bool:
    """The listener's own refusals (or a connection it closed), as opposed to an answer of
    whatever it forwards to."""
    return status in (0, 400, 403, 405, 505)


async def test_no_request_target_steers_the_bridge_to_another_host(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    registry = bridged.registry

    def proxy_tokens() -> list[str]:
        proxy = registry.state.runtimes[endpoint].proxy
        return [proxy.token.get_secret_value()] if proxy is not None else []

    before = bridged.emulator.last_seq()
    async with Canary() as canary:
        headers = [f"Host: 127.0.0.1:{port}", f"Authorization: token {token}"]
        seen = await asyncio.to_thread(steering_property, port, canary, headers, proxy_tokens, 300)
    reached = {
        name.removeprefix("X-Case-")
        for entry in bridged.emulator.requests(since=before, host="runtime")
        for name in entry["headers"]
        if name.startswith("X-Case-")
    }
    for case, status in seen:  # either refused by the bridge, or sent to the runtime itself
        assert refused_here(status) or str(case) in reached, (case, status)
    assert any(str(case) in reached for case, _ in seen)  # the property saw both outcomes
    assert any(refused_here(status) for _, status in seen)
    async with KernelSession(url) as kernel:  # and the bridge still serves
        assert (await kernel.execute("print(6*7)"))[0] == "42\n"


async def test_no_request_target_steers_the_emulators_runtime_proxy(bridged: Bridged) -> None:
    endpoint, _url = await bridged.runtime()
    runtime = bridged.registry.state.runtimes[endpoint]
    assert runtime.proxy is not None
    proxy_url = runtime.proxy.url
    port = int(proxy_url.rsplit(":", 1)[1].rstrip("/"))
    token = runtime.proxy.token.get_secret_value()
    async with Canary() as canary:
        headers = [f"Host: 127.0.0.1:{port}", f"X-Colab-Runtime-Proxy-Token: {token}"]
        seen = await asyncio.to_thread(
            steering_property, port, canary, headers, lambda: [token], 200
        )
    assert any(not refused_here(status) for _, status in seen)
    assert "Traceback" not in bridged.emulator.stderr_text()


async def test_the_attack_pass_case_connects_nowhere(bridged: Bridged) -> None:
    """The reported case itself: an authority-form target after the secret."""
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    async with Canary() as canary:
        for line in (
            f"CONNECT @127.0.0.1:{canary.port} HTTP/1.1",
            f"GET @127.0.0.1:{canary.port}/api/status HTTP/1.1",
            f"GET http://127.0.0.1:{canary.port}/api/status HTTP/1.1",
        ):
            request = (
                f"{line}\r\nHost: 127.0.0.1:{port}\r\nAuthorization: token {token}\r\n"
                "Connection: close\r\n\r\n"
            )
            answer = await asyncio.to_thread(exchange, port, request.encode())
            assert status_of(answer) in (400, 405), answer[:200]
        assert canary.connections == 0


# ---- the rest of the family: CORS, cross-site cookies, HTTP versions, stalled bodies ------


async def test_jupyters_cors_headers_do_not_reach_the_editor(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    runtime = bridged.registry.state.runtimes[endpoint]
    assert runtime.proxy is not None
    async with httpx2.AsyncClient(timeout=30) as http:
        direct = await http.get(
            runtime.proxy.url.rstrip("/") + "/api/status",
            headers={
                "X-Colab-Runtime-Proxy-Token": runtime.proxy.token.get_secret_value(),
                "Origin": "http://evil.example",
            },
        )
        assert direct.headers.get("Access-Control-Allow-Origin") == "*"  # what Jupyter says
        bridged_answer = await http.get(
            f"{base}/api/status",
            params={"token": token},
            headers={"Origin": f"http://127.0.0.1:{port}"},
        )
    assert bridged_answer.status_code == 200
    assert not [h for h in bridged_answer.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize(
    ("fetch_site", "status"),
    [("cross-site", 403), ("same-site", 403), ("same-origin", 200), ("none", 200), (None, 200)],
)
async def test_a_cookie_is_honoured_only_from_the_bridges_own_pages(
    bridged: Bridged, fetch_site: str | None, status: int
) -> None:
    """Browsers send the SameSite=Strict cookie to every port of 127.0.0.1 (same-site), and
    send no Origin on an <img> or <script> fetch: Sec-Fetch-Site tells such requests apart."""
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    headers = {"Cookie": f"colabtray-bridge-{port}={token}"}
    if fetch_site is not None:
        headers["Sec-Fetch-Site"] = fetch_site
    probe = f"/api/contents/probe-{uuid.uuid4().hex}"
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        response = await http.get(probe, headers=headers)
    if status == 403:
        assert response.status_code == 403
        assert response.text == "403 Forbidden: cross-site requests are refused\n"
        assert probe not in runtime_paths(bridged)
    else:
        assert response.status_code == 404  # the runtime's answer: it got there
        assert probe in runtime_paths(bridged)


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9"])
async def test_a_request_in_another_http_version_gets_505_in_http_1_1(
    bridged: Bridged, version: str
) -> None:
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    request = (
        f"GET /api/status {version}\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: token {token}\r\n\r\n"
    )
    answer = await asyncio.to_thread(exchange, port, request.encode())
    assert answer.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    assert answer.endswith(b"505 HTTP Version Not Supported: speak HTTP/1.1 here\n")
    assert "/api/status" not in runtime_paths(bridged)


async def test_a_body_that_stops_arriving_ends_with_408(
    bridged: Bridged, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colabtray.bridge import proxy

    monkeypatch.setattr(proxy, "BODY_TIMEOUT", 1.0)
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    for length in (100, 5 * 1024 * 1024):  # one read whole first, one streamed
        head = (
            f"PUT /api/contents/stalled.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        sent = head.encode() + b"x" * (min(length, 2 * 1024 * 1024) // 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(sent)
            await writer.drain()
            async with asyncio.timeout(15):
                answer = await reader.read()  # the bridge answers and closes
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), (length, answer[:200])
        assert answer.endswith(b"408 Request Timeout: the request body stopped arriving\n")
