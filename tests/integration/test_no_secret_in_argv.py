"""No secret on a command line: a process's argv is readable by every local user.

Two ways of reading it, both of the real processes:

* colabtray's own process starts (``subprocess``, ``asyncio.create_subprocess_*``, the
  ``os`` exec and spawn calls) are recorded by a Python audit hook: the argv handed to the
  OS, whatever the program;
* the long-lived processes of a bridged runtime (its Jupyter server and kernels, the demo's
  emulator) are read from ``/proc/PID/cmdline`` while they run.

:func:`test_every_process_start_in_colabtray_is_covered_here` lists the places in
``colabtray/`` that start a process and fails on one that no test here accounts for.
"""

from __future__ import annotations

import ast
import asyncio
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import colabtray
from colabtray.auth import gcloud as gcloud_cli
from colabtray.auth.vault import ChildVault, KeyringUnavailable
from colabtray.demo import DemoEmulator
from colabtray.doctor import _tray as doctor_tray_check
from colabtray.settings import load_settings
from colabtray.tools import ssh as ssh_tool
from colabtray.tools.ssh_keys import identity
from colabtray.tools.terminal_launcher import open_terminal, shell_command
from tests.fixtures.bridge import Bridged
from tests.fixtures.gcloud import CREDENTIALS_DB, CredentialStore, Gcloud
from tests.fixtures.jupyter_client import KernelSession, split_url

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]

# ---- the recorder -----------------------------------------------------------------------------

_started: list[list[str]] | None = None  # the argvs recorded while a test records
_HOOKED = False
_EVENTS = frozenset({"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"})


def _words(argv: Any) -> list[str]:
    if isinstance(argv, str | bytes | os.PathLike):
        return [os.fsdecode(argv)]
    return [os.fsdecode(word) for word in argv]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _started is None or event not in _EVENTS:
        return
    try:  # subprocess.Popen: (executable, args, cwd, env); os.*: (path, args, env[, …])
        _started.append(_words(args[1]))
    except Exception:  # an audit hook must never raise into the audited call
        _started.append(["<unreadable argv>"])


@pytest.fixture
def started() -> Iterator[list[list[str]]]:
    """The argv of every process this test process starts while the test runs."""
    global _started, _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)  # for the process's life; idle unless a test records
        _HOOKED = True
    _started = recorded = []
    try:
        yield recorded
    finally:
        _started = None


def assert_no_secret(argvs: list[list[str]], known: list[str]) -> None:
    known = [k for k in known if k]
    assert known, "a check with no secret to look for proves nothing"
    for argv in argvs:
        line = "\0".join(argv)
        for secret in known:
            assert secret not in line, f"a secret is on the command line of {argv[0]}"


def cmdlines() -> dict[int, str]:
    """What every local user reads of every process now: pid → its argv, NUL-joined."""
    seen = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                seen[int(entry.name)] = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue  # gone meanwhile
    return seen


