"""The bundled build: packaging/colabtray.spec built with PyInstaller, and the result run as a
person without Python would run it: ``--version``, ``--demo --headless`` (which starts the
bundled emulator and talks to it), the bundled emulator's runtimes (real Jupyter servers and
kernels, started as ``<bundle> -m MODULE``), and nothing left running afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from colabtray import __version__
from colabtray.system import ipc
from tests.fixtures.emulator import READY_LINE, pids_mentioning
from tests.fixtures.environment import isolated_env
from tests.fixtures.jupyter_client import KernelSession
from tests.fixtures.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "colabtray.spec"

# The build alone takes about 70 s on an idle 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class Bundle:
    def __init__(self, directory: Path, seconds: float) -> None:
        self.directory = directory
        self.executable = directory / "colabtray"
        self.build_seconds = seconds

    def size_mb(self) -> float:
        files = (p for p in self.directory.rglob("*") if p.is_file() and not p.is_symlink())
        total = sum(p.stat().st_size for p in files)
        return total / 1e6

    def leftovers(self) -> list[int]:
        return pids_mentioning(str(self.directory))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    if shutil.which("pyinstaller", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("PyInstaller is missing: scripts/setup.sh installs the 'bundle' extra")
    work = tmp_path_factory.mktemp("pyinstaller")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            str(SPEC),
        ],
        capture_output=True,
        text=True,
        timeout=800,
        cwd=work,
        check=False,
    )
    assert result.returncode == 0, f"PyInstaller failed:\n{result.stderr[-5000:]}"
    built = Bundle(work / "dist" / "colabtray", time.monotonic() - started)
    print(f"bundle: built in {built.build_seconds:.0f} s, {built.size_mb():.0f} MB")
    yield built
    assert not built.leftovers(), "a process of the bundle is still running"
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a person's session, with colabtray's directories in tmp_path."""
    # PYTHONPATH: nothing of the developer's environment leaks into the bundle.
    return isolated_env(tmp_path, PYTHONPATH="")


