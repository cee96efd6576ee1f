"""The instance lock and the control channel over a real Unix socket: single instance,
commands, strict input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.system import instance, ipc


@pytest.fixture(autouse=True)
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short one, as desktops have (/run/user/UID): room for a UNIX socket's path."""
    path = Path(tempfile.mkdtemp(prefix="ct-run-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ipc.ControlServer]:
    claimed = ipc.ControlServer.claim(tmp_path / "config")
    assert claimed is not None
    claimed.register("show", lambda args: {"shown": "menu", "args": args})
    await claimed.start()
    yield claimed
    await claimed.close()


async def _raw(path: Path, data: bytes, *, half_close: bool = True) -> dict:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    await writer.drain()
    if half_close:
        writer.write_eof()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    await writer.wait_closed()
    return json.loads(line)


async def test_one_instance_per_config_dir(tmp_path: Path, server: ipc.ControlServer) -> None:
    assert ipc.ControlServer.claim(tmp_path / "config") is None
    other = ipc.ControlServer.claim(tmp_path / "other-config")  # e.g. the demo's
    assert other is not None
    await other.close()


async def test_lock_is_released_on_close(tmp_path: Path) -> None:
    first = ipc.ControlServer.claim(tmp_path / "config")
    assert first is not None
    await first.start()
    await first.close()
    assert not first.path.exists()
    again = ipc.ControlServer.claim(tmp_path / "config")
    assert again is not None
    await again.close()


async def test_request_reaches_the_handler(tmp_path: Path, server: ipc.ControlServer) -> None:
    result = await ipc.request(tmp_path / "config", "show", {"why": "second start"})
    assert result == {"shown": "menu", "args": {"why": "second start"}}


async def test_commands_are_a_registry(tmp_path: Path, server: ipc.ControlServer) -> None:
    async def url(args: dict) -> dict:
        if args.get("name") != "T4 GPU":
            raise ipc.IpcError(f"No runtime named {args.get('name')!r}.")
        return {"url": "http://127.0.0.1:1234/"}

    server.register("url", url)
    config = tmp_path / "config"
    assert await ipc.request(config, "url", {"name": "T4 GPU"}) == {"url": "http://127.0.0.1:1234/"}
    with pytest.raises(ipc.IpcError, match="No runtime named 'CPU'"):
        await ipc.request(config, "url", {"name": "CPU"})
    with pytest.raises(ipc.IpcError, match=r"Unknown command 'nope' \(known: show, url\)"):
        await ipc.request(config, "nope")


async def test_a_failing_handler_answers_a_sentence(
    tmp_path: Path, server: ipc.ControlServer
) -> None:
    server.register("broken", lambda args: 1 / 0)
    server.register("odd", lambda args: ["not", "a", "dict"])
    with pytest.raises(
        ipc.IpcError, match=r"failed to run 'broken' \(\w+\), which is a bug; see its log"
    ):
        await ipc.request(tmp_path / "config", "broken")
    with pytest.raises(ipc.IpcError, match="failed to run 'odd'"):
        await ipc.request(tmp_path / "config", "odd")
    assert await ipc.request(tmp_path / "config", "show") == {"shown": "menu", "args": {}}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not json\n", "The request is not JSON."),
        (b"[1, 2]\n", "The request must be a JSON object."),
        (b'{"v": 2, "cmd": "show"}\n', "This colabtray speaks protocol 1, not 2"),
        (b'{"v": true, "cmd": "show"}\n', "not True"),
        (b'{"v": "1", "cmd": "show"}\n', "not '1'"),
        (b'{"cmd": "show"}\n', "not None"),
        (b'{"v": 1, "cmd": 5}\n', "Unknown command 5"),
        (b'{"v": 1, "cmd": "show", "args": []}\n', "arguments must be a JSON object"),
        (b'{"v": 1, "cmd": "show", "extra": 1}\n', "Unknown fields in the request: 'extra'."),
        (b'{"v": 1, "cmd": "show"}', "one line ending in a newline"),
        (b"\xff\xfe\n", "The request is not JSON."),
        (b"x" * (ipc.MAX_LINE + 10) + b"\n", "The request is too long."),
    ],
)
async def test_strict_validation(server: ipc.ControlServer, data: bytes, error: str) -> None:
    reply = await _raw(server.path, data)
    assert reply["v"] == ipc.PROTOCOL_VERSION and reply["ok"] is False
    assert error in reply["error"]


