"""``colabtray cp`` as a person uses it: real processes against the emulator, whose runtimes'
files are a real Jupyter server's contents API (the runtime's disk is its ``root_dir``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.fixtures.colab import (
    cli_env,
    content_dir,
    headless_app,
    idle_runtime_in_app,
    new_runtime,
    run_cli,
)
from tests.fixtures.emulator import Emulator
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

MB = 1000 * 1000
MIB = 1024 * 1024
BIG = 200 * MB
# The cp process's peak memory for a 200 MB file: far below the file, whatever its size.
MEMORY_BOUND = 100 * MIB


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A 200 MB file of random bytes (written once for the module) and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "weights.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(BIG // MB):
            piece = os.urandom(MB)
            out.write(piece)
            digest.update(piece)
    yield path, digest.hexdigest()
    path.unlink()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while piece := source.read(MIB):
            digest.update(piece)
    return digest.hexdigest()


def start_cp(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "colabtray", "cp", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# Runs a command and prints its peak memory: the cp process's own, as its parent sees it.
MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(done.returncode)
"""


def run_measured(env: dict[str, str], *args: str, timeout: float = 300) -> tuple[int, str, int]:
    """``colabtray ARGS``: its exit status, stderr and peak memory (max RSS, bytes), read by a
    small parent with ``getrusage(RUSAGE_CHILDREN)``. Not by this process: on Linux a child
    starts its max RSS at its parent's RSS when it execs, and pytest holds far more than cp."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, sys.executable, "-m", "colabtray", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stderr, int(result.stdout) * 1024


def place(source: Path, target: Path) -> None:
    """Put a file on the runtime's disk, as a notebook would have written it."""
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copyfile(source, target)


def parts_under(*folders: Path) -> list[Path]:
    """Temporary files of cp's left anywhere under ``folders``."""
    return [p for folder in folders if folder.exists() for p in folder.rglob("*colabtray-part*")]


@contextlib.contextmanager
def maybe_app(env: dict[str, str], through_app: bool) -> Iterator[None]:
    """``colabtray --headless`` running (and answering) for the block, or nothing."""
    if not through_app:
        yield
        return
    with headless_app(env):
        wait_for(lambda: run_cli(env, "status").returncode == 0, 60, interval=0.5)
        yield