def stop(process: subprocess.Popen[str], bundle: Bundle) -> int:
    """SIGTERM, a bounded wait, then make sure nothing of the bundle is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    wait_for(lambda: not bundle.leftovers(), 15)
    return code


def test_the_bundle_answers_version_and_help(bundle: Bundle) -> None:
    def run(*args: str) -> str:
        result = subprocess.run(
            [str(bundle.executable), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert run("--version").strip() == f"colabtray {__version__}"
    usage = run("--help")
    for word in ("signin", "status", "new", "remove", "emulator", "--demo", "--headless"):
        assert word in usage


def test_demo_headless_runs_the_bundled_emulator_and_talks_to_it(
    bundle: Bundle, app_env: dict[str, str], tmp_path: Path
) -> None:
    with (tmp_path / "app.err").open("w") as err:
        process = subprocess.Popen(
            [str(bundle.executable), "--demo", "--headless"],
            env=app_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        demo_config = tmp_path / "config" / "demo"

        def status() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"exited with {process.returncode}: {errors()}")
            try:
                reply = asyncio.run(ipc.request(demo_config, "show", wait_for_server=5.0))
            except ipc.IpcError:
                return None
            text = str(reply.get("status", ""))
            return text if "Compute units" in text else None  # an answer of the emulator

        def errors() -> str:
            return (tmp_path / "app.err").read_text()[-3000:]

        text = wait_for(status, 90, interval=0.5)
        assert "ada@example.com" in text  # the emulator's default account
        assert (tmp_path / "state" / "demo" / "emulator.log").stat().st_size > 0
    finally:
        code = stop(process, bundle)
    assert code == 0, errors()


def test_the_tray_app_starts_from_the_bundle(
    bundle: Bundle, app_env: dict[str, str], tmp_path: Path
) -> None:
    """``colabtray --demo`` with its face: Qt, its plugins, the icons and the notifier load."""
    assert os.environ.get("DISPLAY"), "needs the X screen of scripts/test.sh"
    with (tmp_path / "app.err").open("w") as err:
        process = subprocess.Popen(
            [str(bundle.executable), "--demo"],
            env=app_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:

        def menu() -> dict[str, object] | None:
            if process.poll() is not None:
                text = (tmp_path / "app.err").read_text()[-3000:]
                raise AssertionError(f"exited with {process.returncode}: {text}")
            try:
                reply = asyncio.run(
                    ipc.request(tmp_path / "config" / "demo", "menu", wait_for_server=5.0)
                )
            except ipc.IpcError:
                return None
            return reply if "ada@example.com" in str(reply.get("tooltip")) else None

        described = wait_for(menu, 90, interval=0.5)
        assert described["items"], described
    finally:
        code = stop(process, bundle)
    assert code == 0, (tmp_path / "app.err").read_text()[-3000:]


def test_the_bundled_emulator_starts_real_runtimes(
    bundle: Bundle, app_env: dict[str, str], tmp_path: Path
) -> None:
    with (tmp_path / "emulator.err").open("w") as err:
        emulator = subprocess.Popen(
            [str(bundle.executable), "emulator", "--port", "0"],
            env=app_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        assert emulator.stdout is not None
        env = dict(app_env)
        deadline = time.monotonic() + 60
        for line in emulator.stdout:  # bounded: the emulator prints a few lines, then READY
            assert time.monotonic() < deadline, "the bundled emulator is slow to start"
            if line.rstrip("\n") == READY_LINE:
                break
            name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
            (env[name],) = shlex.split(value)
        assert "COLABTRAY_ACCESS_TOKEN" in env, (tmp_path / "emulator.err").read_text()

        def cli(*args: str) -> str:
            result = subprocess.run(
                [str(bundle.executable), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        runtime = json.loads(cli("new", "--cpu", "--json"))
        listed = json.loads(cli("status", "--json"))
        assert [r["endpoint"] for r in listed["runtimes"]] == [runtime["endpoint"]]
        state = httpx2.get(f"{env['COLABTRAY_EMULATOR_URL']}/_emulator/state", timeout=10).json()
        (jupyter_pid,) = [r["jupyter_pid"] for r in state["runtimes"]]
        cmdline = Path(f"/proc/{jupyter_pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:3] == [
            str(bundle.executable).encode(),
            b"-m",
            b"colabtray.emulator.jupyter_runtime",
        ]
        assert "Disconnected" in cli("remove", runtime["endpoint"])
    finally:
        code = stop(emulator, bundle)
        if emulator.stdout is not None:
            emulator.stdout.close()
    assert code == 0, (tmp_path / "emulator.err").read_text()[-3000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_bundled_jupyter_runs_a_bundled_kernel(
    bundle: Bundle, app_env: dict[str, str], tmp_path: Path
) -> None:
    """What an emulated runtime is, started as the emulator starts it, running code."""
    port, token = free_port(), "bundle-test-token"
    kernel_path = bundle.directory / "_internal" / "colabtray" / "emulator" / "kernel_path"
    env = dict(
        app_env,
        COLABTRAY_EMULATOR_JUPYTER_TOKEN=token,
        PYTHONPATH=str(kernel_path),
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    root = tmp_path / "root"
    root.mkdir()
    with (tmp_path / "jupyter.log").open("w") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped in finally
            [
                str(bundle.executable),
                "-m",
                "colabtray.emulator.jupyter_runtime",
                "--port",
                str(port),
                "--root-dir",
                str(root),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
    try:
        async with httpx2.AsyncClient(timeout=5) as http:
            for _ in range(240):
                assert process.poll() is None, (tmp_path / "jupyter.log").read_text()[-3000:]
                with contextlib.suppress(httpx2.HTTPError):
                    if (
                        await http.get(
                            f"http://127.0.0.1:{port}/api/status", params={"token": token}
                        )
                    ).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("the bundled Jupyter did not answer within 60 s")
        async with KernelSession(f"http://127.0.0.1:{port}/?token={token}") as kernel:
            output, reply = await kernel.execute(
                "import sys, google.colab; print(6 * 7, sys.executable, google.colab.__name__)"
            )
        assert reply["status"] == "ok", output
        assert output.split() == ["42", str(bundle.executable), "google.colab"]
    finally:
        code = await asyncio.to_thread(stop, process, bundle)
    assert code == 0, (tmp_path / "jupyter.log").read_text()[-3000:]
