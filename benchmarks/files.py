"""``colabtray cp`` against the runtime's contents API used directly, and scp beside them.

    .venv/bin/python benchmarks/files.py [--mb 200] [--rounds 3] [--plain-http] [--split-cpus]

One emulator with one CPU runtime, its proxy speaking HTTPS as Colab's do (the emulator's
``--tls``; every client trusts its certificate), and one file of random bytes (200 MB by
default) on this machine and, the same bytes, on the runtime. Each round runs, in turn:

- *direct /files/*: this process streams ``GET /files/big.bin`` through the runtime's proxy
  (with ``X-Colab-Runtime-Proxy-Token``) into a local file: the least any download can do,
  and the reference of every ratio;
- *direct contents JSON*: ``GET /api/contents/big.bin?content=1&format=base64``, read whole,
  decoded and written: how Colab's own CLI downloads;
- *cp download*: ``colabtray cp CPU:big.bin LOCAL``, a process from start to exit (it asks
  colabtray for the runtime, streams /files/ into a temporary file, asks the runtime for the
  size and SHA-256, renames);
- *cp upload*: ``colabtray cp LOCAL CPU:up.bin`` likewise (the contents API's chunked save of
  4 MiB chunks to a temporary name, size and hash asked, renamed with PATCH over the previous
  round's file, which is moved aside and dropped);
- *direct chunked upload*: the same chunked save from this process, with no lookup, check or
  rename: the least an upload through the contents API can do;
- *scp* both ways, through the config ``colabtray ssh-config`` writes (a fresh ed25519 key
  in a HOME of the benchmark's own; each scp is one SSH connection through ``ssh-proxy``,
  which, with no app running, also makes a core to look the runtime up); where that cannot
  be, the rows say why not.

Throughput is the file's size over the median time of ``--rounds`` rounds. Also printed: the
fixed cost of one ``colabtray cp`` process (a 1-byte file), which even a 200 MB copy on a
fast link carries. Without a running app, as here, each cp also makes a core to look the
runtime up (one listing from the emulator).

As in bridge.py, the emulated runtime shares this machine's CPUs with the copies unless
``--split-cpus`` puts the emulator (and all it starts) on one half of them and this process
and the copies on the other, as a remote runtime would be. Nothing is judged: the figures
and the ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge import cpu_halves  # benchmarks/ is the script's folder, first on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MB = 1000 * 1000
CHUNK = 4 * 1024 * 1024
PROXY_TOKEN_HEADER = "X-Colab-Runtime-Proxy-Token"


def colabtray(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colabtray", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def checked(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, done.args[3:]))} failed: {done.stderr.strip()}")


class Direct:
    """The runtime's contents API from this process, as a plain client would use it."""

    def __init__(self, proxy_url: str, token: str, ca_file: str | None) -> None:
        import httpx2

        self.http = httpx2.Client(
            base_url=proxy_url,
            headers={PROXY_TOKEN_HEADER: token, "Accept-Encoding": "identity"},
            verify=ca_file or True,
            timeout=300,
        )

    def files(self, remote: str, local: Path) -> None:
        with self.http.stream("GET", f"/files/{remote}") as response, open(local, "wb") as out:
            response.raise_for_status()
            for piece in response.iter_bytes():
                out.write(piece)

    def contents_json(self, remote: str, local: Path) -> None:
        response = self.http.get(
            f"/api/contents/{remote}", params={"content": "1", "format": "base64"}
        )
        response.raise_for_status()
        local.write_bytes(base64.b64decode(response.json()["content"]))

    def chunked_upload(self, local: Path, remote: str) -> None:
        with open(local, "rb") as source:
            piece, number = source.read(CHUNK), 1
            while True:
                following = source.read(CHUNK)
                chunk = -1 if not following else number
                body = b'{"type": "file", "format": "base64", "chunk": %d, "content": "%s"}' % (
                    chunk,
                    base64.b64encode(piece),
                )
                response = self.http.put(
                    f"/api/contents/{remote}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                response.raise_for_status()
                if not following:
                    return
                piece, number = following, number + 1


def scp_setup(env: dict[str, str], work: Path) -> tuple[list[str], str] | str:
    """The scp command line up to its paths, and the runtime's SSH host; or why scp is out."""
    if shutil.which("scp") is None:
        return "no scp on this machine"
    written = colabtray(env, "ssh-config")
    if "invalid choice: 'ssh-config'" in written.stderr:
        return "this colabtray has no 'ssh-config' command yet"
    if written.returncode != 0:
        said = (written.stderr.strip().splitlines() or ["no reason given"])[-1]
        return f"'colabtray ssh-config' failed ({said})"
    included = re.search(r"^\s*Include\s+(\S+)", written.stdout + written.stderr, re.MULTILINE)
    if included is None:
        return "'colabtray ssh-config' printed no Include line to use"
    config = Path(os.path.expanduser(included.group(1).strip("\"'")))
    hosts = re.findall(r"^\s*Host\s+(colab-\S+)", config.read_text(), re.MULTILINE)
    if not hosts:
        return f"no colab-… Host in {config}"
    command = ["scp", "-q", "-F", str(config), "-o", "BatchMode=yes"]
    probe = subprocess.run(
        [*command, f"{hosts[0]}:/etc/hostname", str(work / "hostname")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        return f"scp through {config} failed: {probe.stderr.strip()[-200:]}"
    return command, hosts[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="the file's size in MB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the median is shown)")
    parser.add_argument("--plain-http", action="store_true", help="the runtime's proxy without TLS")
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="the emulated runtime on one half of the CPUs, the copies on the other",
    )
    args = parser.parse_args()

    from tests.fixtures.colab import cli_env, settings_for
    from tests.fixtures.emulator import start_emulator

    halves = cpu_halves() if args.split_cpus else None
    with (
        tempfile.TemporaryDirectory(prefix="colabtray-bench-files-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        # Jupyter sends what the contents API deletes to the trash: keep it in here.
        os.environ["XDG_DATA_HOME"] = str(work / "data")
        if halves:
            os.sched_setaffinity(0, halves[0])  # the emulator and what it starts inherit it
        tls = () if args.plain_http else ("--tls",)
        emulator = stack.enter_context(start_emulator("--idle-timeout", "3600", *tls))
        if halves:
            os.sched_setaffinity(0, halves[1])
            print(f"CPUs: the runtime's side {sorted(halves[0])}, the user's {sorted(halves[1])}")
        # A HOME of its own: ssh-config writes there, and finds the key made there.
        env = {**cli_env(emulator, work), "HOME": str(work / "home")}
        _ssh_key(work / "home" / ".ssh" / "id_ed25519")
        checked(colabtray(env, "new", "--cpu"))
        settings = settings_for(emulator, work)
        from colabtray.core.commands import carry_out

        runtime = asyncio.run(carry_out(settings, "runtime", {"runtime": "CPU"}))
        direct = Direct(
            runtime["proxy_url"], runtime["proxy_token"], emulator.env.get("COLABTRAY_CA_FILE")
        )
        big = work / "big.bin"
        with open(big, "wb") as out:
            for _ in range(args.mb):
                out.write(os.urandom(MB))
        size = big.stat().st_size
        checked(colabtray(env, "cp", str(big), "CPU:big.bin"))  # the file to download
        tiny = work / "tiny.bin"
        tiny.write_bytes(b"x")
        scp = scp_setup(env, work)

        def cp(*paths: str) -> Callable[[], None]:
            return lambda: checked(colabtray(env, "cp", *paths))

        runs: dict[str, Callable[[], None]] = {
            "direct /files/ stream": lambda: direct.files("content/big.bin", work / "a.bin"),
            "direct contents JSON (base64)": lambda: direct.contents_json(
                "content/big.bin", work / "b.bin"
            ),
            "colabtray cp, download": cp("CPU:big.bin", str(work / "c.bin")),
            "colabtray cp, upload": cp(str(big), "CPU:up.bin"),
            "direct chunked upload (no checks)": lambda: direct.chunked_upload(
                big, "content/direct.bin"
            ),
        }
        if not isinstance(scp, str):
            command, host = scp
            # The emulated runtime is this machine: its /content is the runtime's folder.
            (state,) = emulator.state()["runtimes"]
            content = f"{state['root_dir']}/content"
            runs["scp, download"] = lambda: checked_scp(
                [*command, f"{host}:{content}/big.bin", str(work / "d.bin")], env
            )
            runs["scp, upload"] = lambda: checked_scp(
                [*command, str(big), f"{host}:{content}/scp.bin"], env
            )
        times: dict[str, list[float]] = {name: [] for name in runs}
        fixed: list[float] = []
        for round_number in range(args.rounds):
            print(f"round {round_number + 1} of {args.rounds}…", file=sys.stderr)
            for name, run in runs.items():
                times[name].append(timed(run))
            fixed.append(timed(cp(str(tiny), "CPU:tiny.bin")))
        for name in ("a.bin", "b.bin", "c.bin", *(("d.bin",) if "scp, download" in runs else ())):
            assert (work / name).stat().st_size == size, name
        _print(times, size, args, fixed, scp)
    return 0


def _ssh_key(path: Path) -> None:
    path.parent.mkdir(parents=True, mode=0o700)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def checked_scp(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"scp failed: {done.stderr.strip()}")


def _print(
    times: dict[str, list[float]],
    size: int,
    args: argparse.Namespace,
    fixed: list[float],
    scp: tuple[list[str], str] | str,
) -> None:
    proxy = "plain HTTP" if args.plain_http else "HTTPS"
    print(
        f"file: {size / MB:.0f} MB of random bytes; runtime proxy: {proxy}; "
        f"median of {args.rounds} rounds"
    )
    reference = size / statistics.median(times["direct /files/ stream"])
    print(f"{'':36} {'MB/s':>8} {'seconds':>8} {'vs direct /files/':>18}")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rate = size / median
        print(f"{name:36} {rate / MB:8.1f} {median:8.2f} {rate / reference:18.2f}")
    if isinstance(scp, str):
        print(f"{'scp, download and upload':36} skipped: {scp}")
    start = statistics.median(fixed)
    print(f"one colabtray cp process for a 1-byte file: {start:.2f} s; less that cost:")
    for name, floor in (
        ("colabtray cp, download", "direct /files/ stream"),
        ("colabtray cp, upload", "direct chunked upload (no checks)"),
    ):
        rate = size / max(statistics.median(times[name]) - start, 1e-3)
        ratio = rate / (size / statistics.median(times[floor]))
        print(f"  {name}: {rate / MB:.1f} MB/s, {ratio:.2f} x {floor}")


if __name__ == "__main__":
    sys.exit(main())
