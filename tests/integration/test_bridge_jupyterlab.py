"""JupyterLab on the bridge: a local JupyterLab started with the copied gateway command, and
the runtime's own JupyterLab page through the bridge in a real (headless) Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.async_api import Browser, expect

from tests.fixtures.bridge import Bridged
from tests.fixtures.jupyter_client import KernelSession, split_url

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn_lab(command: str, home: Path) -> tuple[subprocess.Popen[bytes], Any, str]:
    """Start the copied ``VAR=value jupyter lab …`` line plus test-only options, as a POSIX
    shell would (the assignments go in jupyter's environment): (process, log, URL)."""
    words = shlex.split(command)
    assignments = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    assert words[:2] == ["jupyter", "lab"], command
    port, token = free_port(), secrets.token_urlsafe(16)
    home.mkdir()
    env = dict(
        os.environ,
        **assignments,
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        IPYTHONDIR=str(home / "ipython"),
    )
    log = open(home / "lab.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            *words[2:],
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={home}",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    return process, log, f"http://127.0.0.1:{port}/?token={token}"


def stop_lab(process: subprocess.Popen[bytes], log: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    log.close()


@contextlib.asynccontextmanager
async def jupyter_lab(command: str, home: Path) -> AsyncIterator[tuple[str, int]]:
    """Run the copied command until the block ends; yields the local JupyterLab's URL and
    process id."""
    process, log, url = await asyncio.to_thread(spawn_lab, command, home)
    base, token = split_url(url)
    try:
        async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=5) as http:

            async def ready() -> bool:
                # Probe the port first: httpx2 leaks the socket of a refused connection.
                port = int(base.rsplit(":", 1)[1])
                try:
                    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    return False
                writer.close()
                await writer.wait_closed()
                with contextlib.suppress(httpx2.HTTPError):
                    return (await http.get("/api/status")).status_code == 200
                return False

            async with asyncio.timeout(60):
                while not await ready():
                    assert process.poll() is None, f"jupyter lab exited; see {home}/lab.log"
                    await asyncio.sleep(0.2)
        yield url, process.pid
    finally:
        await asyncio.to_thread(stop_lab, process, log)


async def test_jupyterlab_started_with_the_gateway_command_runs_a_cell(
    bridged: Bridged, tmp_path: Path
) -> None:
    endpoint, bridge_url = await bridged.runtime()
    command = bridged.bridge.gateway_command(endpoint)
    assert command is not None
    base, token = split_url(bridge_url)
    # The secret is in jupyter's environment, never in its arguments (which anyone can read).
    assert command.startswith(f"JUPYTER_GATEWAY_AUTH_TOKEN={token} jupyter lab ")
    assert token not in command.partition(" ")[2]
    async with (
        jupyter_lab(command, tmp_path / "lab") as (lab_url, pid),
        KernelSession(lab_url) as kernel,
        httpx2.AsyncClient(base_url=base, params={"token": token}) as bridge_http,
    ):
        output, reply = await kernel.execute("import os; print(6*7, os.getcwd())")
        assert reply["status"] == "ok", output
        assert output.startswith("42 ")
        # What every local user sees of the running JupyterLab holds no secret.
        argv = await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)
        assert token.encode() not in argv
        # The kernel runs on the runtime, not in this machine's JupyterLab.
        remote = (await bridge_http.get("/api/kernels")).json()
        assert kernel.kernel_id in [k["id"] for k in remote]


async def test_jupyterlab_page_through_the_bridge_runs_a_cell_in_chromium(
    bridged: Bridged, browser: Browser, tmp_path: Path
) -> None:
    _endpoint, url = await bridged.runtime()
    base, token = split_url(url)
    page = await browser.new_page()
    try:
        await page.goto(f"{base}/lab?token={token}", wait_until="domcontentloaded")
        # The launcher's "Python 3" notebook card.
        card = page.locator('.jp-LauncherCard[data-category="Notebook"]').first
        await expect(card).to_be_visible(timeout=60_000)
        await card.click()
        cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
        await expect(cell).to_be_visible(timeout=30_000)
        # A cell run before the kernel is connected is dropped: wait for the kernel first.
        await expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
        await cell.click()
        await page.keyboard.type("print(6*7)")
        await page.keyboard.press("Shift+Enter")
        output = page.locator(".jp-OutputArea-output").first
        await expect(output).to_have_text("42", timeout=60_000)
    except BaseException:
        await page.screenshot(path=tmp_path / "jupyterlab.png")
        raise
    finally:
        await page.close()