async def test_a_silent_client_times_out(
    server: ipc.ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ipc, "READ_TIMEOUT", 0.2)
    reply = await _raw(server.path, b"", half_close=False)
    assert reply == {"v": 1, "ok": False, "error": "No request arrived in time."}


async def test_only_the_user_may_enter(
    tmp_path: Path, server: ipc.ControlServer, runtime_dir: Path
) -> None:
    directory = runtime_dir / "colabtray"
    assert server.path == directory / f"{instance.channel_name(tmp_path / 'config')}.sock"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert len(str(server.path)) < 104  # sun_path limit on macOS (108 on Linux)


def test_a_loose_directory_is_tightened(runtime_dir: Path) -> None:
    directory = runtime_dir / "colabtray"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)  # noqa: S103 - the point of the test
    assert instance.channel_dir() == directory
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_names_differ_by_config_dir(tmp_path: Path) -> None:
    a, b = instance.channel_name(tmp_path / "a"), instance.channel_name(tmp_path / "b")
    assert a != b and a.startswith("ipc-") and len(a) == 20
    assert instance.channel_name(tmp_path / "a" / ".." / "a") == a


async def test_a_stale_socket_from_a_crash_is_replaced(tmp_path: Path) -> None:
    path = instance.socket_path(tmp_path / "config")
    path.write_text("left by a crash")
    server = ipc.ControlServer.claim(tmp_path / "config")
    assert server is not None
    server.register("show", lambda args: {"ok": 1})
    await server.start()
    try:
        assert await ipc.request(tmp_path / "config", "show") == {"ok": 1}
    finally:
        await server.close()


async def test_nobody_running(tmp_path: Path) -> None:
    with pytest.raises(ipc.NotRunningError, match=r"colabtray is not running\."):
        await ipc.request(tmp_path / "config", "show")
    started = asyncio.get_running_loop().time()
    with pytest.raises(ipc.NotRunningError):
        await ipc.request(tmp_path / "config", "show", wait_for_server=0.3)
    assert asyncio.get_running_loop().time() - started >= 0.3


async def test_waits_for_an_instance_that_is_starting(tmp_path: Path) -> None:
    server = ipc.ControlServer.claim(tmp_path / "config")
    assert server is not None
    server.register("show", lambda args: {"shown": "menu"})

    async def start_late() -> None:
        await asyncio.sleep(0.3)
        await server.start()

    starting = asyncio.create_task(start_late())
    try:
        result = await ipc.request(tmp_path / "config", "show", wait_for_server=5)
        assert result == {"shown": "menu"}
    finally:
        await starting
        await server.close()


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 60000 + b"\n",
        b'{"v": 1, "cmd": "show", "args": {"a": ' + b"[" * 20000 + b"]" * 20000 + b"}}\n",
    ],
)
async def test_input_nested_too_deeply_gets_an_answer(
    server: ipc.ControlServer, data: bytes
) -> None:
    reply = await _raw(server.path, data)
    assert reply == {"v": 1, "ok": False, "error": "The request is nested too deeply."}
    assert (await _raw(server.path, b'{"v": 1, "cmd": "show"}\n'))["ok"] is True


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)
_lines = st.one_of(
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    _json_values.map(lambda v: json.dumps(v).encode() + b"\n"),
    st.fixed_dictionaries(
        {"v": _json_values | st.just(1), "cmd": _json_values | st.just("show")},
        optional={"args": _json_values},
    ).map(lambda v: json.dumps(v).encode() + b"\n"),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth + b"\n"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_lines, min_size=1, max_size=5))
