"""The tray app against a bare PySide6 tray, in one run: startup, memory, idle CPU.

    .venv/bin/python benchmarks/tray.py [--runs 5] [--idle 60] [--ready-token] [--python PY]

Both are started the same way (``python …``, same interpreter and environment) on a private
X server (Xvfb) with a real tray host (trayer), and both print the same line once their
icon is embedded in the tray. The app runs against the local emulator, which has three
runtimes (T4, CPU, A100), as ``colabtray --demo`` would; the emulator runs outside both
measured processes. The app is signed in as a user is: through the OAuth flow, its refresh
token in gnome-keyring's Secret Service on a private D-Bus session (both processes see that
bus); ``--ready-token`` measures it with ``COLABTRAY_ACCESS_TOKEN`` instead, which needs no
keyring. Measured:

- startup: process start → icon embedded, over ``--runs`` alternating starts; the floor is
  judged on the medians, the minimums are printed too (the least disturbed starts, on a
  machine that also does other work);
- memory: resident set size after the idle period (no editor has used a bridge URL yet, so
  the bridge's ports listen but its HTTP side is not loaded); then, for information, once an
  editor has made one request through a runtime's URL;
- idle CPU: user + system CPU time over ``--idle`` seconds, starting 5 s after the icon is
  up, as a share of one core.

It prints both, the ratios, and whether the floors hold (startup ≤ 1.5 x baseline, memory
≤ baseline + 40 MB, idle CPU ≤ 0.5 % of a core); exit status 1 if one does not.
``python benchmarks/tray.py baseline`` runs the bare tray alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' headless desktop, from this checkout
from tests.fixtures.headless_desktop import (  # noqa: E402
    start_keyring,
    start_screen,
    start_session_bus,
    stop_all,
)

MARK = "colabtray: tray icon shown"  # colabtray.ui.app.STARTUP_MARK
TICKS = os.sysconf("SC_CLK_TCK")
SETTLE = 5.0  # seconds after the icon is up before idle CPU is counted
MB = 1024 * 1024


# ---- the baseline: a bare tray icon ------------------------------------------------------


def baseline() -> int:
    """QApplication + QSystemTrayIcon with a menu and a pixmap icon (no SVG), nothing else."""
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon, QPixmap
    from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

    app = QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    pixmap = QPixmap(str(REPO / "resources" / "icons" / "png" / "colabtray-22.png"))
    icon = QSystemTrayIcon(QIcon(pixmap))
    menu = QMenu()
    menu.addAction("Quit", app.quit)
    icon.setContextMenu(menu)
    icon.show()
    timer = QTimer()

    def embedded() -> None:  # the same check and poll period as colabtray.ui.app
        if icon.geometry().width() > 0:
            timer.stop()
            print(MARK, file=sys.stderr, flush=True)

    timer.timeout.connect(embedded)
    timer.start(5)
    return app.exec()  # SIGTERM's default action ends it (Qt's loop never runs Python's handler)


# ---- the desktop and the emulator --------------------------------------------------------


class Desktop:
    """Xvfb on a free display, and trayer as its system tray."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        self.xvfb, display = start_screen(env)  # XEmbed, for both, the same way: no bus
        self.env = dict(env, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        self.trayer = subprocess.Popen(
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
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # trayer claims the tray selection

    def stop(self) -> None:
        stop_all([self.xvfb, self.trayer])


class EmulatorProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "colabtray.emulator", "--port", "0", "--auto-approve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.exports: dict[str, str] = {}
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if line == "# colabtray emulator ready":
                break
            name, _, value = line.removeprefix("export ").partition("=")
            (self.exports[name],) = shlex.split(value)
        else:
            raise SystemExit("the emulator did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class SecretService:
    """A private session bus with gnome-keyring's Secret Service on it, unlocked with a
    throwaway password, as the tests have it."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        self.bus, address = start_session_bus(env)
        self.env = dict(env, DBUS_SESSION_BUS_ADDRESS=address, XDG_DATA_HOME=str(home / "data"))
        self.daemon = start_keyring(self.env)

    def stop(self) -> None:
        stop_all([self.bus, self.daemon])


def sign_in(env: dict[str, str]) -> None:
    """``colabtray signin --no-browser``, with this process as the browser (the emulator
    approves at once and redirects to the app's loopback receiver)."""
    import httpx2

    process = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "signin", "--no-browser"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("http"):
            httpx2.get(line.strip(), follow_redirects=True, timeout=30)
            break
    said = process.stdout.read()
    if process.wait(60) != 0 or "system keyring" not in said:
        raise SystemExit(f"signing in through the keyring failed: {said.strip()!r}")


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Started:
    process: subprocess.Popen
    seconds: float  # process start → icon embedded


def start(command: list[str], env: dict[str, str], timeout: float = 30.0) -> Started:
    began = time.monotonic()
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    os.set_blocking(process.stderr.fileno(), True)
    said: list[str] = []
    while True:
        line = process.stderr.readline()
        said = [*said[-20:], line]
        if MARK in line:
            seconds = time.monotonic() - began
            break
        if not line or time.monotonic() - began > timeout:
            process.kill()
            print("".join(said), file=sys.stderr)
            raise SystemExit(f"{command}: no tray icon ({process.wait()})")
    # Keep draining stderr so that a chatty process never blocks on a full pipe.
    subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)
    return Started(process, seconds)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def rss_with_an_editor(pid: int, env: dict[str, str]) -> int:
    """The app's RSS once an editor has used a runtime's bridge URL (which loads the bridge's
    HTTP side; until then only its ports listen)."""
    listed = subprocess.run(
        [sys.executable, "-m", "colabtray", "status", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    runtimes = json.loads(listed.stdout)["runtimes"]
    url = next(r["url"] for r in runtimes if r.get("url"))
    address, _, token = url.removeprefix("http://").partition("/?token=")
    host, _, port = address.partition(":")
    editor = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        editor.request("GET", "/api/status", headers={"Authorization": f"token {token}"})
        editor.getresponse().read()
    finally:
        editor.close()
    time.sleep(SETTLE)
    return rss_bytes(pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["compare", "baseline"], default="compare")
    parser.add_argument("--runs", type=int, default=9, help="startups of each (median)")
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds measured")
    parser.add_argument(
        "--ready-token",
        action="store_true",
        help="run the app with COLABTRAY_ACCESS_TOKEN instead of signed in through the keyring",
    )
    parser.add_argument(
        "--python",
        help="interpreter for the app and the baseline, e.g. of a venv with only "
        "`pip install .` in it, as users get it (the test venv's extra packages, such as "
        "tornado, change what the app's libraries import); default: this one",
    )
    args = parser.parse_args()
    if args.mode == "baseline":
        return baseline()
    tools = ("Xvfb", "trayer") if args.ready_token else ("Xvfb", "trayer", "gnome-keyring-daemon")
    for tool in tools:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (scripts/setup.sh --system installs it)")

    desktop = Desktop()
    home = Path(tempfile.mkdtemp(prefix="colabtray-bench-"))
    runtime_dir = home / "run"
    runtime_dir.mkdir(mode=0o700)
    env = dict(desktop.env, XDG_RUNTIME_DIR=str(runtime_dir), JUPYTER_PLATFORM_DIRS="1")
    keyring = None if args.ready_token else SecretService(env, home)
    if keyring is not None:
        env = keyring.env
    emulator = EmulatorProcess(env)
    try:
        app_env = dict(env, COLABTRAY_STARTUP_MARK="1")
        app_env.update({k: v for k, v in emulator.exports.items() if k.startswith("COLABTRAY_")})
        app_env.pop("COLABTRAY_EMULATOR_URL", None)
        app_env.update(
            COLABTRAY_CONFIG_DIR=str(home / "config"),
            COLABTRAY_STATE_DIR=str(home / "state"),
            COLABTRAY_LOG_DIR=str(home / "log"),
        )
        for kind in (["--gpu", "T4"], ["--cpu"], ["--gpu", "A100"]):
            subprocess.run(
                [sys.executable, "-m", "colabtray", "new", *kind],
                env=app_env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        if keyring is not None:
            del app_env["COLABTRAY_ACCESS_TOKEN"]
            sign_in(app_env)
        python = args.python or sys.executable
        app_cmd = [python, "-m", "colabtray"]
        base_cmd = [python, str(Path(__file__).resolve()), "baseline"]

        print(f"startup: {args.runs} alternating starts of each…", flush=True)
        app_times, base_times = [], []
        for _ in range(args.runs):
            for command, env_, times in (
                (base_cmd, env, base_times),
                (app_cmd, app_env, app_times),
            ):
                started = start(command, env_)
                times.append(started.seconds)
                stop(started.process)
                time.sleep(0.5)

        print(f"memory and idle CPU: both running for {SETTLE + args.idle:.0f} s…", flush=True)
        base = start(base_cmd, env)
        app = start(app_cmd, app_env)
        time.sleep(SETTLE)
        before = {p.pid: cpu_seconds(p.pid) for p in (base.process, app.process)}
        began = time.monotonic()
        time.sleep(args.idle)
        elapsed = time.monotonic() - began
        cpu = {
            p.pid: (cpu_seconds(p.pid) - before[p.pid]) / elapsed
            for p in (base.process, app.process)
        }
        rss = {p.pid: rss_bytes(p.pid) for p in (base.process, app.process)}
        editor_rss = rss_with_an_editor(app.process.pid, app_env)
        for started in (app, base):
            stop(started.process)
    finally:
        emulator.stop()
        if keyring is not None:
            keyring.stop()
        desktop.stop()
        shutil.rmtree(home, ignore_errors=True)

    b_start, a_start = statistics.median(base_times), statistics.median(app_times)
    b_rss, a_rss = rss[base.process.pid], rss[app.process.pid]
    b_cpu, a_cpu = cpu[base.process.pid], cpu[app.process.pid]
    checks = [
        ("startup ≤ 1.5 x baseline", a_start <= 1.5 * b_start),
        ("memory ≤ baseline + 40 MB", a_rss <= b_rss + 40 * MB),
        ("idle CPU ≤ 0.5 % of a core", a_cpu <= 0.005),
    ]
    print()
    how = "a ready token" if args.ready_token else "signed in, refresh token in the keyring"
    print(f"colabtray ran with {how}")
    print(f"{'':24}{'baseline':>12}{'colabtray':>12}{'ratio':>9}")
    b_min, a_min = min(base_times), min(app_times)
    print(f"{'startup (median, s)':24}{b_start:>12.3f}{a_start:>12.3f}{a_start / b_start:>8.2f}x")
    print(f"{'startup (minimum, s)':24}{b_min:>12.3f}{a_min:>12.3f}{a_min / b_min:>8.2f}x")
    print(
        f"{'RSS after idle (MB)':24}{b_rss / MB:>12.1f}{a_rss / MB:>12.1f}{a_rss / b_rss:>8.2f}x"
        f"  (+{(a_rss - b_rss) / MB:.1f} MB)"
    )
    print(f"{'idle CPU (% of a core)':24}{b_cpu * 100:>12.3f}{a_cpu * 100:>12.3f}")
    print(
        f"{'RSS, editor connected':24}{'':>12}{editor_rss / MB:>12.1f}{'':>9}"
        f"  (+{(editor_rss - b_rss) / MB:.1f} MB: the bridge serving, no floor)"
    )
    print(
        f"startups (s): baseline {[round(t, 3) for t in base_times]}, "
        f"colabtray {[round(t, 3) for t in app_times]}"
    )
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
