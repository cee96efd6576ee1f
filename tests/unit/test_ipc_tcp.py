"""The control channel where there are no UNIX sockets (Windows): a loopback port whose number
and secret are in a 0600 file. Forced on Linux with COLABTRAY_CONTROL_CHANNEL=tcp; the lock is
filelock's on every platform."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from colabtray.system import instance, ipc


@pytest.fixture(autouse=True)
def tcp_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("COLABTRAY_CONTROL_CHANNEL", "tcp")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ipc.ControlServer]:
    claimed = ipc.ControlServer.claim(tmp_path / "config")
    assert claimed is not None
    claimed.register("show", lambda args: {"shown": "menu", "args": args})
    await claimed.start()
    yield claimed
    await claimed.close()


async def raw(port: int, request: dict) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(json.dumps(request).encode() + b"\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    await writer.wait_closed()
    return json.loads(line)


async def test_a_command_goes_through_the_port_with_the_secret(
    tmp_path: Path, server: ipc.ControlServer
) -> None:
    assert server.path.suffix == ".json"
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    address = json.loads(server.path.read_text())
    assert set(address) == {"port", "secret"} and len(address["secret"]) >= 40
    reply = await ipc.request(tmp_path / "config", "show", {"why": "tcp"})
    assert reply == {"shown": "menu", "args": {"why": "tcp"}}


@pytest.mark.parametrize("secret", [None, "wrong", 5])
async def test_without_the_secret_nothing_runs(server: ipc.ControlServer, secret: object) -> None:
    ran: list[dict] = []
    server.register("spy", lambda args: ran.append(args) or {})
    request: dict = {"v": 1, "cmd": "spy", "args": {}}
    if secret is not None:
        request["secret"] = secret
    port = json.loads(server.path.read_text())["port"]
    reply = await raw(port, request)
    assert reply == {"v": 1, "ok": False, "error": "The request lacks colabtray's secret."}
    assert ran == []


async def test_one_instance_and_a_stale_file_means_not_running(tmp_path: Path) -> None:
    first = ipc.ControlServer.claim(tmp_path / "config")
    assert first is not None
    assert ipc.ControlServer.claim(tmp_path / "config") is None  # the lock is held
    await first.start()
    path = first.path
    stale = path.read_text()
    await first.close()
    path.write_text(stale)  # as a crash would leave it: its port no longer answers
    with pytest.raises(ipc.NotRunningError):
        await ipc.request(tmp_path / "config", "show")
    again = ipc.ControlServer.claim(tmp_path / "config")  # the lock was released
    assert again is not None
    again.register("show", lambda args: {"shown": "again"})
    await again.start()
    try:
        assert await ipc.request(tmp_path / "config", "show") == {"shown": "again"}
    finally:
        await again.close()
    assert not path.exists()


def test_the_channel_is_named_for_the_config_dir(tmp_path: Path) -> None:
    path = instance.socket_path(tmp_path / "config")
    assert path.name == f"{instance.channel_name(tmp_path / 'config')}.json"
