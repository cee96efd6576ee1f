"""The bridge when Colab stops accepting a runtime proxy token before it expires.

The emulator's admin API revokes the tokens (``tokens/revoke-proxy``); the runtime proxy then
answers 401 to the token the bridge holds. The bridge is to fetch one new token and send the
request again, so the editor notices nothing: REST calls (bodies up to 1 MB included) and new
kernel WebSockets work, and a kernel WebSocket that was already open keeps running code (the
token is checked when a connection opens, not on an established one). A larger body streams and
is not sent twice: that one request gets the 401, the next one works.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fixtures.bridge import Bridged
from tests.fixtures.emulator import Emulator
from tests.fixtures.jupyter_client import KernelSession, split_url
from tests.fixtures.waiting import until

pytestmark = pytest.mark.slow

PROXY_TOKEN_HEADER = "X-Colab-Runtime-Proxy-Token"


def token_refreshes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls that hand out a new proxy token (colabtray lists assignments, or asks GAPI)."""
    return [
        e
        for e in entries
        if (e["host"], e["path"])
        in {("colab", "/tun/m/assignments"), ("gapi", "/gapi/v1/runtime-proxy-token")}
    ]


def runtime_calls(emulator: Emulator, since: int, path: str) -> list[dict[str, Any]]:
    return [e for e in emulator.requests(since, "runtime") if e["path"] == path]


def assert_refused_then_retried(
    emulator: Emulator, since: int, path: str, statuses: list[int]
) -> list[dict[str, Any]]:
    """The runtime saw ``path`` answered with ``statuses`` (401 first), and exactly one token
    refresh happened between the refusal and the retry. Returns the runtime's entries."""
    entries = emulator.requests(since)
    seen = [e for e in entries if e["host"] == "runtime" and e["path"] == path]
    assert [e["status"] for e in seen] == statuses, seen
    (refresh,) = token_refreshes(entries)
    assert seen[0]["seq"] < refresh["seq"] < seen[1]["seq"]
    assert refresh["status"] == 200
    return seen


def bridge_token_status(bridged: Bridged, endpoint: str) -> int:
    """What the runtime answers now to the token the bridge was given last."""
    runtime = bridged.registry.state.runtimes[endpoint]
    assert runtime.proxy is not None
    response = httpx2.get(
        runtime.proxy.url.rstrip("/") + "/api/kernels",
        headers={PROXY_TOKEN_HEADER: runtime.proxy.token.get_secret_value()},
        timeout=30,
    )
    return response.status_code


async def test_rest_call_after_revocation_refreshes_once_and_succeeds(bridged: Bridged) -> None:
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=30) as http:
        assert (await http.get("/api/contents")).status_code == 200  # the bridge has a token
        mark = emulator.last_seq()
        assert emulator.revoke_proxy_tokens(endpoint) >= 1
        assert bridge_token_status(bridged, endpoint) == 401

        listing = await http.get("/api/contents")
        assert listing.status_code == 200, listing.text
        names = {item["name"]: item["type"] for item in listing.json()["content"]}
        assert names.get("content") == "directory"
        assert_refused_then_retried(emulator, mark, "/api/contents", [401, 200])

        # The new token is kept: the next call goes through at once.
        mark = emulator.last_seq()
        assert (await http.get("/api/contents/content")).status_code == 200
        assert [e["status"] for e in runtime_calls(emulator, mark, "/api/contents/content")] == [
            200
        ]
        assert not token_refreshes(emulator.requests(mark))


async def test_simultaneous_calls_after_revocation_share_one_refresh(bridged: Bridged) -> None:
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=30) as http:
        assert (await http.get("/api/kernels")).status_code == 200
        mark = emulator.last_seq()
        emulator.revoke_proxy_tokens(endpoint)
        replies = await asyncio.gather(*(http.get("/api/kernels") for _ in range(8)))
    assert [r.status_code for r in replies] == [200] * 8
    entries = emulator.requests(mark)
    assert len(token_refreshes(entries)) == 1
    statuses = [e["status"] for e in entries if e["host"] == "runtime"]
    assert statuses.count(200) == 8 and 1 <= statuses.count(401) <= 8, statuses


async def test_new_kernel_websocket_after_revocation_runs_code(bridged: Bridged) -> None:
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=60) as http:
        made = await http.post("/api/kernels", json={"name": "python3"})
        assert made.status_code == 201, made.text
        kernel_id = made.json()["id"]
        mark = emulator.last_seq()
        emulator.revoke_proxy_tokens(endpoint)

        # The WebSocket handshake is the first request after the revocation.
        async with KernelSession(url, kernel_id=kernel_id) as kernel:
            output, reply = await kernel.execute("print(6*7)")
        assert reply["status"] == "ok"
        assert output == "42\n"

        channels = f"/api/kernels/{kernel_id}/channels"
        # A WebSocket's status is logged when it closes: 101 once the session above is done.
        await until(
            lambda: (
                (calls := runtime_calls(emulator, mark, channels)) and calls[-1]["status"] == 101
            ),
            10,
        )
        assert_refused_then_retried(emulator, mark, channels, [401, 101])
        await http.delete(f"/api/kernels/{kernel_id}")


