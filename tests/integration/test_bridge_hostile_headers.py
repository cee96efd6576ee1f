"""A real bridge port against hostile headers from both sides: a client's ``Cookie``,
``Origin``, ``Host`` and HTTP version, and a hostile runtime's ``Set-Cookie``.

The runtime here is a real HTTP server on loopback that answers whatever the test scripts
(a notebook is root on its runtime and can put any server on the Jupyter port); the bridge,
its listener and its guard are colabtray's own, bridged exactly as the app bridges a runtime.
Only the backend's answer "the runtime is at this address, with this token" is given by the
test instead of Colab.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.bridge import Bridge
from colabtray.colab.models import CPU, PropagationResult, Runtime
from colabtray.settings import load_settings
from tests.fixtures.hostile import exchange, status_of

ENDPOINT = "m-s-hostile"
PREFIX = "colabtray-bridge-"
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@dataclass
class HostileRuntime:
    """Answers every request 200 with the scripted ``Set-Cookie`` headers; counts requests
    and records the ``Cookie`` headers it was sent."""

    url: str = ""
    set_cookies: list[str] = field(default_factory=list)
    cookies_seen: list[str] = field(default_factory=list)
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.cookies_seen.extend(request.headers.getall("Cookie", []))
        response = web.Response(text="runtime\n")
        for value in self.set_cookies:
            response.headers.add("Set-Cookie", value)
        return response


class Backend:
    """The backend's side of the seam: where the runtime is and its token (never sent back)."""

    def __init__(self, runtime_url: str) -> None:
        self.token = "runtime-token-" + secrets.token_urlsafe(16)
        self._runtime = Runtime.model_validate(
            {
                "endpoint": ENDPOINT,
                "variant": CPU,
                "accelerator": "NONE",
                "proxy": {"url": runtime_url, "token": self.token, "ttl_seconds": 3600},
            }
        )

    async def fresh_runtime(self, endpoint: str, *, force: bool, ahead: float) -> Runtime:
        return self._runtime

    async def propagate_credentials(
        self, endpoint: str, auth_type: str, dry_run: bool
    ) -> PropagationResult:
        raise AssertionError("no kernel asks for credentials here")

    async def notebook_secret(self, endpoint: str, name: str) -> dict[str, object]:
        return {"exists": False, "access": False, "payload": ""}

    async def may_open_consent(self, endpoint: str, auth_type: str) -> bool:
        return False


@dataclass
class Rig:
    runtime: HostileRuntime
    port: int
    secret: str

    def send(self, head: str) -> bytes:
        """``head`` (lines without their CRLF ends) on a new connection; the whole answer."""
        return exchange(self.port, (head.replace("\n", "\r\n") + "\r\n\r\n").encode("latin-1"))

    def get(self, *headers: str, version: str = "HTTP/1.1", target: str = "/api/x") -> bytes:
        lines = [f"GET {target} {version}", *headers, "Connection: close"]
        return self.send("\n".join(lines))

    @property
    def host(self) -> str:
        return f"Host: 127.0.0.1:{self.port}"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    hostile = HostileRuntime()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hostile.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hostile.url = f"http://127.0.0.1:{port}"
    values = {name: tmp_path / name for name in ("config_dir", "state_dir", "log_dir")}
    bridge = Bridge(
        load_settings(**values),
        Backend(hostile.url),
        jupyter_runtime_dir=tmp_path / "jupyter",
    )
    bridge.start()
    try:
        await asyncio.wrap_future(bridge.sync({ENDPOINT: "Hostile"}, complete=True))
        url = bridge.url_for(ENDPOINT)
        assert url is not None
        address, _, secret = url.partition("/?token=")
        yield Rig(hostile, int(address.rsplit(":", 1)[1]), secret)
    finally:
        await asyncio.to_thread(bridge.stop)
        with contextlib.suppress(Exception):
            await runner.cleanup()


def head_and_body(answer: bytes) -> tuple[list[str], str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), body.decode("utf-8", "replace")


def set_cookies(answer: bytes) -> list[str]:
    lines, _ = head_and_body(answer)
    return [
        line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("set-cookie:")
    ]


# ---- Cookie: ours is found among anything other local apps put beside it --------------------

# What a header may hold (printable ASCII, spaces and tabs), never a pair separator.
_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";"))
_FOREIGN = st.one_of(
    st.sampled_from(
        [
            'prefs={"theme":"dark"}',
            'a="unterminated',
            "=",
            "",
            " ",
            "$Version=1",
            "x",
            "a=b=c",
            "list=[1, 2, 3]",
            'q="quoted; not"',
            "\t",
            "_xsrf=",
        ]
    ),
    st.tuples(_TEXT, _TEXT).map("=".join),
    _TEXT,
)