@pytest.mark.timeout(400)
@pytest.mark.parametrize("through_app", [False, True], ids=["alone", "through-the-running-app"])
def test_a_200_mb_file_both_ways_in_bounded_memory(
    emulator: Emulator,
    headless_env: dict[str, str],
    big_file: tuple[Path, str],
    tmp_path: Path,
    through_app: bool,
) -> None:
    env = headless_env
    source, digest = big_file
    with maybe_app(env, through_app):
        runtime = new_runtime(env)
        content = content_dir(emulator, runtime["endpoint"])
        (content / "data").mkdir()

        status, err, peak = run_measured(env, "cp", str(source), "CPU:data/weights.bin")
        assert (status, err) == (0, "")
        assert sha256(content / "data" / "weights.bin") == digest
        assert peak < MEMORY_BOUND, f"upload peaked at {peak / MIB:.0f} MiB"

        back = tmp_path / "back.bin"
        status, err, peak = run_measured(env, "cp", "CPU:data/weights.bin", str(back))
        assert (status, err) == (0, "")
        assert sha256(back) == digest
        assert peak < MEMORY_BOUND, f"download peaked at {peak / MIB:.0f} MiB"

        # Again over the files now there: each is replaced whole.
        assert run_cli(env, "cp", str(source), "CPU:/content/data/").returncode == 0
        assert run_cli(env, "cp", "CPU:data/weights.bin", str(tmp_path)).returncode == 0
    assert sha256(content / "data" / "weights.bin") == digest
    assert sha256(tmp_path / "weights.bin") == digest
    visible = [p.name for p in (content / "data").iterdir() if not p.name.startswith(".")]
    assert visible == ["weights.bin"]  # (Jupyter keeps its .ipynb_checkpoints beside it)
    assert not parts_under(tmp_path, content)
    assert back.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_tree_both_ways_with_r(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    runtime = new_runtime(env)
    content = content_dir(emulator, runtime["endpoint"])
    tree = tmp_path / "project"
    files = {
        "train.py": b"print('training')\n",
        "data/x.csv": b"a,b\n1,2\n",
        "data/raw/blob.bin": os.urandom(5 * MIB + 3),  # more than one chunk
        "data/raw/empty.txt": b"",
    }
    for relative, data in files.items():
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_bytes(data)
    (tree / "logs").mkdir()  # an empty folder comes along too

    without_r = run_cli(env, "cp", str(tree), "CPU:")
    assert without_r.returncode == 1
    assert without_r.stderr == f"colabtray: {tree} is a folder; copy folders with -r.\n"

    up = run_cli(env, "cp", "-r", str(tree), "CPU:")  # into /content, as cp -r would
    assert (up.returncode, up.stderr) == (0, "")
    for relative, data in files.items():
        assert (content / "project" / relative).read_bytes() == data
    assert (content / "project" / "logs").is_dir()

    down = run_cli(env, "cp", "-r", "CPU:project", str(tmp_path / "copy"))  # a new folder
    assert (down.returncode, down.stderr) == (0, "")
    for relative, data in files.items():
        assert (tmp_path / "copy" / relative).read_bytes() == data
    assert (tmp_path / "copy" / "logs").is_dir()
    assert not parts_under(tmp_path, content)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("direction", "through_app"),
    [("upload", True), ("download", False)],
    ids=["upload-through-the-running-app", "download-alone"],
)
def test_a_copy_cut_off_by_a_reclaimed_runtime_leaves_nothing(
    emulator: Emulator,
    headless_env: dict[str, str],
    big_file: tuple[Path, str],
    tmp_path: Path,
    direction: str,
    through_app: bool,
) -> None:
    """The runtime is reclaimed while cp is mid-way (held still with SIGSTOP once its
    temporary file has bytes in it, so "mid-way" is certain, then let go)."""
    env = headless_env
    source, _digest = big_file
    with maybe_app(env, through_app):
        runtime = new_runtime(env)
        content = content_dir(emulator, runtime["endpoint"])
        local = tmp_path / "here"
        local.mkdir()
        if direction == "upload":
            cp = start_cp(env, str(source), "CPU:weights.bin")
            watched, dest_shown = content, "weights.bin"
        else:
            place(source, content / "weights.bin")
            cp = start_cp(env, "CPU:weights.bin", str(local / "weights.bin"))
            watched, dest_shown = local, str(local / "weights.bin")
        try:
            wait_for(lambda: any(p.stat().st_size for p in parts_under(watched)), 60, 0.005)
            cp.send_signal(signal.SIGSTOP)
            emulator.admin("POST", f"runtimes/{runtime['endpoint']}/reclaim")
        finally:
            cp.send_signal(signal.SIGCONT)
        _out, err = cp.communicate(timeout=60)
    assert cp.returncode == 1
    assert err == (
        f"colabtray: CPU was disconnected during the copy; nothing was written to {dest_shown}.\n"
    )
    assert list(local.iterdir()) == []
    assert not content.exists()  # the runtime's disk went with it


@pytest.mark.timeout(300)
@pytest.mark.parametrize("direction", ["upload", "download"])
def test_ctrl_c_mid_copy_leaves_no_partial_file_on_either_side(
    emulator: Emulator, big_file: tuple[Path, str], tmp_path: Path, direction: str
) -> None:
    env = cli_env(emulator, tmp_path)
    source, digest = big_file
    runtime = new_runtime(env)
    content = content_dir(emulator, runtime["endpoint"])
    local = tmp_path / "here"
    local.mkdir()
    (content / "notes.txt").write_text("mine\n")
    if direction == "upload":
        cp = start_cp(env, str(source), "CPU:weights.bin")
        watched = content
    else:
        place(source, content / "weights.bin")
        cp = start_cp(env, "CPU:weights.bin", str(local))
        watched = local
    wait_for(lambda: any(p.stat().st_size for p in parts_under(watched)), 60, 0.005)
    cp.send_signal(signal.SIGINT)
    _out, err = cp.communicate(timeout=60)
    assert (cp.returncode, err) == (130, "colabtray: cancelled.\n")
    assert list(local.iterdir()) == []
    on_runtime = sorted(p.name for p in content.iterdir() if not p.name.startswith("."))
    expected = ["notes.txt"] if direction == "upload" else ["notes.txt", "weights.bin"]
    assert on_runtime == expected
    if direction == "download":
        assert sha256(content / "weights.bin") == digest
    # Jupyter sends what the contents API deletes to the trash: only an empty file went there.
    trash = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "Trash"
    assert all(p.stat().st_size == 0 for p in parts_under(trash / "files"))


