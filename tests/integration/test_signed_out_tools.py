"""Signed out, the tools that name a runtime say so and how to sign in (issue 25, item 4),
instead of "No runtime named 'CPU' (runtimes: none)": without a running app, and through a
running ``--headless`` app. Real processes against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.colab import headless_app, run_cli
from tests.fixtures.ssh import make_key
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

SIGNED_OUT = "colabtray: Not signed in. Run 'colabtray signin' (or set COLABTRAY_ACCESS_TOKEN).\n"


def tools(tmp_path: Path) -> list[tuple[str, ...]]:
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "id_ed25519").unlink(missing_ok=True)
    (tmp_path / "id_ed25519.pub").unlink(missing_ok=True)
    return [
        ("cp", str(tmp_path / "x.txt"), "CPU:"),
        ("cp", "CPU:x.txt", str(tmp_path / "y.txt")),
        ("shell", "CPU"),
        ("ssh", "-i", str(make_key(tmp_path / "id_ed25519")), "CPU", "true"),
        ("remove", "CPU"),
    ]


def signed_out(headless_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headless_env.items() if k != "COLABTRAY_ACCESS_TOKEN"}


def test_signed_out_without_an_app(headless_env: dict[str, str], tmp_path: Path) -> None:
    env = signed_out(headless_env)
    for command in tools(tmp_path):
        result = run_cli(env, *command)
        assert (result.returncode, result.stderr) == (1, SIGNED_OUT), command


def test_signed_out_through_the_running_app(headless_env: dict[str, str], tmp_path: Path) -> None:
    env = signed_out(headless_env)
    with headless_app(env):
        answered = wait_for(
            lambda: (
                (r := run_cli(env, "url", "CPU")).stderr != ""
                and "not running" not in r.stderr
                and r
            ),
            60,
            0.5,
        )
        assert (answered.returncode, answered.stderr) == (1, SIGNED_OUT)
        for command in tools(tmp_path):
            result = run_cli(env, *command)
            assert (result.returncode, result.stderr) == (1, SIGNED_OUT), command
