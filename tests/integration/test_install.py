"""Installing colabtray as an end user does: a wheel built from this tree, installed with its
dependencies into a fresh virtual environment (what ``pipx install`` does), gives a working
``colabtray`` whose login entry starts that installation."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from colabtray import __version__
from colabtray.cli import build_parser
from tests.unit.test_autostart import desktop_value, split_exec, validate

ROOT = Path(__file__).resolve().parents[2]
# What a build must not see: the developer's environment and earlier build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "test-artifacts"
)


def subcommands() -> list[str]:
    """Every subcommand the CLI has (so that a new one is checked too)."""
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


pytestmark = pytest.mark.slow


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    # From a directory without a colabtray/ in it: `python -c` imports from the current one.
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, cwd="/", check=False
    )
    assert result.returncode == 0, f"{argv[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "colabtray"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(out)])
    (built,) = out.glob("colabtray-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin`` directory of a fresh venv with the wheel and its dependencies."""
    home = tmp_path_factory.mktemp("venv") / "colabtray"
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)])
    yield home / "bin"
    shutil.rmtree(home, ignore_errors=True)


def test_the_wheel_carries_every_module_and_resource(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "colabtray").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    expected |= {
        "colabtray/resources/" + p.relative_to(ROOT / "resources").as_posix()
        for p in (ROOT / "resources").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert {
        "colabtray/resources/signin-page.html",
        "colabtray/resources/icons/colabtray.svg",
    } <= expected
    assert expected - names == set()


def test_the_installed_command_answers_version_and_help(installed: Path) -> None:
    colabtray = str(installed / "colabtray")
    assert run([colabtray, "--version"]).strip() == f"colabtray {__version__}"
    usage = run([colabtray, "--help"])
    for option in ("--demo", "--headless", "--verbose", "--version"):
        assert option in usage, f"--help does not mention {option}"
    commands = subcommands()
    assert {"signin", "signout", "status", "new", "remove", "emulator"} <= set(commands)
    for command in commands:  # listed with a sentence, and with a usage of its own
        assert re.search(rf"^\s+{command}\s+\w+", usage, re.MULTILINE), f"{command} undocumented"
        assert f"usage: colabtray {command}" in run([colabtray, command, "--help"])


def test_the_installed_resources_are_readable_from_the_package(installed: Path) -> None:
    code = (
        "from importlib import resources; r = resources.files('colabtray.resources'); "
        "print((r / 'icons' / 'colabtray.svg').read_text()[:4], "
        "(r / 'signin-page.html').is_file())"
    )
    assert run([str(installed / "python"), "-c", code]).split() == ["<svg", "True"]


def test_start_at_login_launches_the_installed_entry_point(installed: Path, tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    code = "from colabtray.system.autostart import for_platform; for_platform().set_enabled(True)"
    run([str(installed / "python"), "-c", code], env=env)
    entry = tmp_path / "config" / "autostart" / "colabtray.desktop"
    validate(entry)
    command = split_exec(desktop_value(entry.read_text(), "Exec"))
    assert command == [str(installed / "colabtray"), "--at-login"]  # waits for a tray
    assert run([*command, "--version"]).strip() == f"colabtray {__version__}"