def test_what_cannot_be_copied_is_one_sentence(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    new_runtime(env)
    (tmp_path / "x.csv").write_text("a,b\n")
    here, missing = str(tmp_path / "x.csv"), str(tmp_path / "nope.csv")
    neither = (
        "cp copies between this machine and a runtime, but neither side names one: write one "
        'side as NAME:PATH, e.g. "T4 GPU:data/x.csv".'
    )
    cases = [
        (("CPU:data/missing.csv", str(tmp_path)), 1, "There is no data/missing.csv on CPU."),
        ((missing, "CPU:"), 1, f"There is no {missing} on this machine."),
        ((here, "K80 GPU:x.csv"), 1, "No runtime named 'K80 GPU' (runtimes: CPU)."),
        ((here, "CPU:no/such/folder/"), 1, "There is no folder no/such/folder on CPU."),
        ((here, str(tmp_path / "y.csv")), 2, neither),
    ]
    for args, status, sentence in cases:
        result = run_cli(env, "cp", *args)
        assert (result.returncode, result.stderr) == (status, f"colabtray: {sentence}\n"), args
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".csv") == ["x.csv"]


def test_progress_on_a_terminal(emulator: Emulator, tmp_path: Path) -> None:
    """On a terminal: the file, the share done, the rate and the time left, on one line."""
    env = cli_env(emulator, tmp_path)
    new_runtime(env)
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(20 * MB))
    shell = pexpect.spawn(
        sys.executable,
        ["-m", "colabtray", "cp", str(source), "CPU:model.bin"],
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(24, 250),
    )
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0, shell.before
    frames = [f.strip() for f in shell.before.replace("\x1b[K", "").split("\r") if f.strip()]
    last = frames[-1]
    assert last.startswith(f"{source}  100%  20.0 MB of 20.0 MB  "), last
    assert " MB/s  " in last and last.endswith(" left")


def test_copying_counts_as_use_for_keep_alive(
    emulator: Emulator, headless_env: dict[str, str], tmp_path: Path
) -> None:
    """An idle runtime (keep-alive has stopped pinging it and asks about it) is pinged again
    once cp uses it: the running app is told."""
    with idle_runtime_in_app(headless_env, tmp_path) as endpoint:
        mark = emulator.last_seq()
        (tmp_path / "x.csv").write_text("a,b\n")
        copied = run_cli(headless_env, "cp", str(tmp_path / "x.csv"), "CPU:")
        assert (copied.returncode, copied.stderr) == (0, "")
        ping = f"/tun/m/{endpoint}/keep-alive/"
        wait_for(lambda: any(r["path"] == ping for r in emulator.requests(since=mark)), 15)


def test_a_folder_with_a_link_to_itself_stops_in_one_sentence(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Jupyter follows links, so a stock runtime lists ``loop/self/self/…`` without end (Linux
    gives up at 40 levels): cp stops at its bound, quickly, before writing anything."""
    env = cli_env(emulator, tmp_path)
    runtime = new_runtime(env)
    content = content_dir(emulator, runtime["endpoint"])
    (content / "loop").mkdir()
    (content / "loop" / "a.txt").write_text("a\n")
    (content / "loop" / "self").symlink_to(".", target_is_directory=True)
    dest = tmp_path / "here"
    dest.mkdir()
    started = time.monotonic()
    result = run_cli(env, "cp", "-r", "CPU:loop", str(dest))
    assert time.monotonic() - started < 30
    assert (result.returncode, result.stderr) == (
        1,
        "colabtray: loop on CPU has folders more than 32 deep under loop/self (a link to a "
        f"folder it is in?); nothing was written to {dest}.\n",
    )
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("link", ["folder", "folder/sub"])
def test_no_copy_goes_outside_through_a_link_on_this_machine(
    emulator: Emulator, tmp_path: Path, link: str
) -> None:
    """DEST/folder, or a folder in it, is already a link to elsewhere: cp -r will not write
    through it (it says which) and writes nothing at all."""
    env = cli_env(emulator, tmp_path)
    runtime = new_runtime(env)
    content = content_dir(emulator, runtime["endpoint"])
    (content / "folder" / "sub").mkdir(parents=True)
    (content / "folder" / "y.txt").write_text("y\n")
    (content / "folder" / "sub" / "x.txt").write_text("x\n")
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    (dest / "folder").parent.mkdir()
    elsewhere.mkdir()
    if link == "folder/sub":
        (dest / "folder").mkdir()
    (dest / link).symlink_to(elsewhere, target_is_directory=True)
    result = run_cli(env, "cp", "-r", "CPU:folder", str(dest))
    assert (result.returncode, result.stderr) == (
        1,
        f"colabtray: {dest / link} is a link that leads outside {dest}; nothing was written "
        f"to {dest}.\n",
    )
    assert list(elsewhere.iterdir()) == []
    assert not parts_under(tmp_path)
