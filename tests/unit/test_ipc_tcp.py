"""The control channel on a loopback port (Windows, a runtime dir too deep for a socket's path,
or forced on Linux with COLABTRAY_CONTROL_CHANNEL=tcp): any local user can connect to it, or bind
a port an instance left behind. The client connects only while the instance lock is held, both
sides prove they know the secret in the instance's 0600 file, and the command goes out only
after the server's proof: a stranger on the port gets a greeting and nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.system import instance, ipc
from colabtray.system.jsonfile import write_atomically

SECRET_VALUE = "hf_the-value-a-stranger-must-never-see-0123456789"


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


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _hmac(key: str | bytes, label: bytes, first: bytes, second: bytes) -> str:
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, label + first + second, hashlib.sha256).hexdigest()


async def _exchange(port: int, lines: list[bytes]) -> list[dict[str, Any]]:
    """Send each line and read one reply line after it; stop at the first reply that is an
    error or at the end of the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2 * ipc.MAX_LINE)
    replies: list[dict[str, Any]] = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            async with asyncio.timeout(10):
                answer = await reader.readline()
            if not answer:
                break
            replies.append(json.loads(answer))
            if replies[-1].get("ok") is False:
                break
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return replies


def _address(server: ipc.ControlServer) -> tuple[int, str]:
    data = json.loads(server.path.read_text())
    return data["port"], data["secret"]


def _hello() -> tuple[bytes, bytes]:
    nonce = secrets.token_bytes(ipc.NONCE_BYTES)
    return nonce, _line({"v": 1, "hello": nonce.hex()})


def _impostor(port: int) -> str:
    return ipc.ImpostorError(f"port (127.0.0.1:{port})").message


# ---- the instance's side -------------------------------------------------------------------


async def test_a_command_goes_through_the_port_after_both_proofs(
    tmp_path: Path, server: ipc.ControlServer
) -> None:
    assert server.path.suffix == ".json"
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
    address = json.loads(server.path.read_text())
    assert set(address) == {"port", "secret"} and len(address["secret"]) >= 40
    reply = await ipc.request(tmp_path / "config", "show", {"why": "tcp"})
    assert reply == {"shown": "menu", "args": {"why": "tcp"}}


async def test_the_server_proves_the_secret_for_the_clients_nonce(
    server: ipc.ControlServer,
) -> None:
    port, secret = _address(server)
    nonce, hello = _hello()
    (challenge,) = await _exchange(port, [hello])
    assert set(challenge) == {"v", "nonce", "proof"}
    server_nonce = bytes.fromhex(challenge["nonce"])
    assert len(server_nonce) == ipc.NONCE_BYTES
    assert challenge["proof"] == _hmac(secret, ipc.SERVER_PROVES, nonce, server_nonce)
    assert secret not in json.dumps(challenge)
    (again,) = await _exchange(port, [hello])  # the same greeting: a fresh nonce, another proof
    assert again["nonce"] != challenge["nonce"] and again["proof"] != challenge["proof"]


@pytest.mark.parametrize(
    "first",
    [
        b'{"v": 1, "cmd": "spy", "args": {}}\n',
        b'{"v": 1, "cmd": "spy", "args": {}, "secret": "SECRET"}\n',  # the old way, in the clear
        b'{"v": 1, "hello": "00"}\n',
        b'{"v": 1, "hello": "' + b"AB" * ipc.NONCE_BYTES + b'"}\n',
        b'{"v": 2, "hello": "' + b"ab" * ipc.NONCE_BYTES + b'"}\n',
        b'{"v": 1, "hello": "' + b"ab" * ipc.NONCE_BYTES + b'", "cmd": "spy"}\n',
        b"not json\n",
    ],
)
async def test_a_connection_that_does_not_begin_with_the_greeting_runs_nothing(
    server: ipc.ControlServer, first: bytes
) -> None:
    ran: list[dict] = []
    server.register("spy", lambda args: ran.append(args) or {})
    port, secret = _address(server)
    replies = await _exchange(port, [first.replace(b"SECRET", secret.encode())])
    assert len(replies) == 1 and replies[0]["ok"] is False
    assert "greeting" in replies[0]["error"] or replies[0]["error"] == "The request is not JSON."
    assert ran == []


