"""SSH to a runtime as a person does it: the system's OpenSSH client (ssh, scp), colabtray's
``ssh-proxy``, the emulator's ``/colab/ssh`` and Debian's sshd, all real processes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
import websockets

from colabtray.emulator.ssh import find_sshd
from tests.fixtures.colab import cli_env, content_dir, headless_app, new_runtime, run_cli
from tests.fixtures.emulator import Emulator, pids_mentioning
from tests.fixtures.ssh import SshPerson, make_key, proxy_of, public_key
from tests.fixtures.waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_sshd() is None or os.geteuid() != 0,
        reason="needs Debian's openssh-server and root (scripts/setup.sh --system installs it)",
    ),
]

MB = 1000 * 1000
NO_KEY = (
    "colabtray: There is no SSH key for Colab in {ssh_dir} (id_ed25519 or id_ecdsa); "
    "make one with: ssh-keygen -t ed25519\n"
)
RSA = (
    "colabtray: {key} is an RSA key, and Colab refuses RSA keys for SSH (it takes ed25519 and "
    "ECDSA keys); make an ed25519 key with: ssh-keygen -t ed25519\n"
)
BUSY = (
    "colabtray: Another SSH client is already connected to CPU, and a runtime takes one at a "
    "time; close that one first."
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- through the config ssh-config writes ----------------------------------------------------


def test_ssh_and_scp_through_the_generated_config(
    emulator: Emulator, ssh_person: SshPerson, tmp_path: Path
) -> None:
    person = ssh_person
    runtime = new_runtime(person.env)
    (person.ssh_dir / "config").write_text("Host elsewhere\n  User me\n")

    written = run_cli(person.env, "ssh-config", "--add-include")
    assert written.returncode == 0, written.stderr
    ours = person.ssh_dir / "colabtray_config"
    assert f'Include "{ours}"' in written.stdout
    user_config = person.user_config.read_text()
    assert user_config.startswith(f'Include "{ours}"\n')  # before any Host block
    assert "Host elsewhere" in user_config
    entries = ours.read_text()
    assert "Host colab-cpu\n" in entries
    assert f"ssh-proxy {runtime['endpoint']}" in entries
    again = run_cli(person.env, "ssh-config", "--add-include")
    assert person.user_config.read_text() == user_config, again.stdout  # added once

    config = str(person.user_config)
    done = person.run("ssh", "-F", config, "-o", "BatchMode=yes", "colab-cpu", "uname", "-a")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Linux ")
    whoami = person.run("ssh", "-F", config, "-o", "BatchMode=yes", "colab-cpu", "id", "-un")
    assert (whoami.stdout, whoami.stderr) == ("root\n", "")

    # scp: 20 MB there and back, bytes checked.
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(20 * MB))
    there = content_dir(emulator, runtime["endpoint"]) / "blob.bin"
    up = person.run("scp", "-F", config, "-q", str(source), f"colab-cpu:{there}")
    assert (up.returncode, up.stderr) == (0, "")
    assert sha256(there) == sha256(source)
    back = tmp_path / "back.bin"
    down = person.run("scp", "-F", config, "-q", f"colab-cpu:{there}", str(back))
    assert (down.returncode, down.stderr) == (0, "")
    assert sha256(back) == sha256(source)

    # rsync over the same entry (its remote side is the runtime's rsync).
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a\n")
    target = there.parent / "tree"
    synced = person.run("rsync", "-a", "-e", f"ssh -F {config}", f"{tree}/", f"colab-cpu:{target}/")
    assert (synced.returncode, synced.stderr) == (0, "")
    assert (target / "sub" / "a.txt").read_text() == "a\n"


def test_an_interactive_session_has_a_terminal(emulator: Emulator, ssh_person: SshPerson) -> None:
    new_runtime(ssh_person.env)
    session = pexpect.spawn(
        sys.executable,
        ["-m", "colabtray", "ssh", "CPU"],
        env=ssh_person.env,
        encoding="utf-8",
        timeout=60,
    )
    try:
        session.sendline("tty; pwd; echo $((6*7))")
        session.expect(r"/dev/pts/\d+")
        session.expect(r"/root|/content")  # /content where there is one (on Colab)
        session.expect("42")
        session.sendline("exit 5")
        session.expect(pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 5


def test_colabtray_ssh_runs_a_command_and_passes_its_exit_status(
    emulator: Emulator, ssh_person: SshPerson
) -> None:
    env = ssh_person.env
    new_runtime(env)
    hi = run_cli(env, "ssh", "CPU", "echo", "hi")
    assert (hi.returncode, hi.stdout, hi.stderr) == (0, "hi\n", "")
    failed = run_cli(env, "ssh", "CPU", "exit", "3")
    assert (failed.returncode, failed.stderr) == (3, "")
    missing = run_cli(env, "ssh", "GPU", "true")
    assert missing.returncode == 1
    assert missing.stderr.startswith("colabtray: No runtime named 'GPU'")


# ---- keys ------------------------------------------------------------------------------------


def test_rsa_keys_are_refused_before_any_network(emulator: Emulator, ssh_person: SshPerson) -> None:
    env = ssh_person.env
    new_runtime(env)
    rsa = make_key(ssh_person.ssh_dir / "id_rsa_colab", "rsa")
    mark = emulator.last_seq()
    refused = run_cli(env, "ssh", "-i", str(rsa), "CPU", "true")
    assert (refused.returncode, refused.stderr) == (1, RSA.format(key=rsa))
    (rsa.parent / f"{rsa.name}.pub").unlink()  # the public half derived with ssh-keygen -y
    derived = run_cli(env, "ssh-proxy", "CPU", "-i", str(rsa))
    assert (derived.returncode, derived.stdout, derived.stderr) == (1, "", RSA.format(key=rsa))
    assert not emulator.requests(since=mark, host="runtime")


def test_no_key_says_how_to_make_one(emulator: Emulator, ssh_person: SshPerson) -> None:
    env = ssh_person.env
    for name in ("id_ed25519", "id_ed25519.pub"):
        (ssh_person.ssh_dir / name).unlink()
    for command in (["ssh", "CPU", "true"], ["ssh-proxy", "CPU"]):
        done = run_cli(env, *command)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == NO_KEY.format(ssh_dir=ssh_person.ssh_dir)


# ---- one client per runtime, and ssh-proxy's ending -----------------------------------------


def test_a_second_client_is_told_the_runtime_takes_one(
    emulator: Emulator, ssh_person: SshPerson
) -> None:
    env = ssh_person.env
    new_runtime(env)
    first = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "ssh", "CPU", "sleep", "61"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        known = Path(env["COLABTRAY_STATE_DIR"]) / "ssh_known_hosts"
        wait_for(lambda: known.exists() and known.read_text(), 60)  # the first got in
        second = run_cli(env, "ssh", "CPU", "true")
        assert second.returncode == 255  # ssh's own status when the connection fails
        assert BUSY in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.communicate(timeout=30)
    # The runtime's side ends with the client: sshd, and the command it left running.
    try:
        wait_for(lambda: not pids_mentioning("sleep 61"), 15)
    except AssertionError:
        left = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in pids_mentioning("sleep 61")}
        raise AssertionError(f"left: {left}") from None
    again = run_cli(env, "ssh", "CPU", "echo", "free")  # the first one's sshd is gone
    assert (again.returncode, again.stdout) == (0, "free\n"), again.stderr


def test_ssh_proxy_writes_only_the_stream_and_ends_on_sighup(
    emulator: Emulator, ssh_person: SshPerson
) -> None:
    env = ssh_person.env
    new_runtime(env)
    with subprocess.Popen(
        [sys.executable, "-m", "colabtray", "ssh-proxy", "CPU"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proxy:
        assert proxy.stdout is not None and proxy.stdin is not None
        try:
            proxy.stdin.write(b"SSH-2.0-colabtray_test\r\n")
            proxy.stdin.flush()
            banner = proxy.stdout.readline()  # the very first bytes are sshd's
            assert banner.startswith(b"SSH-2.0-OpenSSH"), banner
            proxy.send_signal(signal.SIGHUP)  # how OpenSSH ends a ProxyCommand
            _out, err = proxy.communicate(timeout=15)
            assert (proxy.returncode, err) == (0, b"")
        finally:
            if proxy.poll() is None:
                proxy.kill()
    after = run_cli(env, "ssh", "CPU", "true")  # its sshd went with it: not "busy"
    assert (after.returncode, after.stderr) == (0, "")


# ---- host keys: every runtime a new machine ----------------------------------------------------


def test_a_new_runtime_with_a_new_host_key_never_warns(
    emulator: Emulator, ssh_person: SshPerson
) -> None:
    env = ssh_person.env
    first = new_runtime(env)
    assert run_cli(env, "ssh-config").returncode == 0
    ours = ssh_person.ssh_dir / "colabtray_config"
    config = ["-F", str(ours), "-o", "BatchMode=yes"]
    assert ssh_person.run("ssh", *config, "colab-cpu", "true").returncode == 0
    known = Path(env["COLABTRAY_STATE_DIR"]) / "ssh_known_hosts"
    assert f"colab-{first['endpoint']} " in known.read_text()

    assert run_cli(env, "remove", "CPU").returncode == 0
    second = new_runtime(env)  # the same name, another machine and host key
    done = run_cli(env, "ssh", "CPU", "echo", "new")
    assert (done.returncode, done.stdout, done.stderr) == (0, "new\n", "")
    recorded = known.read_text()
    assert f"colab-{second['endpoint']} " in recorded
    assert first["endpoint"] not in recorded  # pruned
    assert second["endpoint"] in ours.read_text()  # the entry follows the runtime
    through = ssh_person.run("ssh", *config, "colab-cpu", "echo", "ok")
    assert (through.returncode, through.stdout, through.stderr) == (0, "ok\n", "")


def test_the_running_app_keeps_the_entries_in_step(
    emulator: Emulator, ssh_person: SshPerson
) -> None:
    env = ssh_person.env
    ours = ssh_person.ssh_dir / "colabtray_config"
    with headless_app(env):
        wait_for(lambda: run_cli(env, "status").returncode == 0, 60, interval=0.5)
        assert run_cli(env, "ssh-config").returncode == 0
        assert "Host colab-" not in ours.read_text()
        runtime = new_runtime(env)
        wait_for(lambda: runtime["endpoint"] in ours.read_text(), 30)
        assert "Host colab-cpu\n" in ours.read_text()
        assert run_cli(env, "remove", "CPU").returncode == 0
        wait_for(lambda: runtime["endpoint"] not in ours.read_text(), 30)


# ---- the emulator's /colab/ssh, by status -----------------------------------------------------


def socket_url(url: str, token: str | None) -> str:
    query = "" if token is None else f"?colab-runtime-proxy-token={token}"
    return url.replace("http", "ws", 1) + "/colab/ssh" + query


async def handshake(url: str, token: str | None, pubkey: str | None) -> tuple[int, bytes]:
    """The status (101 once upgraded) and body of a WebSocket handshake with /colab/ssh."""
    headers = {} if pubkey is None else {"X-Colab-Ssh-Pubkey": pubkey}
    try:
        async with websockets.connect(socket_url(url, token), additional_headers=headers):
            return 101, b""
    except websockets.InvalidStatus as exc:
        return exc.response.status_code, exc.response.body or b""


async def admitted(url: str, token: str, public: str) -> None:
    """A handshake succeeds once the runtime has seen the client before it go (429 until
    then), within a bound."""
    deadline = time.monotonic() + 15
    while (status := (await handshake(url, token, public))[0]) == 429:
        assert time.monotonic() < deadline, "still 429 after the client before left"
        await asyncio.sleep(0.1)
    assert status == 101


async def test_the_emulator_answers_each_case_with_colabs_status(
    emulator: Emulator, ssh_person: SshPerson, tmp_path: Path
) -> None:
    runtime = new_runtime(ssh_person.env)
    url, token = proxy_of(emulator, runtime["endpoint"])
    public = public_key(ssh_person.ssh_dir / "id_ed25519")
    ecdsa = public_key(make_key(tmp_path / "ecdsa", "ecdsa"))
    rsa = public_key(make_key(tmp_path / "rsa", "rsa"))

    assert (await handshake(url, "not-a-token", public))[0] == 401
    assert (await handshake(url, None, public))[0] == 401
    assert await handshake(url, token, None) == (400, b"missing pubkey\n")
    assert await handshake(url, token, rsa) == (400, b"unsupported key type\n")
    assert (await handshake(url, token, "ssh-ed25519 AAAA!not-base64"))[0] == 400
    assert (await handshake(url, token, ecdsa))[0] == 101
    await admitted(url, token, public)  # (the ECDSA client's end may take a moment)
    async with websockets.connect(
        socket_url(url, token), additional_headers={"X-Colab-Ssh-Pubkey": public}
    ) as first:
        assert (await first.recv())[:8] == b"SSH-2.0-"  # sshd speaks first
        assert (await handshake(url, token, public))[0] == 429
    await admitted(url, token, public)  # the first client has gone: the next one is let in
    assert token not in emulator.stderr_text()


async def test_runtimes_of_an_emulator_without_ssh_answer_404(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory("--no-ssh", "--idle-timeout", "600")
    runtime = new_runtime(cli_env(emulator, tmp_path))
    url, token = proxy_of(emulator, runtime["endpoint"])
    public = public_key(make_key(tmp_path / "key"))
    assert (await handshake(url, token, public))[0] == 404