def make_key(path: Path) -> None:
    """The test's own ed25519 key, made before anything is recorded."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def stub_on_path(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str) -> None:
    """An executable ``name`` that does nothing, first on PATH: only for a program whose run
    is beside the point (what is checked is the argv colabtray hands it)."""
    folder.mkdir(exist_ok=True)
    program = folder / name
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


# ---- colabtray's own process starts --------------------------------------------------------


async def test_gcloud_is_asked_for_a_token_without_one_on_its_command_line(
    gcloud: Gcloud, started: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    gcloud.login()  # the test's own sign-in, before anything is recorded
    started.clear()
    for name, value in gcloud.env.items():
        monkeypatch.setenv(name, value)
    account = await gcloud_cli.active_account()
    assert account is not None
    token = await gcloud_cli.print_access_token(account)
    assert token and all(Path(a[0]).name == "gcloud" for a in started) and len(started) == 2
    stored = CredentialStore(gcloud.config_dir / CREDENTIALS_DB).load(account) or {}
    assert_no_secret(started, [token, stored["refresh_token"], stored["client_secret"]])
    # `colabtray signin --adc` runs this line itself: made of the scopes alone.
    scopes = load_settings().oauth_scopes
    assert gcloud_cli.adc_login_command(scopes)[:4] == [
        "gcloud",
        "auth",
        "application-default",
        "login",
    ]


def test_the_keyring_helper_gets_the_refresh_token_on_stdin(started: list[list[str]]) -> None:
    refresh = "1//refresh-" + secrets.token_urlsafe(24)
    vault = ChildVault(service=f"colabtray-argv-test-{secrets.token_hex(4)}")
    try:
        vault.set("ada@example.com", refresh)
        assert vault.get("ada@example.com") == refresh
        vault.delete("ada@example.com")
    except KeyringUnavailable:
        pass  # no keyring here: the helper still started, and its argv is what is checked
    assert len(started) >= 1
    assert_no_secret(started, [refresh])


def test_ssh_keygen_derives_a_public_key_from_the_path_alone(
    tmp_path: Path, started: list[list[str]]
) -> None:
    key = tmp_path / "id_ed25519"
    make_key(key)
    started.clear()
    Path(f"{key}.pub").unlink()
    assert identity(key).public.startswith("ssh-ed25519 ")
    assert [Path(a[0]).name for a in started] == ["ssh-keygen"]
    body = "".join(key.read_text().splitlines()[1:-1])
    assert_no_secret(started, [body, body[:40]])


async def test_ssh_gets_the_runtime_by_name_never_its_token(
    tmp_path: Path, started: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_on_path(monkeypatch, tmp_path / "bin", "ssh")
    key = tmp_path / "id_ed25519"
    await asyncio.to_thread(make_key, key)
    started.clear()
    runtime_token = "runtime-token-" + secrets.token_urlsafe(24)
    bridge_secret = secrets.token_urlsafe(32)
    settings = load_settings(
        config_dir=tmp_path / "config",
        state_dir=tmp_path / "state",
        log_dir=tmp_path / "log",
        ssh_config=tmp_path / "ssh_config",
    )

    async def ask(command: str, args: dict[str, Any]) -> dict[str, Any]:
        """The running app's replies (the control channel is tested on its own)."""
        runtime = {"name": "T4 GPU", "endpoint": "gpu-t4-s-argv"}
        if command == "status":
            return {"runtimes": [{**runtime, "url": f"http://127.0.0.1:1/?token={bridge_secret}"}]}
        assert command == "runtime"
        expires = datetime.now(UTC) + timedelta(hours=1)
        return {
            **runtime,
            "proxy_url": "https://gpu-t4-s-argv.example",
            "proxy_token": runtime_token,
            "proxy_expires_at": expires.isoformat(),
        }

    status = await ssh_tool.ssh(settings, "T4 GPU", key, ["nvidia-smi"], ask)
    assert status == 0
    (argv,) = [a for a in started if Path(a[0]).name == "ssh"]
    assert argv[-2:] == [ssh_tool.IN_CONTENT, "nvidia-smi"] or argv[-1] == "nvidia-smi"
    assert_no_secret(started, [runtime_token, bridge_secret])