@pytest.mark.parametrize(
    "forge",
    ["none", "wrong", "number", "the server's", "another connection's", "swapped nonces"],
)
async def test_without_the_clients_proof_nothing_runs(
    server: ipc.ControlServer, forge: str
) -> None:
    ran: list[dict] = []
    server.register("spy", lambda args: ran.append(args) or {})
    port, secret = _address(server)
    nonce, hello = _hello()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(hello)
        challenge = json.loads(await reader.readline())
        server_nonce = bytes.fromhex(challenge["nonce"])
        proof: object = {
            "none": None,
            "wrong": secrets.token_hex(32),
            "number": 5,
            "the server's": challenge["proof"],  # reflected back
            "another connection's": _hmac(
                secret, ipc.CLIENT_PROVES, secrets.token_bytes(32), server_nonce
            ),
            "swapped nonces": _hmac(secret, ipc.CLIENT_PROVES, server_nonce, nonce),
        }[forge]
        request: dict[str, Any] = {"v": 1, "cmd": "spy", "args": {}}
        if proof is not None:
            request["proof"] = proof
        writer.write(_line(request))
        reply = json.loads(await reader.readline())
    finally:
        writer.close()
    assert reply == {"v": 1, "ok": False, "error": "The request lacks colabtray's secret."}
    assert ran == []


async def test_a_client_silent_after_the_greeting_times_out(
    server: ipc.ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ipc, "READ_TIMEOUT", 0.3)
    port, _secret = _address(server)
    _nonce, hello = _hello()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(hello)
        assert "proof" in json.loads(await reader.readline())
        async with asyncio.timeout(5):
            reply = json.loads(await reader.readline())
    finally:
        writer.close()
    assert reply == {"v": 1, "ok": False, "error": "No request arrived in time."}


_junk = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=70),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode() + b"\n"),
)
_hex = st.binary(min_size=ipc.NONCE_BYTES, max_size=ipc.NONCE_BYTES).map(bytes.hex)
_greetings = _junk | st.fixed_dictionaries(
    {"v": st.just(1) | st.integers(0, 3), "hello": _hex | st.text(max_size=70)}
).map(_line)
_requests = _junk | st.fixed_dictionaries(
    {"v": st.just(1), "cmd": st.just("spy"), "proof": _hex | st.integers() | st.none()},
    optional={"args": st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)},
).map(_line)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(greeting=_greetings, request=_requests)
def test_hostile_clients_get_one_answer_per_line_and_run_nothing(
    tmp_path_factory: pytest.TempPathFactory, greeting: bytes, request: bytes
) -> None:
    """Whatever the greeting and the request, the server answers each with one JSON line (a
    proof of the secret for the client's nonce, or a refusal), and runs nothing."""

    async def run() -> None:
        server = ipc.ControlServer.claim(tmp_path_factory.mktemp("config"))
        assert server is not None
        ran: list[dict] = []
        server.register("spy", lambda args: ran.append(args) or {})
        await server.start()
        try:
            port, secret = _address(server)
            replies = await _exchange(port, [greeting, request])
        finally:
            await server.close()
        assert ran == []
        assert 1 <= len(replies) <= 2
        first = replies[0]
        if "proof" in first:  # a well-formed greeting: the proof is right, then a refusal
            client_nonce = bytes.fromhex(json.loads(greeting)["hello"])
            server_nonce = bytes.fromhex(first["nonce"])
            assert first["proof"] == _hmac(secret, ipc.SERVER_PROVES, client_nonce, server_nonce)
            first = replies[1]
        assert set(first) == {"v", "ok", "error"} and first["ok"] is False
        assert isinstance(first["error"], str) and "\n" not in first["error"]

    asyncio.run(run())


