"""Server files: written 0600 with the standard fields, withdrawn, and only ours cleaned."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from colabtray.bridge.discovery import Discovery
from colabtray.bridge.store import Address, AddressBook


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_publish_withdraw_and_clean_only_our_stale_files(tmp_path: Path) -> None:
    discovery = Discovery(tmp_path)
    discovery.publish("m-s-one", "CPU", 40001, "s" * 43)
    (path,) = tmp_path.glob("jpserver-*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = json.loads(path.read_text())
    assert info["url"] == "http://127.0.0.1:40001/" and info["token"] == "s" * 43
    assert info["pid"] == os.getpid() and info["colabtray"]["endpoint"] == "m-s-one"
    for field in ("base_url", "hostname", "port", "root_dir", "secure", "password", "version"):
        assert field in info

    # A crashed colabtray's file, a live Jupyter's file, and someone else's with a dead pid.
    crashed = tmp_path / "jpserver-1-colabtray-40002.json"
    crashed.write_text(json.dumps({"pid": dead_pid(), "colabtray": {"endpoint": "x"}}))
    jupyter = tmp_path / "jpserver-12345.json"
    jupyter.write_text(json.dumps({"pid": dead_pid()}))
    assert discovery.clean_stale() == 1
    assert not crashed.exists() and jupyter.exists() and path.exists()

    discovery.withdraw("m-s-one")
    assert not path.exists()


def test_addresses_survive_a_restart_and_stay_private(tmp_path: Path) -> None:
    book = AddressBook(tmp_path)
    first = book.get("m-s-one")
    assert first.port == 0 and len(first.secret) >= 32
    book.put("m-s-one", Address(40001, first.secret))
    again = AddressBook(tmp_path).get("m-s-one")
    assert (again.port, again.secret) == (40001, first.secret)
    assert stat.S_IMODE((tmp_path / "bridge.json").stat().st_mode) == 0o600
    assert AddressBook(tmp_path).get("m-s-two").secret != first.secret
