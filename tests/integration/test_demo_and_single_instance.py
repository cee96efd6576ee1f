"""``colabtray --demo --headless`` and ``colabtray --headless`` as real processes: the demo's
emulator is a child that goes away with the app, the demo keeps out of the user's files, and
a second instance hands over to the first and exits 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from colabtray.system import instance, ipc
from tests.fixtures.emulator import pid_alive
from tests.fixtures.environment import isolated_env
from tests.fixtures.waiting import wait_for


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose colabtray directories are all under tmp_path."""
    return isolated_env(tmp_path, PYTHONUNBUFFERED="1")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    with log.open("w") as stderr:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "colabtray", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def ask(config_dir: Path, command: str) -> dict:
    return asyncio.run(ipc.request(config_dir, command, wait_for_server=60))


def test_demo_headless_runs_the_emulator_as_a_child_and_stops_it(
    home: dict[str, str], processes: list[subprocess.Popen], tmp_path: Path
) -> None:
    demo_config = tmp_path / "config" / "demo"
    app = start(home, "--demo", "--headless", log=tmp_path / "demo.log")
    processes.append(app)
    reply = ask(demo_config, "show")
    assert reply["shown"] == "nothing"
    wait_for(lambda: "ada@example.com" in ask(demo_config, "show")["status"], 30)
    (emulator,) = children(app.pid)
    assert "colabtray.emulator" in Path(f"/proc/{emulator}/cmdline").read_text()

    second = subprocess.run(
        [sys.executable, "-m", "colabtray", "--demo", "--headless"],
        env=home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert "colabtray is already running." in second.stderr
    assert len(children(app.pid)) == 1, "the second demo started an emulator"

    app.send_signal(signal.SIGTERM)
    assert app.wait(60) == 0, (tmp_path / "demo.log").read_text()
    wait_for(lambda: not pid_alive(emulator), 10)
    assert "Traceback" not in (tmp_path / "demo.log").read_text()
    # The demo's files are its own; nothing of the user's config was written.
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == ["demo"]
    assert not instance.socket_path(demo_config).exists()


def test_a_second_instance_hands_over_and_exits(
    home: dict[str, str], processes: list[subprocess.Popen], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    first = start(home, "--headless", log=tmp_path / "first.log")
    processes.append(first)
    assert ask(config, "show")["status"] == "colabtray: signed out"

    second = subprocess.run(
        [sys.executable, "-m", "colabtray", "--headless"],
        env=home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert second.stderr.strip().endswith("colabtray is already running.")
    assert first.poll() is None

    # The demo is another instance (its own config dir): it does not hand over to this one.
    assert instance.channel_name(config) != instance.channel_name(config / "demo")

    first.send_signal(signal.SIGINT)
    assert first.wait(30) == 0
    third = start(home, "--headless", log=tmp_path / "third.log")  # the lock was released
    processes.append(third)
    assert ask(config, "show")["shown"] == "nothing"
    third.send_signal(signal.SIGTERM)
    assert third.wait(30) == 0