# ---- the client's side: whom it talks to ------------------------------------------------------


class _Rogue:
    """A plain asyncio server that does not know the secret: it records every byte it gets
    and answers as ``answer`` says."""

    def __init__(
        self, answer: Callable[[bytes], Awaitable[bytes]] | None = None, pieces: int = 1
    ) -> None:
        self.connections = 0
        self.pieces = pieces  # the answer in that many writes
        self.received = bytearray()
        self.after_greeting = bytearray()
        self.done = asyncio.Event()
        self._answer = answer
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> _Rogue:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, limit=4 * ipc.MAX_LINE
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            greeting = await reader.readline()
            self.received += greeting
            if self._answer is not None:
                answer = await self._answer(greeting)
                size = -(-len(answer) // self.pieces) or 1
                for start in range(0, len(answer), size):
                    writer.write(answer[start : start + size])
                    await writer.drain()
                    await asyncio.sleep(0.002)
                writer.write_eof()
            async with asyncio.timeout(10):
                rest = await reader.read()  # until the client hangs up
            self.received += rest
            self.after_greeting += rest
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
            self.done.set()


def _point_channel_at(config: Path, port: int, secret: str) -> None:
    write_atomically(instance.socket_path(config), json.dumps({"port": port, "secret": secret}))


def _is_greeting(line: bytes) -> bool:
    message = json.loads(line)
    return set(message) == {"v", "hello"} and len(bytes.fromhex(message["hello"])) == 32


async def test_a_port_file_no_live_instance_holds_is_never_connected_to(tmp_path: Path) -> None:
    """The app died and left its port file; whoever listens on that port now gets not even a
    connection: the lock is free, so nobody runs."""
    config = tmp_path / "config"
    async with _Rogue() as rogue:
        _point_channel_at(config, rogue.port, secrets.token_urlsafe(32))
        assert not instance.instance_running(config)
        with pytest.raises(ipc.NotRunningError, match=r"^colabtray is not running\.$"):
            await ipc.request(config, "secret", {"op": "set", "value": SECRET_VALUE})
        with pytest.raises(ipc.NotRunningError):
            await ipc.request(config, "runtime", wait_for_server=0.3)
        await asyncio.sleep(0.05)
        assert rogue.connections == 0 and rogue.received == b""


@pytest.mark.parametrize(
    "secret", [None, "", "short", 7], ids=["no secret", "empty", "short", "number"]
)
async def test_a_port_file_without_a_real_secret_is_not_used(
    tmp_path: Path, secret: object
) -> None:
    """A proof with an empty or guessable key is no proof: such a file counts as not written."""
    config = tmp_path / "config"
    lock = instance.InstanceLock.claim(config)
    assert lock is not None
    try:
        async with _Rogue() as rogue:
            address: dict[str, Any] = {"port": rogue.port}
            if secret is not None:
                address["secret"] = secret
            write_atomically(instance.socket_path(config), json.dumps(address))
            with pytest.raises(ipc.NotRunningError):
                await ipc.request(config, "show")
            assert rogue.connections == 0
    finally:
        lock.release()


async def test_claiming_the_lock_removes_a_dead_instances_port_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    _point_channel_at(config, 9, secrets.token_urlsafe(32))
    lock = instance.InstanceLock.claim(config)
    assert lock is not None
    try:
        assert not instance.socket_path(config).exists()
        assert instance.instance_running(config)  # and the probe left it held
    finally:
        lock.release()
    assert not instance.instance_running(config)


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


_ROGUE = r"""
import asyncio, json, os, secrets, sys

received = bytearray()
connections = 0

async def serve(reader, writer):
    global connections
    connections += 1
    try:
        while line := await reader.readline():
            received.extend(line)
            if b'"hello"' in line:  # what a challenge looks like, with a proof it cannot make
                answer = {"v": 1, "nonce": secrets.token_hex(32), "proof": secrets.token_hex(32)}
            else:  # the attack: take the command, answer with an address of its own
                answer = {"v": 1, "ok": True, "result": {"proxy_url": "http://127.0.0.1:9/evil"}}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
    except OSError:
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.sleep(0.2)
    print(json.dumps({"uid": os.getuid(), "connections": connections, "received": received.hex()}))

asyncio.run(main())
"""

OTHER_USER = 65534  # nobody


def _as_another_user() -> dict[str, Any] | None:
    """Popen's arguments that run the rogue as another OS user: possible as root, with an
    interpreter that user may run (the venv's may sit under /root). None otherwise."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    for python in (sys.executable, shutil.which("python3", path="/usr/bin:/usr/local/bin")):
        if python is None:
            continue
        run = {"user": OTHER_USER, "group": OTHER_USER, "extra_groups": [], "cwd": "/"}
        try:
            probe = subprocess.run(
                [python, "-I", "-c", "pass"], env={}, capture_output=True, timeout=30, **run
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return {"python": python, **run}
    return None


async def test_a_stranger_on_the_port_gets_no_command_and_no_secret(tmp_path: Path) -> None:
    """The attack of issue 22: another OS user binds the port named in the channel's file and
    waits for ``secret set``. The rogue is a separate process; when the tests run as root it
    runs as the OS user ``nobody`` (uid 65534; no throwaway account is created), else as this
    user. The lock is held (as by an instance that has not yet rewritten the file), so the
    client connects, greets, finds no proof of the secret and stops: the rogue receives the
    greetings (random nonces) and not one byte more."""
    config = tmp_path / "config"
    other = _as_another_user()
    python = other.pop("python") if other else sys.executable
    rogue = await asyncio.create_subprocess_exec(
        python,
        "-I",
        "-c",
        _ROGUE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={},
        **(other or {}),
    )
    assert rogue.stdin is not None and rogue.stdout is not None
    try:
        async with asyncio.timeout(30):
            port = int(await rogue.stdout.readline())
        lock = instance.InstanceLock.claim(config)
        assert lock is not None
        secret = secrets.token_urlsafe(32)
        _point_channel_at(config, port, secret)
        try:
            with pytest.raises(ipc.ImpostorError) as refused:
                request = {"op": "set", "name": "HF_TOKEN", "value": SECRET_VALUE}
                await ipc.request(config, "secret", request)
            with pytest.raises(ipc.ImpostorError):
                await ipc.request(config, "runtime", {"runtime": "T4 GPU"})
        finally:
            lock.release()
        rogue.stdin.close()
        async with asyncio.timeout(30):
            summary = json.loads(await rogue.stdout.read())
    finally:
        if rogue.returncode is None:
            rogue.kill()
        await rogue.wait()
    assert refused.value.message == (
        f"Something else is listening on colabtray's control port (127.0.0.1:{port}); "
        "nothing was sent (restart colabtray to get a channel of its own)."
    )
    assert summary["uid"] == (OTHER_USER if other else os.getuid())
    received = bytes.fromhex(summary["received"])
    assert summary["connections"] == 2
    assert SECRET_VALUE.encode() not in received and secret.encode() not in received
    lines = received.splitlines(keepends=True)
    assert len(lines) == 2 and all(_is_greeting(line) for line in lines)


def _challenge(nonce: bytes, proof: str) -> bytes:
    return _line({"v": 1, "nonce": nonce.hex(), "proof": proof})


def _forged(kind: str, secret: str, greeting: bytes) -> bytes:
    """A reply a server might make that is not the proof for this greeting. Some forge with
    the real secret, to show each part of the proof counts (a stranger has not even that)."""
    server_nonce = secrets.token_bytes(32)
    try:
        client_nonce = bytes.fromhex(json.loads(greeting)["hello"])
    except (ValueError, KeyError, TypeError):
        client_nonce = b""
    right = _hmac(secret, ipc.SERVER_PROVES, client_nonce, server_nonce)
    forgeries = {
        "random proof": lambda: _challenge(server_nonce, secrets.token_hex(32)),
        "wrong key": lambda: _challenge(
            server_nonce,
            _hmac(secrets.token_bytes(32), ipc.SERVER_PROVES, client_nonce, server_nonce),
        ),
        "empty key": lambda: _challenge(
            server_nonce, _hmac(b"", ipc.SERVER_PROVES, client_nonce, server_nonce)
        ),
        "the client's label": lambda: _challenge(
            server_nonce, _hmac(secret, ipc.CLIENT_PROVES, client_nonce, server_nonce)
        ),
        "swapped nonces": lambda: _challenge(
            server_nonce, _hmac(secret, ipc.SERVER_PROVES, server_nonce, client_nonce)
        ),
        "another greeting's": lambda: _challenge(
            server_nonce,
            _hmac(secret, ipc.SERVER_PROVES, secrets.token_bytes(32), server_nonce),
        ),
        "echo": lambda: _challenge(client_nonce, client_nonce.hex()),
        "upper-case proof": lambda: _challenge(server_nonce, right.upper()),
        "no nonce": lambda: _line({"v": 1, "proof": right}),
        "a reply instead": lambda: _line({"v": 1, "ok": True, "result": {"url": "evil"}}),
        "busy": lambda: _line({"v": 1, "ok": False, "error": ipc.BUSY}),
        "too long": lambda: b"x" * (ipc.MAX_LINE + 10) + b"\n",
        "nothing": lambda: b"",
    }
    return forgeries[kind]()


_server_replies = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b + b"\n"),
    _junk,
    st.fixed_dictionaries(
        {},
        optional={
            "v": st.just(1) | st.integers(-1, 3) | st.text(max_size=3),
            "nonce": _hex | st.text(alphabet="0123456789abcdefABCDEF \n", max_size=70),
            "proof": _hex | st.text(max_size=70) | st.integers(),
            "ok": st.booleans(),
            "result": st.just({"url": "evil"}),
        },
    ).map(_line),
    st.sampled_from(
        [
            "random proof",
            "wrong key",
            "empty key",
            "the client's label",
            "swapped nonces",
            "another greeting's",
            "echo",
            "upper-case proof",
            "no nonce",
            "a reply instead",
            "busy",
            "too long",
            "nothing",
        ]
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=_server_replies, pieces=st.integers(1, 3))
def test_no_answer_to_the_greeting_but_the_proof_gets_a_command(
    tmp_path_factory: pytest.TempPathFactory, reply: bytes | str, pieces: int
) -> None:
    """A server that answers the greeting with anything but the proof (random bytes, JSON,
    challenges with forged proofs, in one write or several) gets nothing after the greeting,
    and the client raises the one sentence (or says colabtray is busy), nothing else."""

    async def run() -> None:
        config = tmp_path_factory.mktemp("config")
        secret = secrets.token_urlsafe(32)

        async def answer(greeting: bytes) -> bytes:
            data = _forged(reply, secret, greeting) if isinstance(reply, str) else reply
            return data

        lock = instance.InstanceLock.claim(config)
        assert lock is not None
        try:
            async with _Rogue(answer, pieces) as rogue:
                _point_channel_at(config, rogue.port, secret)
                with pytest.raises(ipc.IpcError) as refused:
                    request = {"op": "set", "name": "HF_TOKEN", "value": SECRET_VALUE}
                    await ipc.request(config, "secret", request, answer_within=5)
                async with asyncio.timeout(10):
                    await rogue.done.wait()
        finally:
            lock.release()
        assert refused.value.message in (_impostor(rogue.port), ipc.BUSY)
        assert rogue.connections == 1 and _is_greeting(bytes(rogue.received))
        assert rogue.after_greeting == b""

    asyncio.run(run())


def test_the_channel_is_named_for_the_config_dir(tmp_path: Path) -> None:
    path = instance.socket_path(tmp_path / "config")
    assert path.name == f"{instance.channel_name(tmp_path / 'config')}.json"
