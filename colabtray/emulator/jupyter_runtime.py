"""Launcher for one emulated runtime: a real ``jupyter_server`` with ipykernel.

Run as ``python -m colabtray.emulator.jupyter_runtime --port P --root-dir D``; the Jupyter token
comes from the environment variable ``COLABTRAY_EMULATOR_JUPYTER_TOKEN`` so that it never
shows in a process listing.

Two things are patched before the server starts:

* kernel WebSockets get ``TCP_NODELAY`` (jupyter_server 2.21 leaves Nagle on, which adds
  ~40 ms to every execute round trip through delayed ACKs);
* on Linux the process asks to be sent SIGTERM when its parent (the emulator) dies, so a
  killed emulator leaves no Jupyter behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

TOKEN_ENV = "COLABTRAY_EMULATOR_JUPYTER_TOKEN"
PARENT_ENV = "COLABTRAY_EMULATOR_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us when the emulator goes away (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    expected = os.environ.get(PARENT_ENV)
    # The parent may have died between fork and prctl: then nobody would signal us.
    if expected and os.getppid() != int(expected):
        sys.exit(1)


def _patch_kernel_websocket_nodelay() -> None:
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    original_open = KernelWebsocketHandler.open

    async def open_with_nodelay(self: Any, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        await original_open(self, *args, **kwargs)

    KernelWebsocketHandler.open = open_with_nodelay  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="colabtray.emulator.jupyter_runtime")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root-dir", required=True)
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        parser.error(f"{TOKEN_ENV} is not set")

    _die_with_parent()
    _patch_kernel_websocket_nodelay()

    from jupyter_server.serverapp import ServerApp

    ServerApp.launch_instance(
        argv=[
            "--ip=127.0.0.1",
            f"--port={args.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={args.root_dir}",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            # Only the emulator's runtime proxy (token-checked) can reach this server, and it
            # forwards browsers' Origin headers unchanged (as Colab's proxy does).
            "--ServerApp.allow_origin=*",
            "--ServerApp.log_level=INFO",
            "--ServerApp.shutdown_no_activity_timeout=0",
        ]
    )


if __name__ == "__main__":
    main()