def test_every_line_gets_exactly_one_json_reply(tmp_path_factory, lines: list[bytes]) -> None:
    async def run() -> None:
        config = tmp_path_factory.mktemp("config")
        server = ipc.ControlServer.claim(config)
        assert server is not None
        server.register("show", lambda args: {"shown": "menu"})
        await server.start()
        try:
            for line in lines:
                reply = await _raw(server.path, line)
                assert set(reply) in ({"v", "ok", "error"}, {"v", "ok", "result"})
                assert reply["v"] == 1 and isinstance(reply["ok"], bool)
                if not reply["ok"]:
                    assert isinstance(reply["error"], str) and "\n" not in reply["error"]
        finally:
            await server.close()

    asyncio.run(run())


async def test_a_flood_of_silent_connections_does_not_lock_the_user_out(
    tmp_path: Path, server: ipc.ControlServer
) -> None:
    silent = [await asyncio.open_unix_connection(str(server.path)) for _ in range(100)]
    try:
        # Held at most MAX_CONNECTIONS at once: the oldest silent ones made room.
        result = await ipc.request(tmp_path / "config", "show", {"after": "flood"})
        assert result == {"shown": "menu", "args": {"after": "flood"}}
        closed = 0
        for reader, _writer in silent:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await reader.read()
                    closed += 1
        assert closed >= 100 - ipc.MAX_CONNECTIONS
    finally:
        for _reader, writer in silent:
            writer.close()


async def test_a_runtime_dir_too_deep_for_a_unix_socket_uses_the_loopback_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some systems give a runtime directory whose path leaves no room for a socket's name
    (107 bytes on Linux): the app and its commands still meet, on a loopback port."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    claimed = ipc.ControlServer.claim(tmp_path / "config")
    assert claimed is not None
    claimed.register("show", lambda args: {"shown": "menu"})
    await claimed.start()
    try:
        assert claimed.path.suffix == ".json"
        assert stat.S_IMODE(claimed.path.stat().st_mode) == 0o600
        assert await ipc.request(tmp_path / "config", "show") == {"shown": "menu"}
        assert ipc.ControlServer.claim(tmp_path / "config") is None  # still one instance
    finally:
        await claimed.close()


async def _listen_as_a_stranger(path: Path, received: bytearray) -> asyncio.AbstractServer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(b"connected\n")
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(5):
                received.extend(await reader.read())
        writer.close()

    return await asyncio.start_unix_server(serve, str(path))


async def test_a_socket_no_live_instance_holds_is_never_connected_to(tmp_path: Path) -> None:
    config = tmp_path / "config"
    received = bytearray()
    stranger = await _listen_as_a_stranger(instance.socket_path(config), received)
    try:
        with pytest.raises(ipc.NotRunningError):
            await ipc.request(config, "secret", {"op": "set", "value": "hunter2"})
    finally:
        stranger.close()
        await stranger.wait_closed()
    assert received == b""


async def test_a_socket_of_another_user_gets_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client checks the server's uid too (SO_PEERCRED). No other user can put a socket in
    the 0700 directory, so the other user is simulated: a plain asyncio server listens on the
    instance's socket, and the uid the OS reports for it is replaced by one that is not ours."""
    config = tmp_path / "config"
    lock = instance.InstanceLock.claim(config)
    assert lock is not None
    received = bytearray()
    stranger = await _listen_as_a_stranger(lock.socket, received)
    monkeypatch.setattr(ipc, "_peer_uid", lambda sock: os.getuid() + 1)
    try:
        with pytest.raises(ipc.ImpostorError, match=r"control socket .*; nothing was sent"):
            await ipc.request(config, "secret", {"op": "set", "value": "hunter2"})
        await asyncio.sleep(0.1)
    finally:
        stranger.close()
        await stranger.wait_closed()
        lock.release()
    assert bytes(received) in (b"", b"connected\n")  # a connection at most, not one byte
