"""``colabtray shell`` as a person uses it: real processes on real pseudo-terminals against
the emulator, whose ``/colab/tty`` runs a real login bash inside tmux in the runtime's
``/content``."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pexpect
import pytest

from tests.fixtures.colab import cli_env, content_dir, idle_runtime_in_app, new_runtime, run_cli
from tests.fixtures.emulator import Emulator
from tests.fixtures.terminal import pids_working_in
from tests.fixtures.waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="a POSIX terminal"),
]

CLOSED = "Connection to Colab terminal closed."


def spawn_shell(env: dict[str, str], command: str = "") -> pexpect.spawn:
    """``colabtray shell CPU`` on a pseudo-terminal of 80x24 (then ``command`` in the same
    local shell, to look at the terminal colabtray left behind). COLUMNS and LINES are
    exported too, as some people's shells do: they must not pin the size through a resize."""
    line = f"{sys.executable} -m colabtray shell CPU; {command}"
    return pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-c", line],
        env={**env, "TERM": "xterm", "COLUMNS": "80", "LINES": "24"},
        encoding="utf-8",
        timeout=30,
        dimensions=(24, 80),
    )


def width_seen(session: pexpect.spawn, expected: int, seconds: float = 15) -> None:
    """Ask the remote shell for its width until it says ``expected`` (a resize travels
    asynchronously: local SIGWINCH, frame, pty, tmux, bash), for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.sendline("echo W=$(tput cols)=")
        session.expect(r"W=(\d+)=")
        if int(session.match.group(1)) == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"the remote width never became {expected}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is installed by scripts/setup.sh")
def test_a_shell_on_a_terminal_follows_its_size_and_leaves_it_as_it_was(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = cli_env(emulator, tmp_path)
    endpoint = new_runtime(env)["endpoint"]
    content = content_dir(emulator, endpoint)
    session = spawn_shell(env, "stty -a")
    try:
        session.sendline("echo P=$(pwd)=")
        session.expect(r"P=(/[^=\r\n]*)=")
        assert Path(session.match.group(1)).resolve() == content.resolve()
        session.sendline("echo T=${TMUX:+in-tmux}=")
        session.expect(r"T=(in-tmux)?=")
        assert session.match.group(1), "the shell runs inside tmux, as on Colab"
        width_seen(session, 80)
        session.setwinsize(30, 123)
        width_seen(session, 123)
        session.sendline("exit")
        session.expect_exact(CLOSED)
        session.expect(pexpect.EOF)
        after = session.before
    finally:
        session.close(force=True)
    assert session.exitstatus == 0
    # ``stty -a`` after colabtray: the terminal is back in canonical mode with echo.
    assert re.search(r"(?<![-\w])icanon\b", after) and re.search(r"(?<![-\w])echo\b", after)
    wait_for(lambda: not pids_working_in(content), 15)


def test_piped_input_runs_then_the_session_ends(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    endpoint = new_runtime(env)["endpoint"]
    result = subprocess.run(
        ["bash", "-c", f"echo 'echo hi-$((6 * 7))' | {sys.executable} -m colabtray shell CPU"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "hi-42" in result.stdout
    assert result.stderr == f"{CLOSED}\n"
    wait_for(lambda: not pids_working_in(content_dir(emulator, endpoint)), 15)


def piped(env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    """``printf SCRIPT | colabtray shell CPU`` as a shell runs it."""
    return subprocess.run(
        [
            "bash",
            "-c",
            f"printf %s {shlex.quote(script)} | {sys.executable} -m colabtray shell CPU",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_quiet_piped_command_is_never_cut(emulator: Emulator, tmp_path: Path) -> None:
    """Issue 25 (1): the session ends when the remote shell exits after the input, not after a
    spell of quiet (0.5 s of it cut ``sleep 2`` short, 3 of 3 times, and exited 0)."""
    env = cli_env(emulator, tmp_path)
    new_runtime(env)
    for _ in range(3):
        result = piped(env, "sleep 2; echo do''ne\n")
        assert (result.returncode, result.stderr) == (0, f"{CLOSED}\n")
        assert "done" in result.stdout, result.stdout[-500:]


def test_the_remote_shells_exit_status_is_colabtrays(emulator: Emulator, tmp_path: Path) -> None:
    """The last command's status, an explicit ``exit N``, and input with no final newline."""
    env = cli_env(emulator, tmp_path)
    endpoint = new_runtime(env)["endpoint"]
    for script, status in (("false\n", 1), ("echo a; exit 3\necho never\n", 3), ("(exit 7)", 7)):
        result = piped(env, script)
        assert (result.returncode, result.stderr) == (status, f"{CLOSED}\n"), script
        assert "never\r\n" not in result.stdout
        assert "colabtray-exit" not in result.stdout.replace("colabtray-exit %s", "")
    wait_for(lambda: not pids_working_in(content_dir(emulator, endpoint)), 15)


