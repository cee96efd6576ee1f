"""The editor bridge against real kernels on the emulator's runtimes, through real clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import httpx2
import pytest
import websockets

from colabtray.bridge import bridge_registry
from tests.fixtures.bridge import Bridged
from tests.fixtures.jupyter_client import KernelSession, split_url
from tests.fixtures.waiting import until

pytestmark = pytest.mark.slow


async def test_a_client_given_only_the_url_runs_code(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    assert url.startswith("http://127.0.0.1:") and "?token=" in url
    async with KernelSession(url) as kernel:
        output, reply = await kernel.execute("print(6*7)")
    assert reply["status"] == "ok"
    assert output == "42\n"


async def test_v1_binary_protocol_passes_through(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url, v1=True) as kernel:
        output, reply = await kernel.execute("print('v1', 6*7)")
    assert reply["status"] == "ok"
    assert output == "v1 42\n"


async def test_jupyter_server_list_shows_the_runtime(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(bridged.jupyter_dir))
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jupyter_server", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    servers = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    base, token = split_url(url)
    (ours,) = [s for s in servers if s.get("colabtray", {}).get("endpoint") == endpoint]
    assert ours["url"] == base + "/"
    assert ours["token"] == token
    assert ours["pid"] == os.getpid()
    (path,) = list(bridged.jupyter_dir.glob("jpserver-*.json"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # The server file goes with the runtime.
    await bridged.registry.remove(endpoint)
    await until(lambda: not list(bridged.jupyter_dir.glob("jpserver-*.json")), 10)
    assert bridged.bridge.url_for(endpoint) is None


async def test_rest_calls_stream_and_keep_the_secret_from_the_runtime(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        status = await http.get("/api/status", headers={"Authorization": f"token {token}"})
        assert status.status_code == 200, status.text
        assert "X-Colab-Runtime-Proxy-Token" not in status.headers
    log = bridged.emulator.admin("GET", "requests")
    seen = [e for e in log["requests"] if e["host"] == "runtime" and e["path"] == "/api/status"]
    assert seen, log
    entry = seen[-1]
    assert "token" not in entry["query"]
    assert entry["headers"].get("X-Colab-Runtime-Proxy-Token") == "<redacted>"
    assert "Authorization" not in entry["headers"]
    assert bridged.bridge.last_activity(endpoint) is not None


async def test_large_bodies_stream_intact_both_ways(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    payload = os.urandom(6 * 1024 * 1024)  # base64 in JSON: ~8 MB up, past the retry buffer
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=60) as http:
        put = await http.put(
            "/api/contents/big.bin",
            json={
                "type": "file",
                "format": "base64",
                "content": base64.b64encode(payload).decode(),
            },
        )
        assert put.status_code in (200, 201), put.text[:300]
        got = await http.get("/files/big.bin")
        assert got.status_code == 200
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(payload).digest()
        # JupyterLab's own bundles, compressed or not, arrive as the runtime sent them.
        page = await http.get("/lab")
        assert page.status_code == 200 and "jupyter-config-data" in page.text


async def test_a_client_that_waits_for_100_continue_gets_it_and_its_save_lands(
    bridged: Bridged,
) -> None:
    """curl and others ask before sending a large body (``Expect: 100-continue``); without the
    bridge's go-ahead such a client would wait for good (aiohttp's client waits forever)."""
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    content = "saved after 100 Continue\n"
    async with (
        aiohttp.ClientSession(base_url=base, headers={"Authorization": f"token {token}"}) as http,
        asyncio.timeout(30),
    ):
        async with http.put(
            "/api/contents/expect.txt",
            json={"type": "file", "format": "text", "content": content},
            expect100=True,
        ) as put:
            assert put.status in (200, 201), await put.text()
        async with http.get("/files/expect.txt") as got:
            assert await got.text() == content


def listening_ports() -> set[int]:
    """Ports this process listens on (Linux: /proc/net/tcp matched to our socket fds)."""
    ours = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                ours.add(target[8:-1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in ours:  # LISTEN
            ports.add(int(fields[1].split(":")[1], 16))
    return ports


async def test_concurrent_syncs_open_one_server_per_runtime(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    before = listening_ports()
    names = {endpoint: "x", "m-s-other": "y"}
    futures = [bridged.bridge.sync(names, complete=False) for _ in range(5)]
    await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    assert len(listening_ports() - before) == 1  # one new server, for the new runtime
    assert bridged.bridge.url_for(endpoint) == url  # the same port and secret as before


async def test_the_url_survives_a_restart_of_the_app(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    await asyncio.to_thread(bridged.bridge.stop)
    assert not list(bridged.jupyter_dir.glob("jpserver-*.json"))
    again = bridge_registry(
        bridged.settings, bridged.registry, jupyter_runtime_dir=bridged.jupyter_dir
    )
    try:
        assert await until(lambda: again.url_for(endpoint), 10) == url
        async with KernelSession(url) as kernel:
            output, _ = await kernel.execute("print(6*7)")
            assert output == "42\n"
    finally:
        await asyncio.to_thread(again.stop)


async def test_terminals_pass_through(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=30) as http:
        made = await http.post("/api/terminals")
        assert made.status_code == 200, made.text
        name = made.json()["name"]
        ws_url = base.replace("http", "ws", 1) + f"/terminals/websocket/{name}?token={token}"
        output = ""
        async with websockets.connect(ws_url, open_timeout=30) as ws:
            await ws.send(json.dumps(["stdin", "echo bridged-$((6*7))\r"]))
            async with asyncio.timeout(30):
                while "bridged-42" not in output:
                    kind, *data = json.loads(await ws.recv())
                    if kind == "stdout":
                        output += data[0]
        await http.delete(f"/api/terminals/{name}")


async def test_ports_listen_at_once_and_the_http_side_starts_with_the_first_editor(
    bridged: Bridged,
) -> None:
    endpoint, url = await bridged.runtime()
    assert not bridged.bridge.serving  # no editor yet: aiohttp is not even loaded for it
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        first = await http.get("/api/status", headers={"Authorization": f"token {token}"})
        assert first.status_code == 200, first.text
        assert bridged.bridge.serving
        # A runtime added later is served from its first request on.
        _other, later_url = await bridged.runtime()
        later_base, later_token = split_url(later_url)
        later = await http.get(
            f"{later_base}/api/status", headers={"Authorization": f"token {later_token}"}
        )
        assert later.status_code == 200, later.text
    assert endpoint in bridged.bridge.bridged()


async def test_a_runtime_gone_before_any_editor_came_still_says_so(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    await bridged.registry.remove(endpoint)
    await until(lambda: bridged.bridge.url_for(endpoint) is None, 10)
    assert not bridged.bridge.serving
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        gone = await http.get("/api/kernels", params={"token": token})
    assert gone.status_code == 502
    assert gone.text == "502 Bad Gateway: this Colab runtime was disconnected\n"
