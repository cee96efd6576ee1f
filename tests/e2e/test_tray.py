"""The tray for real: ``colabtray`` as a process against the emulator, its icon embedded in a
real tray host (trayer) on the test's X display, notifications on a real dunst, and clicks
made with xdotool as a user would make them.

The control channel's ``menu`` command tells where the icon and the menu entries are and
what they say; everything else goes through the X server, the emulator's admin API and
dunst. Screenshots of the open menu land in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from colabtray.system import instance, ipc
from colabtray.ui.app import STARTUP_MARK
from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.desktop import Dunst
from tests.fixtures.emulator import Emulator, pid_alive, start_emulator
from tests.fixtures.environment import isolated_env
from tests.fixtures.jupyter_client import KernelSession
from tests.fixtures.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
POLL = 1.0  # the app's poll interval in these tests (seconds)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DISPLAY") or not shutil.which("trayer") or not shutil.which("xdotool"),
        reason="needs an X display with trayer and xdotool (run through scripts/test.sh)",
    ),
]


def xdotool(*args: str) -> str:
    done = subprocess.run(
        ["xdotool", *args], capture_output=True, text=True, timeout=20, check=True
    )
    return done.stdout.strip()


def screenshot(name: str, crop: list[int] | None = None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=30)
    if crop:
        x, y, w, h = crop
        # Cropped to the menu and icon, with a desktop colour instead of Xvfb's black root.
        corners = [f"+{cx}+{cy}" for cx in (0, w - 1) for cy in (0, h - 1)]
        fill = [arg for corner in corners for arg in ("-floodfill", corner, "black")]
        subprocess.run(
            [
                "convert",
                str(path),
                "-crop",
                f"{w}x{h}+{x}+{y}",
                "+repage",
                "-fill",
                "#4d5b6a",
                *fill,
                str(path),
            ],
            check=True,
            timeout=30,
        )
    return path


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """Runtimes over HTTPS, as Colab's and the demo's are (the app trusts them by ca_file)."""
    with start_emulator("--tls", "--idle-timeout", "600") as emu:
        yield emu


@pytest.fixture
def tray_host() -> Iterator[subprocess.Popen]:
    """trayer at the bottom right of the screen, as a panel's system tray."""
    process = subprocess.Popen(
        [
            "trayer",
            "--edge",
            "bottom",
            "--align",
            "right",
            "--widthtype",
            "request",
            "--height",
            "32",
            "--transparent",
            "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def panel_up() -> bool:
        tree = subprocess.run(
            ["xwininfo", "-root", "-tree"], capture_output=True, text=True, check=False
        )
        return '"panel"' in tree.stdout

    try:
        wait_for(panel_up, 15)
        yield process
    finally:
        process.terminate()
        process.wait(10)


class App:
    """``python -m colabtray`` with the emulator's settings and its own directories."""

    def __init__(self, emulator: Emulator, tmp_path: Path, **settings: str) -> None:
        self.env = cli_env(emulator, tmp_path)
        self.env.update(
            COLABTRAY_LOG_DIR=str(tmp_path / "log"),
            COLABTRAY_POLL_INTERVAL=str(POLL),
            COLABTRAY_RETRY_ATTEMPTS="1",
            COLABTRAY_STARTUP_MARK="1",
            QT_QPA_PLATFORM="xcb",
        )
        self.env.update(settings)
        self.config_dir = Path(self.env["COLABTRAY_CONFIG_DIR"])
        self.stderr_path = tmp_path / "app.stderr"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "colabtray"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        wait_for(lambda: STARTUP_MARK in self.stderr() or self.process.poll() is not None, 30)
        assert self.process.poll() is None, f"the app exited: {self.stderr()}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def ask(self, command: str) -> dict[str, Any]:
        return asyncio.run(ipc.request(self.config_dir, command, wait_for_server=10))

    def menu(self) -> dict[str, Any]:
        return self.ask("menu")

    def wait_menu(self, condition: Callable[[dict[str, Any]], object], seconds: float = 20):
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [self.menu()]
            return bool(condition(found[0]))

        wait_for(check, seconds, interval=0.1)
        return found[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(f"the app ignored SIGTERM: {self.stderr()}") from None
        self._stderr.close()
        assert self.process.returncode == 0, f"exit {self.process.returncode}: {self.stderr()}"
        assert "Traceback" not in self.stderr(), self.stderr()


@pytest.fixture
def start_app(tray_host, tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def start(emulator: Emulator, **settings: str) -> App:
        app = App(emulator, tmp_path, **settings)
        apps.append(app)
        return app

    yield start
    for app in apps:
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait(10)


def item(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["name"] == name)


def runtime_items(menu: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in menu["items"] if i["name"].startswith("runtime:")]


def kinds(menu: dict[str, Any]) -> list[str]:
    """The runtime entries without their state ("in use", "idle"…), sorted."""
    return sorted(i["text"].split(" — ")[0] for i in runtime_items(menu))


def hover(at: list[int]) -> None:
    """Move there as a hand does, in steps: QMenu ignores a pointer that has not moved."""
    for dx in (-12, -4, 0):
        xdotool("mousemove", str(at[0] + dx), str(at[1]))
        time.sleep(0.05)
    time.sleep(0.15)


def click(at: list[int], button: int = 1) -> None:
    hover(at)
    xdotool("click", str(button))


def open_menu(app: App) -> dict[str, Any]:
    x, y, w, h = app.wait_menu(lambda m: m["icon"] and m["icon"][2] > 0)["icon"]
    time.sleep(0.5)  # docs/testing-notes.md §2: give the tray host a moment after embedding
    click([x + w // 2, y + h // 2], button=3)
    shown: list[Any] = [None]

    def settled(menu: dict[str, Any]) -> bool:  # shown, and where it was a moment ago
        ready = menu["visible"] and all("at" in i for i in menu["items"])
        still = ready and menu["rect"] == shown[0]
        shown[0] = menu["rect"]
        return still

    return app.wait_menu(settled)


def open_submenu(app: App, prefix: str) -> dict[str, Any]:
    """Hover the runtime entry starting with ``prefix`` until its submenu is open."""
    for _ in range(3):
        entry = next(i for i in runtime_items(app.menu()) if i["text"].startswith(prefix))
        hover(entry["at"])
        try:
            return app.wait_menu(
                lambda m: any(
                    i["text"].startswith(prefix) and i.get("open") and "rect" in i
                    for i in runtime_items(m)
                ),
                3,
            )
        except AssertionError:
            continue
    raise AssertionError(f"the {prefix} submenu did not open")


async def print_6_times_7(url: str) -> str:
    async with KernelSession(url) as kernel:
        output, _ = await kernel.execute("print(6*7)")
    return output


def dunst_summaries(dunst: Dunst) -> list[str]:
    """Every notification dunst got so far (closing those still shown)."""
    dunst._ctl("close-all")
    return [entry["summary"]["data"] for entry in dunst.history()]


def test_the_tray_end_to_end(emulator: Emulator, start_app, dunst: Dunst, tmp_path: Path):
    created = run_cli(cli_env(emulator, tmp_path), "new", "--gpu", "A100")
    assert created.returncode == 0, created.stderr
    app = start_app(emulator)

    # A second colabtray hands over to this one (its menu opens) and exits 0.
    second = subprocess.run(
        [sys.executable, "-m", "colabtray"],
        env=app.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert "already running; its menu is open" in second.stderr
    app.wait_menu(lambda m: m["visible"])
    xdotool("key", "Escape")
    app.wait_menu(lambda m: not m["visible"])

    # Right click on the embedded icon opens the menu; runtime entries lead with the GPU.
    menu = open_menu(app)
    assert kinds(menu) == ["A100 GPU · Standard"]
    assert menu["state"] == "running" and "1 runtime running: A100 GPU" in menu["tooltip"]
    units = item(menu["items"], "compute-units")["text"]
    burning = r"Compute units: [\d.]+ · 13\.08/h · about \d+ h( \d+ min)? left"  # A100's rate
    assert re.fullmatch(burning, units), units

    # "New runtime…" opens the dialog; T4 is the default; Return creates it on the emulator.
    click(item(menu["items"], "new-runtime")["at"])
    app.wait_menu(lambda m: m["dialog"], 10)
    dialog = xdotool("search", "--sync", "--onlyvisible", "--name", "New Colab runtime")
    app.wait_menu(lambda m: m["dialog"] and m["dialog"]["choice"] == "T4 GPU")
    xdotool("windowfocus", "--sync", dialog.split()[0], "key", "Return")
    wait_for(lambda: any(r["accelerator"] == "T4" for r in emulator.state()["runtimes"]), 60)
    menu = app.wait_menu(lambda m: len(runtime_items(m)) == 2, 10)
    assert kinds(menu) == ["A100 GPU · Standard", "T4 GPU · Standard"]
    assert "2 runtimes running" in menu["tooltip"]

    # Its submenu: live RAM / disk / GPU figures; a screenshot of the open menu for the docs.
    open_menu(app)
    open_submenu(app, "T4")
    menu = app.wait_menu(
        lambda m: any(
            i["text"].startswith("T4") and i.get("open") and "GPU RAM" in str(i["submenu"])
            for i in runtime_items(m)
        )
    )
    t4 = next(i for i in runtime_items(menu) if i["text"].startswith("T4"))
    figures = [s["text"] for s in t4["submenu"] if s["name"] == "resources"]
    assert figures[0].startswith("System RAM: ") and figures[1].endswith("/ 15.00 GB")
    copy = item(t4["submenu"], "copy-url")
    assert copy["enabled"] and copy["text"] == "Copy connection URL"  # the bridge serves it
    bridged = app.ask("urls")["runtimes"][t4["name"].removeprefix("runtime:")]["url"]
    assert bridged.startswith("http://127.0.0.1:")
    time.sleep(0.3)
    boxes = [menu["rect"], t4["rect"], menu["icon"]]  # menu, submenu, icon: x, y, w, h
    left = min(b[0] for b in boxes) - 8
    top = min(b[1] for b in boxes) - 8
    right = max(b[0] + b[2] for b in boxes) + 8
    bottom = max(b[1] + b[3] for b in boxes) + 4
    screenshot("tray-menu-full.png")
    shot = screenshot("tray-menu.png", [left, top, right - left, bottom - top])
    assert shot.stat().st_size > 1000
    # The copied URL runs a cell (the bridge to the runtime's HTTPS proxy).
    assert asyncio.run(print_6_times_7(bridged)) == "42\n"

    # "Disconnect runtime…" asks first; the confirmation's Disconnect removes it. Where it is
    # is read again: the submenu grew when its figures came in and moved to stay on screen
    # (it was left reaching below the screen's edge, Disconnect out of reach).
    menu = app.wait_menu(
        lambda m: any(i["text"].startswith("T4") and i.get("open") for i in runtime_items(m))
    )
    t4 = next(i for i in runtime_items(menu) if i["text"].startswith("T4"))
    disconnect = item(t4["submenu"], "disconnect")
    click(disconnect["at"])
    box = xdotool("search", "--sync", "--onlyvisible", "--name", "Disconnect runtime")
    xdotool("windowfocus", "--sync", box.split()[0], "key", "alt+d")
    wait_for(lambda: all(r["accelerator"] != "T4" for r in emulator.state()["runtimes"]), 30)
    menu = app.wait_menu(lambda m: len(runtime_items(m)) == 1, 10)
    assert runtime_items(menu)[0]["text"].startswith("A100 GPU")

    wait_for(lambda: "T4 GPU is ready" in dunst_summaries(dunst), 10)
    assert "T4 GPU was disconnected" not in dunst_summaries(dunst), "the user's own removal"
    app.stop()
    assert not instance.socket_path(app.config_dir).exists()


def more_listings(emulator: Emulator, count: int = 2) -> None:
    """Until the app has listed the runtimes ``count`` more times, as the emulator's request
    log shows: "more polls changed nothing" is then said after polls that did happen."""
    mark = emulator.last_seq()

    def listed() -> bool:
        log = emulator.requests(since=mark, host="colab")
        return sum(1 for e in log if e["path"] == "/tun/m/assignments") >= count

    wait_for(listed, 20 * POLL, interval=POLL / 4)


def test_reclaimed_behind_its_back_and_an_outage(
    emulator: Emulator, start_app, dunst: Dunst, tmp_path: Path
):
    created = run_cli(cli_env(emulator, tmp_path), "new", "--gpu", "T4")
    assert created.returncode == 0, created.stderr
    endpoint = emulator.state()["runtimes"][0]["endpoint"]
    app = start_app(emulator)
    app.wait_menu(lambda m: runtime_items(m))

    # Reclaimed by Colab: gone from the menu within one poll, and one notification.
    emulator.admin("POST", f"runtimes/{endpoint}/reclaim")
    reclaimed = time.monotonic()
    app.wait_menu(lambda m: not runtime_items(m), POLL + 3)
    assert time.monotonic() - reclaimed <= POLL + 3
    wait_for(lambda: "T4 GPU was disconnected" in dunst_summaries(dunst), 10)
    more_listings(emulator)
    assert dunst_summaries(dunst).count("T4 GPU was disconnected") == 1

    # Colab down: the unreachable state, one notice, no crash; back by itself.
    emulator.admin("POST", "faults", {"fault_rate": 1.0})
    down = app.wait_menu(lambda m: m["state"] == "unreachable", 5 * POLL + 10)
    assert "Colab could not be reached" in down["tooltip"]
    assert item(down["items"], "problem")["text"].startswith("Colab could not be reached")
    more_listings(emulator)  # failed ones
    assert pid_alive(app.process.pid)
    assert dunst_summaries(dunst).count("Colab is unreachable") == 1
    emulator.admin("POST", "faults", {"fault_rate": 0.0})
    app.wait_menu(lambda m: m["state"] == "idle", 5 * POLL + 10)
    more_listings(emulator)
    summaries = dunst_summaries(dunst)
    assert summaries.count("Colab is unreachable") == 1
    assert summaries.count("Colab is reachable again") == 1
    app.stop()


def test_the_demo_quits_from_its_menu_and_leaves_nothing(tray_host, tmp_path: Path):
    """``colabtray --demo``, the README's first command: Quit in its menu stops everything."""
    env = isolated_env(tmp_path, COLABTRAY_STARTUP_MARK="1", QT_QPA_PLATFORM="xcb")
    log = tmp_path / "demo.stderr"
    with log.open("w") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "colabtray", "--demo"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        config = tmp_path / "config" / "demo"
        menu = wait_for(
            lambda: (
                (m := asyncio.run(ipc.request(config, "menu", wait_for_server=30)))
                and m["tooltip"].startswith("colabtray: ada@example.com")
                and m
            ),
            60,
        )
        emulators = [
            pid
            for pid in pids_of_children(demo.pid)
            if "colabtray.emulator" in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert len(emulators) == 1
        x, y, w, h = menu["icon"]
        time.sleep(0.5)
        click([x + w // 2, y + h // 2], button=3)
        shown = wait_for(
            lambda: (
                (m := asyncio.run(ipc.request(config, "menu")))
                and m["visible"]
                and "at" in item(m["items"], "quit")
                and m
            ),
            20,
        )
        click(item(shown["items"], "quit")["at"])
        assert demo.wait(60) == 0, log.read_text()
        wait_for(lambda: not pid_alive(emulators[0]), 10)
        assert "Traceback" not in log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)


def pids_of_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found