async def test_open_kernel_websocket_keeps_running_after_revocation(bridged: Bridged) -> None:
    """Colab checks the token when a connection opens; an open kernel connection is kept,
    so the editor's notebook goes on running without reconnecting."""
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        _output, reply = await kernel.execute("x = 6")
        assert reply["status"] == "ok"
        mark = emulator.last_seq()
        assert emulator.revoke_proxy_tokens(endpoint) >= 1
        assert bridge_token_status(bridged, endpoint) == 401  # its token is really refused

        output, reply = await kernel.execute("print(x*7)")
        assert reply["status"] == "ok"
        assert output == "42\n"  # the same kernel, state and connection
        channels = f"/api/kernels/{kernel.kernel_id}/channels"
        assert runtime_calls(emulator, mark, channels) == []  # no reconnection happened
        assert kernel.ws.close_code is None


async def test_saving_a_file_after_revocation_keeps_its_content(bridged: Bridged) -> None:
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    # Bigger than one small reply (64 KB) but within the bridge's retry buffer (1 MB).
    text = "Grüße, 6*7 = 42 ✓\n" + "".join(f"{i:06d} {os.urandom(24).hex()}\n" for i in range(5000))
    path = "/api/contents/content/revoked.txt"
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=60) as http:
        assert (await http.get("/api/contents")).status_code == 200
        mark = emulator.last_seq()
        emulator.revoke_proxy_tokens(endpoint)

        body = json.dumps({"type": "file", "format": "text", "content": text}).encode()
        saved = await http.put(path, content=body, headers={"Content-Type": "application/json"})
        assert saved.status_code == 201, saved.text
        assert saved.json()["size"] == len(text.encode())
        # The whole body went both times (the retry is not a drained, empty stream).
        for entry in assert_refused_then_retried(emulator, mark, path, [401, 201]):
            lengths = [v for k, v in entry["headers"].items() if k.lower() == "content-length"]
            assert lengths == [str(len(body))]

        got = await http.get(path, params={"content": "1", "format": "text"})
        assert got.status_code == 200
        assert got.json()["content"] == text
    (runtime,) = [r for r in emulator.state()["runtimes"] if r["endpoint"] == endpoint]
    on_disk = Path(runtime["root_dir"], "content", "revoked.txt")
    assert await asyncio.to_thread(on_disk.read_bytes) == text.encode()


async def test_a_save_without_a_length_is_retried_whole_after_revocation(bridged: Bridged) -> None:
    """A body sent chunked (no Content-Length) that fits the retry buffer is kept, so the
    save after a revocation goes through at once, as one with a length does."""
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    text = "".join(f"{i:06d} {os.urandom(24).hex()}\n" for i in range(4000))  # 228 KB
    body = json.dumps({"type": "file", "format": "text", "content": text}).encode()

    async def in_pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    path = "/api/contents/content/chunked.txt"
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=60) as http:
        assert (await http.get("/api/contents")).status_code == 200
        mark = emulator.last_seq()
        emulator.revoke_proxy_tokens(endpoint)

        saved = await http.put(path, content=in_pieces())
        assert saved.status_code == 201, saved.text[:300]
        assert_refused_then_retried(emulator, mark, path, [401, 201])
        got = await http.get(path, params={"content": "1", "format": "text"})
        assert got.json()["content"] == text


async def test_large_upload_refused_once_then_goes_through(bridged: Bridged) -> None:
    """A body over the retry buffer (1 MB) streams and cannot be sent twice: the first save
    after a revocation gets the 401, but the bridge takes a new token at once, so saving
    again works (it does not keep sending the refused token)."""
    emulator = bridged.emulator
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    text = os.urandom(700 * 1024).hex()  # 1.4 MB of text
    body = json.dumps({"type": "file", "format": "text", "content": text}).encode()
    headers = {"Content-Type": "application/json"}
    path = "/api/contents/content/large.txt"
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=60) as http:
        assert (await http.get("/api/contents")).status_code == 200
        mark = emulator.last_seq()
        emulator.revoke_proxy_tokens(endpoint)

        refused = await http.put(path, content=body, headers=headers)
        assert refused.status_code == 401
        saved = await http.put(path, content=body, headers=headers)
        assert saved.status_code == 201, saved.text[:300]
        assert_refused_then_retried(emulator, mark, path, [401, 201])

        got = await http.get(path, params={"content": "1", "format": "text"})
        assert got.status_code == 200
        assert got.json()["content"] == text
