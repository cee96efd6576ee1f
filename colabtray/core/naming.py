"""Human names for runtimes ("T4 GPU", "CPU (1)") that stay put while the runtime lives.

Colab knows runtimes only by endpoint. colabtray names each one after its kind the first
time it sees it, numbering duplicates the way file managers do ("T4 GPU", "T4 GPU (1)"),
and keeps the names in a small JSON file in the state directory (nothing secret in it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from colabtray.colab.kinds import kind_label as kind_label  # its home; imported from here too
from colabtray.colab.kinds import shape_label as shape_label
from colabtray.colab.models import Runtime, is_one_line
from colabtray.core.jsonfile import read_json, write_json


def _numbered(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    index = 1
    while f"{base} ({index})" in taken:
        index += 1
    return f"{base} ({index})"


class RuntimeNames:
    """Endpoint → name, persisted; names of runtimes that are gone are released."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._names: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        data = read_json(self._path)
        if not isinstance(data, dict):
            return {}
        # A name with a line break or control character (an edited file) is given anew.
        return {str(k): v for k, v in data.items() if isinstance(v, str) and is_one_line(v)}

    def _save(self) -> None:
        write_json(self._path, self._names)

    def name_of(self, runtime: Runtime) -> str:
        """The runtime's name, giving it one (and saving) if it has none yet."""
        name = self._names.get(runtime.endpoint)
        if name is None:
            name = _numbered(
                kind_label(runtime.variant, runtime.accelerator), set(self._names.values())
            )
            self._names[runtime.endpoint] = name
            self._save()
        return name

    def sync(self, runtimes: Iterable[Runtime]) -> dict[str, str]:
        """Forget runtimes that are gone, name new ones; returns endpoint → name."""
        runtimes = list(runtimes)
        live = {r.endpoint for r in runtimes}
        if set(self._names) - live:
            self._names = {ep: name for ep, name in self._names.items() if ep in live}
            self._save()
        return {r.endpoint: self.name_of(r) for r in runtimes}


def find_endpoint(query: str, names: Mapping[str, str]) -> str | None:
    """The endpoint ``query`` names among ``names`` (endpoint → name): an endpoint, or a
    name in any case; None when nothing (or more than one runtime) matches."""
    wanted = query.strip()
    if wanted in names:
        return wanted
    matches = [ep for ep, name in names.items() if name.casefold() == wanted.casefold()]
    return matches[0] if len(matches) == 1 else None
