"""``drive.mount()``: asks the frontend for Drive credentials (``dfs_ephemeral``), then
"mounts" an empty local folder in its place (the emulator has no Google Drive)."""

from __future__ import annotations

import os

from google.colab import _message


def mount(
    mountpoint: str,
    force_remount: bool = False,
    timeout_ms: int = 120000,
    readonly: bool = False,
    *,
    channel: str = "stdin",
) -> None:
    _message.blocking_request(
        "request_auth", {"authType": "dfs_ephemeral"}, timeout_ms / 1000, channel=channel
    )
    os.makedirs(os.path.join(mountpoint, "MyDrive"), exist_ok=True)
    print(f"Mounted at {mountpoint}")
