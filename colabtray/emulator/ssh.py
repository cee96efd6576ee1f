"""A runtime's ``/colab/ssh``: the SSH stream over a WebSocket, to Debian's OpenSSH ``sshd``.

Colab's runtimes take the client's public key in ``X-Colab-Ssh-Pubkey`` and let exactly that
key in as ``root``. Here each connection runs its own ``sshd -i`` (inetd mode: the SSH stream
on its stdin and stdout, no port), with the runtime's own host key (made once, when the
runtime's first SSH client comes, so it lasts as long as the runtime and differs from every
other runtime's) and an authorized-keys file holding only the key of that connection. After
the upgrade the WebSocket is a raw byte pipe: binary (or text) frames in go to sshd's stdin,
its stdout goes out as binary frames.

Statuses as Colab's: 400 no or unsupported key (``ssh-rsa`` always), 404 SSH off (the
emulator's ``--no-ssh``), 429 another SSH client is connected (one per runtime), 502 no sshd
(not installed, or the emulator does not run as root: sshd can only log in as the user running
it, and Colab's user is root). The proxy token is checked before this module is reached.

Everything lives under the runtime's private ``.jupyter/sshd`` folder, which every sshd's
command line names: stopping the runtime kills whatever is left of them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import logging
import os
import shutil
import signal
import struct
import subprocess
from pathlib import Path

from aiohttp import WSMsgType, web

from colabtray.emulator.state import Runtime

log = logging.getLogger("colabtray.emulator.ssh")

PUBKEY_HEADER = "X-Colab-Ssh-Pubkey"
KEY_TYPES = frozenset(
    {"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)
SSHD_PATHS = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd refuses to start without it
READ = 64 * 1024
CLOSE_GRACE = 3.0  # how long sshd gets to end by itself once the socket has closed
WATCH_EVERY = 0.5  # how often what runs below an sshd is noted

CONFIG = """\
# One runtime's sshd (inetd mode, started per connection by the colabtray emulator).
HostKey {host_key}
PidFile none
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
PrintMotd no
X11Forwarding no
AllowTcpForwarding yes
Subsystem sftp internal-sftp
"""


def find_sshd() -> str | None:
    for path in SSHD_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sshd")


def checked_key(line: str | None) -> tuple[str, str] | str:
    """The key's type and base64 blob, or the reason it is refused (the 400's body)."""
    if not line or not line.strip():
        return "missing pubkey"
    parts = line.split()
    if len(parts) < 2:
        return "malformed pubkey"
    kind, blob = parts[0], parts[1]
    if kind not in KEY_TYPES:
        return "unsupported key type"
    try:
        raw = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        return "malformed pubkey"
    if inner != kind:
        return "malformed pubkey"
    return kind, blob


class RuntimeSsh:
    """One runtime's SSH door: at most one client at a time."""

    def __init__(self, runtime: Runtime, *, enabled: bool) -> None:
        self._runtime = runtime
        self._enabled = enabled
        self._busy = False
        self._numbers = itertools.count(1)
        self._processes: set[asyncio.subprocess.Process] = set()
        self._said_why = False

    @property
    def _home(self) -> Path:
        return self._runtime.root_dir / ".jupyter" / "sshd"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._enabled:
            return web.Response(status=404, text="SSH is not enabled on this runtime\n")
        key = checked_key(request.headers.get(PUBKEY_HEADER))
        if isinstance(key, str):
            return web.Response(status=400, text=f"{key}\n")
        if self._busy:
            return web.Response(status=429, text="another SSH client is already connected\n")
        sshd = self._usable_sshd()
        if sshd is None:
            return web.Response(status=502, text="sshd unreachable\n")
        self._busy = True  # until this client has gone (_connect says when)
        return await self._connect(request, sshd, key)

    def _usable_sshd(self) -> str | None:
        """sshd's path, or None (and the reason logged once) when it cannot serve."""
        sshd = find_sshd()
        why = None
        if sshd is None:
            why = "there is no sshd; install it with: apt-get install openssh-server"
        elif os.geteuid() != 0:
            why = (
                "SSH needs the emulator to run as root: sshd can only log in as the user "
                "running it, and a runtime's SSH user is root"
            )
        if why is not None:
            if not self._said_why:
                log.warning("runtime %s: SSH refused (502): %s", self._runtime.endpoint, why)
                self._said_why = True
            return None
        return sshd

    def _prepare(self, key: tuple[str, str], authorized: Path) -> Path:
        """The runtime's sshd config (and host key, made on first use); writes just this
        connection's key to ``authorized``."""
        home = self._home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        host_key = home / "host_ed25519_key"
        if not host_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(host_key)],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        config = home / "sshd_config"
        if not config.exists():
            config.write_text(CONFIG.format(host_key=host_key))
        if not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        authorized.write_text(f"{key[0]} {key[1]}\n")
        authorized.chmod(0o600)
        return config

    async def _connect(
        self, request: web.Request, sshd: str, key: tuple[str, str]
    ) -> web.StreamResponse:
        authorized = self._home / f"authorized_keys.{next(self._numbers)}"
        try:
            config = await asyncio.to_thread(self._prepare, key, authorized)
            process = await asyncio.create_subprocess_exec(
                *(sshd, "-i", "-f", str(config), "-E", str(self._home / "sshd.log")),
                *("-o", f"AuthorizedKeysFile {authorized}"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=self._runtime.root_dir,
                start_new_session=True,
            )
        except BaseException as exc:
            self._busy = False
            authorized.unlink(missing_ok=True)
            if not isinstance(exc, OSError | ValueError | subprocess.CalledProcessError):
                raise
            log.warning("runtime %s: sshd did not start: %s", self._runtime.endpoint, exc)
            return web.Response(status=502, text="sshd unreachable\n")
        self._processes.add(process)
        started: set[Started] = set()
        watch = asyncio.create_task(_watch(process.pid, started))
        socket = web.WebSocketResponse(max_msg_size=0, compress=False, autoping=True)
        try:
            await socket.prepare(request)
            await _relay(socket, process)
        finally:
            # The client has gone: the next one may come at once, while this sshd ends.
            self._busy = False
            with contextlib.suppress(Exception):
                await socket.close()
            watch.cancel()
            await self._end(process, started)
            self._processes.discard(process)
            authorized.unlink(missing_ok=True)
        return socket

    @staticmethod
    async def _end(process: asyncio.subprocess.Process, started: set[Started]) -> None:
        """sshd sees end of input and gets a moment to end; then whatever it started is
        killed. (sshd leaves a command without a terminal running when its client goes, in a
        session of its own: such processes are known from having been seen below sshd.)"""
        started.update(_descendants(process.pid))
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await process.wait()
        except TimeoutError:
            _kill(process.pid)
        _kill_all([*started, *_descendants(process.pid)])
        await process.wait()

    def stop(self) -> None:
        """Kill every sshd of this runtime and all they started, now (the runtime is going)."""
        for process in list(self._processes):
            _kill_all(_descendants(process.pid))
            _kill(process.pid)


async def _watch(pid: int, started: set[Started]) -> None:
    """Note what runs below sshd every WATCH_EVERY seconds: the client may end the session
    (and sshd with it) before the socket closes, leaving orphans no longer below it."""
    while True:
        started.update(_descendants(pid))
        await asyncio.sleep(WATCH_EVERY)


Started = tuple[int, str]  # a pid and its start time: a pid reused since is not the same


def _descendants(pid: int) -> list[Started]:
    """The processes below ``pid`` (Linux ``/proc``; elsewhere none)."""
    children: dict[int, list[Started]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
                children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found: list[Started] = []
    pending = list(children.get(pid, ()))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child[0], ()))
    return found


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat``'s fields after the command name (state, ppid, …, starttime)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return fields if len(fields) > 19 else None


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _kill_all(processes: list[Started]) -> None:
    for pid, started in processes:
        fields = _stat(pid)
        if fields is not None and fields[19] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


async def _relay(socket: web.WebSocketResponse, process: asyncio.subprocess.Process) -> None:
    """Bytes both ways until either side ends."""
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def inward() -> None:
        async for message in socket:
            if message.type == WSMsgType.BINARY:
                stdin.write(message.data)
            elif message.type == WSMsgType.TEXT:
                stdin.write(message.data.encode())
            else:
                break
            await stdin.drain()

    async def outward() -> None:
        while piece := await stdout.read(READ):
            await socket.send_bytes(piece)

    tasks = {asyncio.create_task(inward()), asyncio.create_task(outward())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
