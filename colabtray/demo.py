"""``colabtray --demo``: the app against the local emulator, with nothing of the user's touched.

The emulator (``python -m colabtray.emulator``) runs as a child process in its own session;
it prints ``export COLABTRAY_…`` lines and a ready line, which become the app's settings. The
demo keeps its accounts and state in ``demo/`` under the usual config and state directories
(wiped at each start) and its sign-ins in memory, never in the keyring. Stopping the demo
stops the emulator, which stops its Jupyter runtimes; on Linux the emulator is also told to
stop if the app dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from colabtray.errors import UserError
from colabtray.system.dirs import private_dir

if TYPE_CHECKING:
    from colabtray.auth.tokens import SecretStore

log = logging.getLogger(__name__)

READY_LINE = "# colabtray emulator ready"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
DEMO_MEMORY = "the demo's memory, gone when the demo stops"
PR_SET_PDEATHSIG = 1


class DemoError(UserError):
    """One sentence for the user: see colabtray.errors."""


def wipe(*dirs: Path) -> None:
    """Start each demo from nothing (the accounts of a previous demo are meaningless now)."""
    for path in dirs:
        if path.name == "demo":  # never anything else
            shutil.rmtree(path, ignore_errors=True)
        private_dir(path)


def _stop_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class DemoEmulator:
    """The emulator child process; ``exports()`` waits until it is ready."""

    def __init__(self, log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._lines: list[str] = []
        self._ready = threading.Event()
        env = dict(os.environ, PYTHONUNBUFFERED="1", JUPYTER_PLATFORM_DIRS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "colabtray.emulator", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            start_new_session=True,  # Ctrl-C in a terminal reaches the app, which stops it
            # PR_SET_PDEATHSIG fires when the thread that started the child ends: start the
            # demo from the main thread.
            preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
        )
        threading.Thread(target=self._read, name="demo-emulator", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if line == READY_LINE:
                self._ready.set()
            elif line.startswith("export "):
                self._lines.append(line)
        self._ready.set()  # EOF: the emulator is gone; exports() reports it

    def exports(self, timeout: float = START_TIMEOUT) -> dict[str, str]:
        """The emulator's ``COLABTRAY_*`` settings, once it is ready (blocks)."""
        if not self._ready.wait(timeout):
            raise DemoError(f"The demo emulator did not start within {timeout:.0f} s.")
        if self.process.poll() is not None:
            raise DemoError(
                f"The demo emulator exited with status {self.process.returncode}; "
                f"its log is {self.log_path}."
            )
        found = {}
        for line in self._lines:
            name, _, value = line.removeprefix("export ").partition("=")
            (found[name],) = shlex.split(value)
        return found

    def stop(self) -> None:
        """SIGTERM and wait (it stops its runtimes); SIGKILL the group if it hangs."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("the demo emulator did not stop; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def memory_secrets(service: str = "colabtray") -> SecretStore:
    """A secret store in this process's memory: demo sign-ins never reach the OS keyring."""
    import keyring.backend
    import keyring.errors

    from colabtray.auth.tokens import SecretStore

    class MemoryKeyring(keyring.backend.KeyringBackend):
        priority = 1

        def __init__(self) -> None:
            super().__init__()
            self._values: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self._values.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self._values[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if self._values.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError(username)

    return SecretStore(MemoryKeyring(), service=service, place=DEMO_MEMORY)


def emulator_settings(exports: dict[str, str]) -> dict[str, str]:
    """Keyword arguments for ``load_settings`` from the emulator's ``export`` lines."""
    return {
        name.removeprefix("COLABTRAY_").lower(): value
        for name, value in exports.items()
        if name.startswith("COLABTRAY_") and name != "COLABTRAY_EMULATOR_URL"
    }