@st.composite
def cookie_headers(draw: st.DrawFn, port: int, secret: str) -> tuple[list[str], bool]:
    """One or two ``Cookie`` header values of garbage, with our cookie (right or wrong value,
    or named for another port or in another case) among it; and whether the right one is."""
    ours = f"{PREFIX}{port}"
    near = draw(
        st.lists(
            st.sampled_from(
                [
                    f"{ours}={secret[:-1]}",
                    f"{ours}=",
                    f"{ours}={secret}x",
                    f"{ours}=x{secret}",
                    f"{PREFIX}{port + 1}={secret}",
                    f"{ours.upper()}={secret}",
                    f"{ours}",
                ]
            ),
            max_size=3,
        )
    )
    garbage = draw(st.lists(_FOREIGN, max_size=8))
    pieces = [*garbage, *near, "_xsrf=runtime-xsrf"]
    present = draw(st.booleans())
    if present:
        pieces.append(draw(st.sampled_from([f"{ours}={secret}", f" {ours}={secret} "])))
    pieces = draw(st.permutations(pieces))
    separator = draw(st.sampled_from(["; ", ";", " ; "]))
    split = draw(st.integers(0, len(pieces)))
    headers = [separator.join(pieces[:split]), separator.join(pieces[split:])]
    if draw(st.booleans()):  # usually one header, as browsers send
        headers = [separator.join(pieces)]
    return [h for h in headers if h.strip()] or [";"], present


async def test_our_cookie_is_found_among_any_other_cookies(rig: Rig) -> None:
    @EXAMPLES
    @given(cookie_headers(rig.port, rig.secret))
    def one(case: tuple[list[str], bool]) -> None:
        headers, present = case
        assert all(rig.secret not in h for h in rig.runtime.cookies_seen)
        before, requests = len(rig.runtime.cookies_seen), rig.runtime.requests
        answer = rig.get(rig.host, *(f"Cookie: {h}" for h in headers))
        lines, body = head_and_body(answer)
        if present:
            assert status_of(answer) == 200, (headers, lines)
            assert body == "runtime\n"
            # The runtime gets its own cookie, found as leniently, and never ours.
            sent = rig.runtime.cookies_seen[before:]
            assert any("_xsrf=runtime-xsrf" in h for h in sent), sent
            assert all(rig.secret not in h for h in sent)
        else:
            assert status_of(answer) == 403, (headers, lines)
            assert rig.runtime.requests == requests

    await asyncio.to_thread(one)


async def test_the_attack_pass_case_a_json_cookie_before_ours(rig: Rig) -> None:
    cookie = f'Cookie: prefs={{"theme":"dark"}}; {PREFIX}{rig.port}={rig.secret}'
    answer = await asyncio.to_thread(rig.get, rig.host, cookie)
    assert status_of(answer) == 200


