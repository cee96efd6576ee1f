"""colabtray's config, state and log directories are its user's alone: made 0700, and one of
ours found wider is tightened (one of another user's is left as it is)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.settings import load_settings
from colabtray.system.dirs import private_dir, tighten_dir
from colabtray.system.jsonfile import write_json
from colabtray.system.logs import configure_logging

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes")


@pytest.fixture(autouse=True)
def open_umask() -> object:
    """A permissive umask, as many desktops have: under 077 every folder would come out 0700
    without colabtray doing anything, and these tests could not fail."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_state_file_makes_its_missing_folders_0700(tmp_path: Path) -> None:
    write_json(tmp_path / "state" / "colabtray" / "bridge.json", {"x": 1})
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "colabtray") == 0o700


def test_the_settings_folders_are_tightened_when_ours(tmp_path: Path) -> None:
    dirs = {name: tmp_path / name for name in ("config_dir", "state_dir", "log_dir")}
    for path in dirs.values():
        path.mkdir(mode=0o755)
        path.chmod(0o755)
    load_settings(**dirs)
    assert [mode(p) for p in dirs.values()] == [0o700] * 3


def test_the_log_folder_and_its_missing_parents_are_0700(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging(log_dir=tmp_path / "state" / "log")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[1]:  # pytest's own, taken off by configure_logging
            root.addHandler(handler)
        root.setLevel(saved[0])
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "log") == 0o700


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.integers(0o700, 0o777))
def test_tightening_takes_group_and_others_access_only(tmp_path: Path, before: int) -> None:
    path = tmp_path / f"d{before:o}"
    path.mkdir(exist_ok=True)
    path.chmod(before)
    private_dir(path)
    assert mode(path) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_another_users_folder_is_left_alone(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    theirs.chmod(0o755)
    os.chown(theirs, 65534, 65534)
    tighten_dir(theirs)
    assert mode(theirs) == 0o755