def test_binary_frames_are_output_not_the_end_of_the_session(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Issue 23 (7): the emulator's switch sends the terminal's output as binary frames of raw
    bytes (its shell stays as real as ever); each is text to show, a character split across
    two frames included, and only the runtime closing the socket ends the session."""
    env = cli_env(emulator, tmp_path)
    new_runtime(env)
    emulator.admin("POST", "faults", {"terminal_binary": True})
    result = subprocess.run(
        ["bash", "-c", f"echo 'echo grüß-$((6 * 7))' | {sys.executable} -m colabtray shell CPU"],
        env={**env, "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "grüß-42" in result.stdout, result.stdout[-500:]
    assert result.stderr == f"{CLOSED}\n"


def test_a_session_killed_locally_leaves_nothing_running_on_the_runtime(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A background job, and one in a session of its own that no hangup reaches (bash's
    SIGHUP to its jobs never did, and bash may even go on the pty's EOF without passing it
    on): both end with the connection."""
    env = cli_env(emulator, tmp_path)
    content = content_dir(emulator, new_runtime(env)["endpoint"])
    session = spawn_shell(env)
    try:
        session.sendline("sleep 1000 & setsid sleep 1001 & echo S=$((1 + 1))=")
        session.expect_exact("S=2=")
        wait_for(lambda: len(pids_working_in(content)) >= 4, 5)  # tmux, bash, two sleeps
    finally:
        session.close(force=True)  # SIGKILL: no goodbye, the socket just breaks
    wait_for(lambda: not pids_working_in(content), 15)


def test_no_such_runtime_is_one_sentence(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    new_runtime(env)
    result = run_cli(env, "shell", "K80 GPU")
    assert (result.returncode, result.stderr) == (
        1,
        "colabtray: No runtime named 'K80 GPU' (runtimes: CPU).\n",
    )


def test_a_runtime_removed_mid_session_is_one_sentence(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    new_runtime(env)
    session = spawn_shell(env)
    try:
        session.sendline("echo S=$((2 + 2))=")
        session.expect_exact("S=4=")
        removed = run_cli(env, "remove", "CPU")
        assert removed.returncode == 0, removed.stderr
        session.expect(pexpect.EOF)
        said = session.before
    finally:
        session.close(force=True)
    assert session.exitstatus == 1
    assert said.rstrip().endswith("colabtray: CPU was disconnected, and its terminal with it.")
    assert "Traceback" not in said


def test_the_terminal_socket_demands_the_proxy_token(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    endpoint = new_runtime(env)["endpoint"]
    (runtime,) = [r for r in emulator.state()["runtimes"] if r["endpoint"] == endpoint]

    async def handshake() -> int:
        async with aiohttp.ClientSession() as http:
            try:
                socket = await http.ws_connect(runtime["url"] + "/colab/tty")
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            await socket.close()
            return 101

    assert asyncio.run(handshake()) == 401
    assert not pids_working_in(content_dir(emulator, endpoint))


def test_a_session_counts_as_use_for_keep_alive(
    emulator: Emulator, headless_env: dict[str, str], tmp_path: Path
) -> None:
    """An idle runtime (keep-alive has stopped pinging it and asks about it) is pinged again
    once a shell uses it: the running app is told."""
    with idle_runtime_in_app(headless_env, tmp_path) as endpoint:
        mark = emulator.last_seq()
        used = subprocess.run(
            [sys.executable, "-m", "colabtray", "shell", "CPU"],
            input="true\n",
            env=headless_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (used.returncode, used.stderr) == (0, f"{CLOSED}\n")
        ping = f"/tun/m/{endpoint}/keep-alive/"
        wait_for(lambda: any(r["path"] == ping for r in emulator.requests(since=mark)), 15)