async def test_the_bridges_cookie_lives_for_the_browser_session_only(rig: Rig) -> None:
    answer = await asyncio.to_thread(rig.get, rig.host, target=f"/lab?token={rig.secret}")
    assert status_of(answer) == 200
    (ours,) = [c for c in set_cookies(answer) if c.startswith(PREFIX)]
    attributes = {a.strip().split("=")[0].lower() for a in ours.split(";")[1:]}
    assert ours.startswith(f"{PREFIX}{rig.port}={rig.secret};")
    assert {"httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in ours.lower().replace(" ", "")
    assert not attributes & {"max-age", "expires"}, ours  # a session cookie


# ---- Set-Cookie: a runtime never sets or shadows a cookie named like the bridge's -----------


def browser_cookie_name(set_cookie: str) -> str:
    """The name a browser gives the cookie of a Set-Cookie value (RFC 6265bis 5.4: the pair
    before the first ";"; with no "=", the name is empty and the pair is the value, which
    the browser then sends back alone)."""
    pair = set_cookie.split(";", 1)[0]
    if "=" not in pair:
        return pair.strip(" \t")
    return pair.split("=", 1)[0].strip(" \t")


def bridge_like(name: str) -> bool:
    return name.lower().startswith(PREFIX)


@st.composite
def upstream_set_cookies(draw: st.DrawFn, port: int) -> list[str]:
    names = st.one_of(
        st.sampled_from(
            [
                f"{PREFIX}{port}",
                f"{PREFIX}{port + 1}",
                f"{PREFIX.upper()}{port}",
                f"CoLaBtRaY-bRiDgE-{port}",
                f" {PREFIX}{port}",
                f"\t{PREFIX}{port} ",
                f"{PREFIX}",
                "_xsrf",
                "session",
                "colabtray",
                "bridge",
            ]
        ),
        _TEXT.filter(lambda t: "=" not in t),
    )
    attributes = st.lists(
        st.sampled_from(
            [
                "Path=/",
                "Path=/api",
                "Max-Age=99999",
                "Expires=Wed, 21 Oct 2099 07:28:00 GMT",
                "HttpOnly",
                "Secure",
                "SameSite=None",
                "SameSite=Strict",
                "Domain=127.0.0.1",
                "Domain=localhost",
            ]
        )
        | _TEXT,
        max_size=4,
    )

    def cookie(name: str, equals: bool, value: str, extra: list[str]) -> str:
        return "; ".join([f"{name}={value}" if equals else name, *extra])

    one = st.builds(cookie, names, st.booleans(), _TEXT, attributes)
    return draw(st.lists(one, min_size=1, max_size=5))


async def test_no_runtime_cookie_reaches_the_client_named_like_the_bridges(rig: Rig) -> None:
    @EXAMPLES
    @given(upstream_set_cookies(rig.port))
    def one(scripted: list[str]) -> None:
        rig.runtime.set_cookies = scripted
        answer = rig.get(rig.host, f"Authorization: token {rig.secret}")
        assert status_of(answer) == 200
        received = set_cookies(answer)
        assert not [c for c in received if bridge_like(browser_cookie_name(c))], received
        # Every other cookie of the runtime's passes unchanged (JupyterLab's _xsrf needs it).
        wanted = [c for c in scripted if not bridge_like(browser_cookie_name(c))]
        assert sorted(received) == sorted(c.strip() for c in wanted)

    await asyncio.to_thread(one)


async def test_a_runtimes_cookie_beside_the_bridges_own_never_replaces_it(rig: Rig) -> None:
    rig.runtime.set_cookies = [
        f"{PREFIX}{rig.port}=from-the-runtime; Path=/; Max-Age=99999",
        "_xsrf=2|abc; Path=/",
    ]
    answer = await asyncio.to_thread(rig.get, rig.host, target=f"/lab?token={rig.secret}")
    received = set_cookies(answer)
    assert [c for c in received if c.startswith(PREFIX)] == [
        c for c in received if c.startswith(f"{PREFIX}{rig.port}={rig.secret};")
    ]
    assert len([c for c in received if c.startswith(PREFIX)]) == 1
    assert "_xsrf=2|abc; Path=/" in received


# ---- one Host, one Origin, HTTP/1.0 or 1.1 --------------------------------------------------


@st.composite
def header_cases(draw: st.DrawFn, port: int) -> tuple[str, list[str], list[str]]:
    version = draw(
        st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9"])
        | st.from_regex(r"HTTP/[0-9]\.[0-9]", fullmatch=True)
    )
    own = [f"127.0.0.1:{port}", f"localhost:{port}"]
    hosts = draw(st.lists(st.sampled_from(own), min_size=1, max_size=2))
    origins = draw(
        st.lists(
            st.sampled_from(
                [*(f"http://{h}" for h in own), "http://evil.example", "null", f"http://{own[0]}0"]
            ),
            max_size=3,
        )
    )
    return version, hosts, origins


async def test_duplicated_host_or_origin_is_400_and_other_versions_505(rig: Rig) -> None:
    own_origins = {f"http://127.0.0.1:{rig.port}", f"http://localhost:{rig.port}"}

    @EXAMPLES
    @given(header_cases(rig.port))
    def one(case: tuple[str, list[str], list[str]]) -> None:
        version, hosts, origins = case
        before = rig.runtime.requests
        answer = rig.get(
            *(f"Host: {h}" for h in hosts),
            *(f"Origin: {o}" for o in origins),
            f"Authorization: token {rig.secret}",
            "Cookie: probe=1",
            version=version,
        )
        status = status_of(answer)
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            # (A second Host is the parser's 400 when it reads the headers before the version.)
            if not (len(hosts) > 1 and status == 400):
                assert answer.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"), answer
        elif len(hosts) > 1 or len(origins) > 1:
            assert status == 400, answer
            assert answer.split(b"\r\n", 1)[0].endswith(b"400 Bad Request")
        elif origins and origins[0] not in own_origins:
            assert status == 403, answer
        else:
            assert status == 200, answer
            return
        assert rig.runtime.requests == before  # a refused request reached nothing
        _lines, body = head_and_body(answer)
        assert rig.secret not in body

    await asyncio.to_thread(one)


async def test_the_attack_pass_cases(rig: Rig) -> None:
    auth = f"Authorization: token {rig.secret}"
    own = f"Origin: http://127.0.0.1:{rig.port}"
    two = await asyncio.to_thread(rig.get, rig.host, own, "Origin: http://evil.example", auth)
    assert status_of(two) == 400
    assert head_and_body(two)[1] == "400 Bad Request: the request has more than one Origin header\n"
    newer = await asyncio.to_thread(rig.get, rig.host, auth, version="HTTP/1.2")
    assert newer.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    assert newer.endswith(b"505 HTTP Version Not Supported: speak HTTP/1.1 here\n")
    assert rig.runtime.requests == 0  # neither reached the runtime
