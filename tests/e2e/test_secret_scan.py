"""No token in logs, files or output: a whole session of commands with debug logging on."""

from __future__ import annotations

import sys
from pathlib import Path

import keyring

from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.credentials import TOKEN_SHAPES


def test_sign_in_status_refresh_and_sign_out_leak_no_token(emulator_factory, tmp_path: Path):
    emulator = emulator_factory("--auto-approve", "--access-token-ttl", "30")
    env = cli_env(emulator, tmp_path, with_token=False)
    env["COLABTRAY_LOG_DIR"] = str(tmp_path / "logs")
    browser = tmp_path / "follow.py"  # what the browser does after an automatic "Allow"
    browser.write_text(
        "import sys, httpx2\nhttpx2.get(sys.argv[1], follow_redirects=True, timeout=30)\n"
    )
    env["BROWSER"] = f"{sys.executable} {browser} %s"

    outputs: list[str] = []

    def run(*args: str) -> None:
        result = run_cli(env, "--verbose", *args)
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr

    run("signin")
    refresh_token = keyring.get_password("colabtray", "ada@example.com")
    assert refresh_token
    run("status")  # a new process: refreshes the access token first
    run("new", "--gpu", "T4")
    run("status", "--json")
    emulator.admin("POST", "tokens/expire-access", {})
    run("remove", "T4 GPU")  # refused once with 401, refreshed, retried
    run("signout")

    log_text = "".join(p.read_text() for p in (tmp_path / "logs").glob("colabtray.log*"))
    assert "DEBUG" in log_text, "debug logging did not reach the log file"
    haystacks = {"stdout/stderr": "\n".join(outputs), "log files": log_text}
    for directory in ("config", "state"):
        for path in (tmp_path / directory).rglob("*"):
            if path.is_file():
                haystacks[str(path)] = path.read_text(errors="ignore")
    for where, text in haystacks.items():
        assert refresh_token not in text, f"the refresh token is in {where}"
        found = TOKEN_SHAPES.findall(text)
        assert not found, f"token-shaped text in {where}: {found[0][:12]}…"
