"""The port and secret of each bridged runtime, kept so its URL survives a restart of the app.

``<state dir>/bridge.json``, readable by the user only (it holds the bridge secrets, as
Jupyter's own server files hold theirs). An entry lives as long as its runtime.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from colabtray.system.jsonfile import read_json, write_json

FILE_NAME = "bridge.json"


@dataclass(frozen=True)
class Address:
    port: int  # 0 until a port was bound
    secret: str


class AddressBook:
    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / FILE_NAME
        self._entries: dict[str, Address] = {}
        data = read_json(self._path)
        runtimes = data.get("runtimes") if isinstance(data, dict) else None
        if isinstance(runtimes, dict):
            for endpoint, entry in runtimes.items():
                port = entry.get("port") if isinstance(entry, dict) else None
                secret = entry.get("secret") if isinstance(entry, dict) else None
                if not (isinstance(port, int) and 0 <= port < 65536):
                    continue
                if isinstance(secret, str) and len(secret) >= 32:
                    self._entries[str(endpoint)] = Address(port, secret)

    def get(self, endpoint: str) -> Address:
        """The remembered address, or a new secret with no port yet."""
        return self._entries.get(endpoint) or Address(0, secrets.token_urlsafe(32))

    def put(self, endpoint: str, address: Address) -> None:
        if self._entries.get(endpoint) != address:
            self._entries[endpoint] = address
            self._save()

    def endpoints(self) -> set[str]:
        return set(self._entries)

    def drop(self, endpoints: set[str]) -> None:
        if endpoints & set(self._entries):
            for endpoint in endpoints:
                self._entries.pop(endpoint, None)
            self._save()

    def _save(self) -> None:
        write_json(
            self._path,
            {
                "version": 1,
                "runtimes": {
                    ep: {"port": a.port, "secret": a.secret} for ep, a in self._entries.items()
                },
            },
        )
