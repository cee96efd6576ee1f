"""The loopback receiver against real sockets: the right redirect, and everything else."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import string

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.auth.errors import SignInDeclinedError
from colabtray.auth.loopback import LoopbackReceiver

STATE = "s" * 43


@pytest.fixture
async def receiver():
    receiver = LoopbackReceiver(STATE)
    await receiver.start()
    yield receiver
    await receiver.close()


async def test_the_real_redirect_completes_and_shows_our_page(receiver: LoopbackReceiver):
    async with httpx2.AsyncClient() as http:
        response = await http.get(receiver.redirect_uri, params={"state": STATE, "code": "4/abc"})
    assert response.status_code == 200 and "You are signed in" in response.text
    assert await asyncio.wait_for(receiver.wait(), 5) == "4/abc"


async def test_declining_says_so(receiver: LoopbackReceiver):
    async with httpx2.AsyncClient() as http:
        response = await http.get(
            receiver.redirect_uri, params={"state": STATE, "error": "access_denied"}
        )
    assert "You declined" in response.text
    with pytest.raises(SignInDeclinedError):
        await asyncio.wait_for(receiver.wait(), 5)


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", "/", {"code": "c"}, 400),  # no state
        ("GET", "/", {"state": "wrong", "code": "c"}, 400),
        ("GET", "/", {"state": "wrong", "error": "access_denied"}, 400),
        ("GET", "/favicon.ico", {}, 404),
        ("GET", "/callback", {"state": STATE, "code": "c"}, 404),
        ("POST", "/", {"state": STATE, "code": "c"}, 405),
        ("PUT", "/", {}, 405),
    ],
)
async def test_wrong_requests_get_an_error_page_and_the_flow_keeps_waiting(
    receiver: LoopbackReceiver, method: str, path: str, params: dict, status: int
):
    async with httpx2.AsyncClient() as http:
        response = await http.request(
            method, receiver.redirect_uri.rstrip("/") + path, params=params
        )
        assert response.status_code == status
        assert "Sign-in did not complete" in response.text
        if status == 405:
            assert response.headers["Allow"] == "GET"
        good = await http.get(receiver.redirect_uri, params={"state": STATE, "code": "real"})
    assert good.status_code == 200
    assert await asyncio.wait_for(receiver.wait(), 5) == "real"


async def test_a_foreign_host_header_is_refused(receiver: LoopbackReceiver):
    async with httpx2.AsyncClient() as http:
        response = await http.get(
            receiver.redirect_uri,
            params={"state": STATE, "code": "c"},
            headers={"Host": "attacker.example"},
        )
    assert response.status_code == 400
    assert not receiver._result.done()


async def test_it_listens_on_loopback_only(receiver: LoopbackReceiver):
    assert receiver._runner is not None
    assert {address[0] for address in receiver._runner.addresses} == {"127.0.0.1"}
    for address in _non_loopback_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, receiver.port), timeout=2).close()


async def test_closing_frees_the_port(receiver: LoopbackReceiver):
    port = receiver.port
    await receiver.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _non_loopback_addresses() -> set[str]:
    found: set[str] = set()
    for family, _, _, _, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
        if family == socket.AF_INET and not sockaddr[0].startswith("127."):
            found.add(sockaddr[0])
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # the address the default route would use; no packet is sent
        probe.connect(("192.0.2.1", 9))
        if not probe.getsockname()[0].startswith("127."):
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    return found


# ---- hostile input ----------------------------------------------------------------------

_token = st.text(
    alphabet=string.ascii_letters + string.digits + "-._~%/?&=+;:@!$'()*,#[] ", max_size=40
)
_request_lines = st.one_of(
    st.builds(
        lambda method, path, query: f"{method} {path}?{query} HTTP/1.1",
        st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "DELETE", "TRACE", "G\x00T", "get"]),
        st.sampled_from(["/", "//", "/..", "/favicon.ico", "*", "http://evil/", "/%00"]),
        st.one_of(
            _token,
            st.builds(lambda s, c: f"state={s}&code={c}", _token, _token),
            st.builds(lambda c: f"code={c}&state={STATE[:-1]}", _token),
            st.builds(lambda c: f"state={STATE}x&code={c}", _token),
        ),
    ),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.just("GET /" + "a" * 20000 + " HTTP/1.1"),  # an oversized request line
)
_headers = st.lists(
    st.one_of(
        st.just("Host: 127.0.0.1"),
        st.just("Host: evil.example"),
        st.just("Content-Length: 99999999"),
        st.just("Transfer-Encoding: chunked"),
        st.just("X-Long: " + "b" * 9000),
        st.builds(lambda k, v: f"{k}: {v}", _token.filter(bool), _token),
    ),
    max_size=5,
)


@given(
    requests=st.lists(st.tuples(_request_lines, _headers, st.booleans()), min_size=1, max_size=25)
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_requests_never_end_or_hijack_the_flow(requests):
    asyncio.run(_hostile_then_real(requests))


async def _hostile_then_real(requests) -> None:
    receiver = LoopbackReceiver(STATE)
    await receiver.start()
    try:
        for line, headers, close_early in requests:
            await _raw_request(receiver.port, line, headers, close_early)
            assert not receiver._result.done(), "a request without the state changed the flow"
        async with httpx2.AsyncClient() as http:
            response = await http.get(
                receiver.redirect_uri, params={"state": STATE, "code": "the-code"}
            )
        assert response.status_code == 200
        assert await asyncio.wait_for(receiver.wait(), 5) == "the-code"
    finally:
        await receiver.close()


async def _raw_request(port: int, line: str, headers: list[str], close_early: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = "\r\n".join([line, *headers, "", ""]).encode("utf-8", "surrogateescape")
        writer.write(data[: len(data) // 2] if close_early else data)
        await writer.drain()
        if not close_early:
            await asyncio.wait_for(reader.read(65536), 5)
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_a_connection_that_asks_nothing_is_closed_and_the_flow_goes_on(
    receiver: LoopbackReceiver,
) -> None:
    from colabtray.listen.connections import HEAD_TIMEOUT

    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    started = asyncio.get_running_loop().time()
    try:
        writer.write(b"GET /?state=")  # half a request line, then nothing
        async with asyncio.timeout(HEAD_TIMEOUT + 5):
            assert await reader.read() == b""
        assert asyncio.get_running_loop().time() - started >= HEAD_TIMEOUT - 1
    finally:
        writer.close()
    async with httpx2.AsyncClient() as http:
        response = await http.get(receiver.redirect_uri, params={"state": STATE, "code": "c"})
    assert response.status_code == 200
    assert await asyncio.wait_for(receiver.wait(), 5) == "c"
