"""Server files in the Jupyter runtime directory, so ``jupyter server list`` sees runtimes.

A running Jupyter server leaves ``jpserver-<pid>.json`` in ``jupyter --runtime-dir`` (which
honours ``JUPYTER_RUNTIME_DIR``); tools read those files to find servers. colabtray writes one
such file per bridged runtime, ``jpserver-<pid>-colabtray-<port>.json``, with the standard
fields (and the bridge secret as ``token``, so the file is readable by the user only) plus a
``colabtray`` object that marks it as ours. Files are removed when the runtime goes and when
the app stops; files of ours left by a run that crashed are removed on the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from colabtray import __version__
from colabtray.system.jsonfile import write_atomically

log = logging.getLogger(__name__)

MARK = "colabtray"


def runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Discovery:
    """Writes and removes this process's server files."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else runtime_dir()
        self._files: dict[str, Path] = {}

    def path_for(self, port: int) -> Path:
        return self.directory / f"jpserver-{os.getpid()}-{MARK}-{port}.json"

    def publish(self, endpoint: str, name: str, port: int, secret: str) -> None:
        """Write (or rewrite) the file of one runtime; readable by the user only."""
        info: dict[str, Any] = {
            "url": f"http://127.0.0.1:{port}/",
            "hostname": "127.0.0.1",
            "port": port,
            "sock": "",
            "secure": False,
            "base_url": "/",
            "token": secret,
            "root_dir": "/content",
            "password": False,
            "pid": os.getpid(),
            "version": __version__,
            MARK: {"endpoint": endpoint, "name": name},
        }
        path = self.path_for(port)
        old = self._files.get(endpoint)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(path, json.dumps(info, indent=2, sort_keys=True))
        except OSError as exc:
            log.warning(
                "could not write the Jupyter server file for %s: %s", endpoint, exc.strerror
            )
            return
        self._files[endpoint] = path
        if old is not None and old != path:
            old.unlink(missing_ok=True)

    def withdraw(self, endpoint: str) -> None:
        path = self._files.pop(endpoint, None)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def withdraw_all(self) -> None:
        for endpoint in list(self._files):
            self.withdraw(endpoint)

    def clean_stale(self) -> int:
        """Remove files of ours whose process is gone; returns how many."""
        removed = 0
        try:
            candidates = list(self.directory.glob(f"jpserver-*-{MARK}-*.json"))
        except OSError:
            return 0
        for path in candidates:
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(info, dict) or MARK not in info:
                continue  # not ours after all
            pid = info.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
                continue  # another colabtray (another state dir) is running
            if pid == os.getpid() and path in self._files.values():
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        return removed