def test_the_terminal_runs_colabtray_shell_with_a_name(
    started: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMINAL", "true")  # a real program that ends at once
    assert open_terminal("T4 GPU") is None
    (argv,) = started
    # Nothing but the terminal, colabtray's own command line and the runtime's name.
    assert argv == ["true", "-e", *shell_command("T4 GPU")]
    assert argv[-2:] == ["shell", "T4 GPU"]


async def test_doctor_asks_qt_about_the_tray_with_code_only(started: list[list[str]]) -> None:
    await doctor_tray_check()
    (argv,) = started
    assert argv[:2] == [sys.executable, "-c"] and len(argv) == 3
    assert "QSystemTrayIcon.isSystemTrayAvailable()" in argv[2]  # fixed code, nothing else


def test_the_demo_starts_its_emulator_with_no_token_in_view(
    tmp_path: Path, started: list[list[str]]
) -> None:
    emulator = DemoEmulator(tmp_path / "emulator.log")
    try:
        exports = emulator.exports()
        tokens = [v for k, v in exports.items() if "TOKEN" in k or "SECRET" in k]
        assert tokens, exports.keys()
        assert_no_secret(started, tokens)
        everyone = [c for pid, c in cmdlines().items() if pid != os.getpid()]
        assert_no_secret([[c] for c in everyone], tokens)
    finally:
        emulator.stop()


# ---- a bridged runtime's processes, as any local user sees them -----------------------------


async def test_a_bridged_runtime_and_its_kernel_show_no_secret(bridged: Bridged) -> None:
    endpoint, url = await bridged.runtime()
    runtime = bridged.registry.state.runtimes[endpoint]
    assert runtime.proxy is not None
    known = [
        split_url(url)[1],  # the bridge secret
        runtime.proxy.token.get_secret_value(),  # Colab's runtime token
        bridged.emulator.access_token,  # the account's access token
    ]
    async with KernelSession(url) as kernel:
        output, _ = await kernel.execute("print(6*7)")
        assert output == "42\n"
        everyone = cmdlines()
    assert any("jupyter" in c or "ipykernel" in c for c in everyone.values())
    assert_no_secret([[c] for c in everyone.values()], known)


# ---- every place that starts a process is accounted for --------------------------------------

_STARTERS = {
    ("subprocess", "run"),
    ("subprocess", "Popen"),
    ("subprocess", "call"),
    ("subprocess", "check_call"),
    ("subprocess", "check_output"),
    ("asyncio", "create_subprocess_exec"),
    ("asyncio", "create_subprocess_shell"),
    ("webbrowser", "open"),
    ("webbrowser", "open_new"),
    ("webbrowser", "open_new_tab"),
}
_OS_STARTERS = ("exec", "spawn", "posix_spawn", "system", "popen", "startfile")

# Where colabtray starts a process (module, enclosing function) → the test above that reads
# that process's argv, or why none is needed. A new place fails the test below until it is
# added here with its test.
COVERED = {
    ("colabtray.auth.gcloud", "_run"): "test_gcloud_is_asked_for_a_token_without_one_on_its…",
    ("colabtray.cli.accounts", "_signin_adc"): "adc_login_command: scopes only (test_gcloud_…)",
    ("colabtray.auth.vault", "_ask"): "test_the_keyring_helper_gets_the_refresh_token_on_stdin",
    ("colabtray.tools.ssh_keys", "_public_line"): "test_ssh_keygen_derives_a_public_key_…",
    ("colabtray.tools.ssh", "ssh"): "test_ssh_gets_the_runtime_by_name_never_its_token",
    ("colabtray.tools.terminal_launcher", "open_terminal"): "test_the_terminal_runs_colabtray…",
    ("colabtray.doctor", "_tray"): "test_doctor_asks_qt_about_the_tray_with_code_only",
    ("colabtray.demo", "__init__"): "test_the_demo_starts_its_emulator_with_no_token_in_view",
    ("colabtray.emulator.runtimes", "_spawn"): "test_a_bridged_runtime_and_its_kernel_show_no…",
    # The emulator's own (tests and the demo only): fixed words, paths and session names.
    ("colabtray.emulator.ssh", "_prepare"): "sshd's host key: ssh-keygen with a path",
    ("colabtray.emulator.ssh", "_connect"): "sshd -i with paths; the client's key goes on stdin",
    ("colabtray.emulator.terminal", "start"): "tmux with a session name and a shell",
    ("colabtray.emulator.terminal", "_kill_tmux"): "tmux kill-session with a session name",
    # macOS (launchctl) and Windows (PowerShell) only: a plist's or shortcut's path.
    ("colabtray.system.autostart", "_run_checked"): "autostart: paths, on macOS and Windows",
    # A browser is given a web page to show: Google's sign-in page (its one-use `state` and
    # PKCE challenge; the verifier stays in memory) or a consent page; never a bridge URL.
    ("colabtray.cli.place", "browser"): (
        "Google's sign-in page (its one-use state and PKCE challenge, never the verifier) and "
        "Colab's page for a runtime (its endpoint, no token)"
    ),
    ("colabtray.core.commands", "signin"): "Google's sign-in page",
    ("colabtray.ui.tray", "__init__"): "Google's sign-in page",
    ("colabtray.bridge.service", "__init__"): "Google's consent page, as Colab names it",
}


def _starts(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(enclosing function, line) of each call in ``tree`` that starts a process."""

    def visit(node: ast.AST, function: str) -> Iterator[tuple[str, int]]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Subscript):  # a type such as subprocess.Popen[bytes]
            return
        if isinstance(node, ast.Call | ast.Attribute):
            target = node.func if isinstance(node, ast.Call) else node
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                pair = (target.value.id, target.attr)
                os_call = pair[0] == "os" and pair[1].startswith(_OS_STARTERS)
                if pair in _STARTERS or os_call:
                    yield function, node.lineno
        for child in ast.iter_child_nodes(node):
            yield from visit(child, function)

    yield from visit(tree, "<module>")


def test_every_process_start_in_colabtray_is_covered_here() -> None:
    root = Path(colabtray.__file__).parent
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for function, line in _starts(ast.parse(path.read_text(encoding="utf-8"))):
            found.setdefault((module, function), []).append(f"{path.name}:{line}")
    uncovered = {site: lines for site, lines in found.items() if site not in COVERED}
    assert not uncovered, f"process starts no test here checks: {uncovered}"
    assert set(COVERED) <= set(found), f"gone (update COVERED): {set(COVERED) - set(found)}"
