"""Human names for runtimes ("T4 GPU", "CPU (1)") that stay put while the runtime lives.

Colab knows runtimes only by endpoint. colabtray names each one after its kind the first
time it sees it, numbering duplicates the way file managers do ("T4 GPU", "T4 GPU (1)"),
and keeps the names in a small JSON file in the state directory (nothing secret in it).
Every signed-in account's runtimes are named from the same file, so a name is unique across
accounts; each entry records its account (``owner``), so that one account's listing only
releases the names of its own runtimes that are gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from colabtray.colab.kinds import kind_label as kind_label  # its home; imported from here too
from colabtray.colab.kinds import shape_label as shape_label
from colabtray.colab.models import Runtime, is_one_line
from colabtray.system.jsonfile import read_json, write_json


def _numbered(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    index = 1
    while f"{base} ({index})" in taken:
        index += 1
    return f"{base} ({index})"


class RuntimeNames:
    """Endpoint → name, persisted with each name's account; names of runtimes that are gone
    are released."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._names: dict[str, str] = {}
        self._owners: dict[str, str] = {}  # endpoint → account; absent: not known (old file)
        self._load()

    def _load(self) -> None:
        data = read_json(self._path)
        if not isinstance(data, dict):
            return
        # A name with a line break or control character (an edited file) is given anew.
        for endpoint, value in data.items():
            # {"name", "owner"}; a bare name is the first format (one account, owner unknown)
            entry = value if isinstance(value, dict) else {"name": value}
            name, owner = entry.get("name"), entry.get("owner")
            if isinstance(name, str) and is_one_line(name):
                self._names[str(endpoint)] = name
                if isinstance(owner, str):
                    self._owners[str(endpoint)] = owner

    def _save(self) -> None:
        entries: dict[str, dict[str, str]] = {}
        for endpoint, name in self._names.items():
            owner = self._owners.get(endpoint)
            entries[endpoint] = {"name": name} if owner is None else {"name": name, "owner": owner}
        write_json(self._path, entries)

    def name_of(self, runtime: Runtime, owner: str = "") -> str:
        """The runtime's name, giving it one (and saving) if it has none yet."""
        name = self._names.get(runtime.endpoint)
        if name is None:
            name = _numbered(
                kind_label(runtime.variant, runtime.accelerator), set(self._names.values())
            )
            self._names[runtime.endpoint] = name
            self._owners[runtime.endpoint] = owner
            self._save()
        elif self._owners.get(runtime.endpoint) != owner:
            self._owners[runtime.endpoint] = owner
            self._save()
        return name

    def sync(self, runtimes: Iterable[Runtime], owner: str = "") -> dict[str, str]:
        """``owner``'s runtimes now: its runtimes that are gone (and names of unknown owner
        not among them) are forgotten, new ones named; returns endpoint → name."""
        runtimes = list(runtimes)
        live = {r.endpoint for r in runtimes}
        gone = {ep for ep in self._names if ep not in live and self._owners.get(ep, owner) == owner}
        if gone:
            self._names = {ep: name for ep, name in self._names.items() if ep not in gone}
            self._owners = {ep: who for ep, who in self._owners.items() if ep not in gone}
            self._save()
        return {r.endpoint: self.name_of(r, owner) for r in runtimes}


def find_endpoint(query: str, names: Mapping[str, str]) -> str | None:
    """The endpoint ``query`` names among ``names`` (endpoint → name): an endpoint, or a
    name in any case; None when nothing (or more than one runtime) matches."""
    wanted = query.strip()
    if wanted in names:
        return wanted
    matches = [ep for ep, name in names.items() if name.casefold() == wanted.casefold()]
    return matches[0] if len(matches) == 1 else None
