"""Starting, watching and reclaiming runtimes: one Jupyter server plus one proxy each.

Jupyter runs in its own process group (``start_new_session``) so it can be stopped with
everything it started; kernels live in sessions of their own (jupyter_client's choice), so
after the group is gone any process still naming the runtime's directory is killed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp

from colabtray.emulator import procs
from colabtray.emulator.jupyter_runtime import PARENT_ENV, TOKEN_ENV
from colabtray.emulator.proxy import RuntimeProxy
from colabtray.emulator.state import EmulatorState, Runtime

log = logging.getLogger("colabtray.emulator.runtimes")

START_TIMEOUT = 60.0
# Put first on the runtimes' PYTHONPATH: the stand-in for Colab's kernel-side google.colab.
KERNEL_PATH = Path(__file__).parent / "kernel_path"
STOP_GRACE = 5.0


class RuntimeStartError(RuntimeError):
    """Jupyter did not come up."""


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Handle:
    """What it takes to stop one runtime."""

    def __init__(self, proxy: RuntimeProxy) -> None:
        self.proxy = proxy
        self.process: asyncio.subprocess.Process | None = None


class RuntimeManager:
    """Owns every Jupyter child process and proxy listener of the emulator."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._handles: dict[str, _Handle] = {}
        self._session: aiohttp.ClientSession | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self, runtime: Runtime) -> None:
        """Bring up the proxy and Jupyter; returns when Jupyter answers ``/api/status``.

        Raises RuntimeStartError (after cleaning up) if Jupyter does not answer in time.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        runtime.root_dir.mkdir(parents=True)
        (runtime.root_dir / "content").mkdir()
        jupyter_token = secrets.token_urlsafe(32)
        proxy = RuntimeProxy(self._state, runtime, jupyter_token)
        handle = _Handle(proxy)
        self._handles[runtime.endpoint] = handle
        started = time.monotonic()
        try:
            runtime.proxy_url = await proxy.start(self._state.config.host)
            for _attempt in range(3):
                if self._closed:
                    raise RuntimeStartError("the emulator is stopping")
                runtime.jupyter_port = _free_port()
                handle.process = await self._spawn(runtime, jupyter_token)
                runtime.jupyter_pid = handle.process.pid
                if await self._wait_ready(runtime, handle.process, jupyter_token):
                    break
                await self._terminate(handle.process)
            else:
                raise RuntimeStartError("Jupyter did not start")
        except BaseException:
            await self.stop(runtime)
            raise
        log.info(
            "runtime %s up in %.1f s (jupyter pid %s)",
            runtime.endpoint,
            time.monotonic() - started,
            runtime.jupyter_pid,
        )

    async def _spawn(self, runtime: Runtime, token: str) -> asyncio.subprocess.Process:
        private = runtime.root_dir / ".jupyter"
        private.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                TOKEN_ENV: token,
                PARENT_ENV: str(os.getpid()),
                "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
                "JUPYTER_CONFIG_DIR": str(private / "config"),
                "JUPYTER_DATA_DIR": str(private / "data"),
                "JUPYTER_PLATFORM_DIRS": "1",
                "IPYTHONDIR": str(private / "ipython"),
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(KERNEL_PATH), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
        )
        # A fresh file in our own temp dir: opening it cannot stall the loop.
        with open(private / "server.log", "ab") as log_file:  # noqa: ASYNC230
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "colabtray.emulator.jupyter_runtime",
                "--port",
                str(runtime.jupyter_port),
                "--root-dir",
                str(runtime.root_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                cwd=runtime.root_dir,
                env=env,
                start_new_session=True,
            )

    async def _wait_ready(
        self, runtime: Runtime, process: asyncio.subprocess.Process, token: str
    ) -> bool:
        assert self._session is not None
        url = f"http://127.0.0.1:{runtime.jupyter_port}/api/status"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.returncode is not None:
                log.warning("jupyter of %s exited with %s", runtime.endpoint, process.returncode)
                return False
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with self._session.get(
                    url, headers={"Authorization": f"token {token}"}
                ) as response:
                    if response.status == 200:
                        return True
            await asyncio.sleep(0.05)
        log.warning("jupyter of %s did not answer within %.0f s", runtime.endpoint, START_TIMEOUT)
        return False

    def process_alive(self, endpoint: str) -> bool:
        handle = self._handles.get(endpoint)
        return bool(handle and handle.process and handle.process.returncode is None)

    async def stop(self, runtime: Runtime) -> None:
        """Close the proxy, stop Jupyter and its kernels, remove the runtime's files."""
        handle = self._handles.pop(runtime.endpoint, None)
        if handle is not None:
            await handle.proxy.stop()
            if handle.process is not None:
                await self._terminate(handle.process)
        stragglers = procs.pids_mentioning(str(runtime.root_dir))
        if stragglers:
            procs.kill_all(stragglers)
        await asyncio.to_thread(shutil.rmtree, runtime.root_dir, True)

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        procs.kill_group(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_GRACE):
                await process.wait()
        except TimeoutError:
            procs.kill_group(process.pid, signal.SIGKILL)
            await process.wait()
        # Whatever the server left in its group (it should have left nothing).
        procs.kill_group(process.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Stop every runtime (in parallel) and release the HTTP session."""
        self._closed = True
        runtimes = list(self._state.runtimes.values())
        self._state.runtimes.clear()
        await asyncio.gather(*(self.stop(r) for r in runtimes), return_exceptions=True)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def kill_all_sync(self) -> None:
        """Last-resort cleanup for atexit: no event loop, no waiting beyond a few seconds."""
        processes = [h.process for h in self._handles.values() if h.process is not None]
        for process in processes:
            procs.kill_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(procs.alive(p.pid) for p in processes):
            time.sleep(0.05)
        for process in processes:
            procs.kill_group(process.pid, signal.SIGKILL)
        procs.kill_all(procs.pids_mentioning(str(self._state.temp_dir)))

    def release_soon(self, runtime: Runtime, reason: str) -> None:
        """Forget a runtime now; stop it in the background (the listing drops it at once)."""
        if self._state.runtimes.get(runtime.endpoint) is runtime:
            self._state.settle(runtime.email)
            del self._state.runtimes[runtime.endpoint]
        self._state.consents.forget_runtime(runtime.endpoint)
        log.info("runtime %s released (%s)", runtime.endpoint, reason)
        task = asyncio.create_task(self.stop(runtime))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def release(self, runtime: Runtime, reason: str) -> None:
        """Forget a runtime and wait until it is stopped."""
        self.release_soon(runtime, reason)
        if self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)

    async def reclaim_forever(self) -> None:
        """Reclaim runtimes idle for ``--idle-timeout`` and runtimes whose Jupyter died."""
        idle_timeout = self._state.config.idle_timeout
        interval = max(0.1, min(idle_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for runtime in list(self._state.runtimes.values()):
                if not runtime.ready:
                    continue
                if now - runtime.last_keepalive >= idle_timeout:
                    self.release_soon(runtime, "idle")
                elif not self.process_alive(runtime.endpoint):
                    self.release_soon(runtime, "jupyter exited")
