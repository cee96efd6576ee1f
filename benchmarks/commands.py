"""How fast ``colabtray`` commands answer, beside a bare Python start, in one run.

    .venv/bin/python benchmarks/commands.py [--runs 7]

Each command is a process from start to exit, started as a person starts it: the
``colabtray`` script installed beside this interpreter (else ``python -m colabtray``). The
baseline is ``python -c pass`` with the same interpreter and environment, so the ratios say
what colabtray adds to starting Python. Measured, over ``--runs`` rounds that take each in
turn:

- ``colabtray --version``;
- ``colabtray status`` and ``colabtray url CPU``, answered by a running app: a
  ``colabtray --headless`` against the local emulator, with one CPU runtime, signed in with the
  emulator's ready token (the app is started once and keeps running; the emulator and the app
  run outside the measured processes).

It prints the median and the minimum of each, the ratios of the medians to the baseline's, and
whether the floors hold (``--version`` ≤ 4 x, a command the running app answers ≤ 6 x); exit
status 1 if one does not.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' emulator fixture, from this checkout
from tests.fixtures.colab import cli_env, headless_app  # noqa: E402
from tests.fixtures.emulator import start_emulator  # noqa: E402

FLOORS = {"--version": 4.0, "status": 6.0, "url CPU": 6.0}


def colabtray() -> list[str]:
    """The installed ``colabtray`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("colabtray")
    return [str(script)] if script.exists() else [sys.executable, "-m", "colabtray"]


def seconds(command: list[str], env: dict[str, str]) -> float:
    """One run of ``command``, start to exit; it must succeed."""
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-500:]}")
    return took


def wait_for_app(env: dict[str, str], within: float = 60.0) -> None:
    """Until the running app answers ``status`` with the runtime in it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done = subprocess.run([*colabtray(), "url", "CPU"], env=env, capture_output=True)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit("the headless app did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds (medians are judged)")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="ct-bench-") as tmp,
        start_emulator("--idle-timeout", "3600") as emulator,
    ):
        work = Path(tmp)
        run_dir = work / "run"  # short: the control socket's path must fit AF_UNIX's limit
        run_dir.mkdir(mode=0o700)
        env = {**cli_env(emulator, work), "XDG_RUNTIME_DIR": str(run_dir)}
        subprocess.run([*colabtray(), "new", "--cpu"], env=env, check=True, capture_output=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--version": [*colabtray(), "--version"],
            "status": [*colabtray(), "status"],
            "url CPU": [*colabtray(), "url", "CPU"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        with headless_app(env):
            wait_for_app(env)
            print(f"{args.runs} rounds of {len(commands)} commands…", flush=True)
            for _ in range(args.runs):
                for name, command in commands.items():
                    times[name].append(seconds(command, env))

    base = statistics.median(times["python -c pass"])
    print()
    print(f"{'':18}{'median (ms)':>13}{'min (ms)':>10}{'ratio':>9}{'floor':>8}")
    checks = []
    for name, taken in times.items():
        median = statistics.median(taken)
        floor = FLOORS.get(name)
        print(
            f"{name:18}{median * 1000:>13.1f}{min(taken) * 1000:>10.1f}"
            f"{median / base:>8.2f}x{f'{floor:.0f}x' if floor else '':>8}"
        )
        if floor:
            checks.append((f"{name} ≤ {floor:.0f} x python -c pass", median <= floor * base))
    print(f"(commands: {' '.join(colabtray())}; `status` and `url` answered by a --headless app)")
    for check, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {check}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
