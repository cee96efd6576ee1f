"""The secrets notebooks read with ``google.colab.userdata.get(NAME)``, and who may read them.

Each value is in the OS keyring (service ``colabtray-secrets``, one entry per name); the names,
and whether each may be read without asking, are in ``secrets.json`` in the config directory
(never a value). When a runtime asks for a name:

* a name there is no secret for: ``exists: false`` at once, no question;
* a name set with ``--no-ask``: the value;
* else the person is asked once per runtime and name ("Allow" holds while the runtime lives);
  "Deny" or no answer: ``access: false``.

The value goes only into the kernel's reply: never into a log line, a notification or a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from colabtray.auth.tokens import SecretStore
from colabtray.core.jsonfile import read_json, write_json
from colabtray.core.questions import Question, Questions
from colabtray.errors import UserError

SERVICE = "colabtray-secrets"
INDEX = "secrets.json"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")


class SecretNameError(UserError):
    pass


@dataclass(frozen=True)
class SecretAnswer:
    """What the kernel is told (google.colab.userdata's reply)."""

    exists: bool
    access: bool
    payload: str = ""

    def to_json(self) -> dict[str, object]:
        return {"exists": self.exists, "access": self.access, "payload": self.payload}


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise SecretNameError(
            f"{name!r} is not a secret name: use letters, digits and underscores, as "
            "HF_TOKEN, starting with a letter or underscore."
        )
    return name


class NotebookSecrets:
    """The secret names and values (see the module docstring)."""

    def __init__(self, config_dir: Path, store: SecretStore) -> None:
        self._index = config_dir / INDEX
        self._store = store

    @property
    def keyring_warning(self) -> str | None:
        return self._store.warning

    def names(self) -> dict[str, bool]:
        """Each name, and whether runtimes may read it without a question."""
        data = read_json(self._index)
        names = data.get("names") if isinstance(data, dict) else None
        if not isinstance(names, dict):
            return {}
        return {
            name: bool(entry.get("no_ask"))
            for name, entry in names.items()
            if isinstance(name, str) and _NAME.match(name) and isinstance(entry, dict)
        }

    async def set(self, name: str, value: str, *, no_ask: bool = False) -> None:
        check_name(name)
        if not value:
            raise SecretNameError("A secret needs a value; nothing was stored.")
        await self._store.aset(name, SecretStr(value))
        names = self.names()
        names[name] = no_ask
        self._write(names)

    async def remove(self, name: str) -> bool:
        """Forget a secret; False if there was none of that name."""
        names = self.names()
        if name not in names:
            return False
        await self._store.adelete(name)
        del names[name]
        self._write(names)
        return True

    async def value(self, name: str) -> str | None:
        if name not in self.names():
            return None
        found = await self._store.aget(name)
        return found.get_secret_value() if found is not None else None

    def _write(self, names: dict[str, bool]) -> None:
        write_json(self._index, {"names": {n: {"no_ask": ask} for n, ask in names.items()}})


def question_key(endpoint: str, name: str) -> str:
    return f"secret:{endpoint}:{name}"


class SecretGate:
    """Decides a runtime's request for a secret, asking the person where needed."""

    def __init__(self, secrets: NotebookSecrets, questions: Questions, *, within: float) -> None:
        self._secrets = secrets
        self._questions = questions
        self._within = within
        self._allowed: set[tuple[str, str]] = set()  # (endpoint, name) for the runtime's life

    async def answer(self, endpoint: str, runtime_name: str, name: str) -> SecretAnswer:
        names = self._secrets.names()
        if name not in names:
            return SecretAnswer(exists=False, access=False)
        if not names[name] and (endpoint, name) not in self._allowed:
            question = Question(
                key=question_key(endpoint, name),
                title=f"{runtime_name} asks for the secret {name}",
                body=(
                    f"A notebook on the runtime {runtime_name} wants to read the secret {name} "
                    "(google.colab.userdata). Allow it for as long as this runtime lives?"
                ),
                yes="Allow",
                no="Deny",
                commands=(
                    f'colabtray secret allow {name} "{runtime_name}" / '
                    f'colabtray secret deny {name} "{runtime_name}"'
                ),
            )
            if not await self._questions.ask(question, self._within):
                return SecretAnswer(exists=True, access=False)
            self._allowed.add((endpoint, name))
        value = await self._secrets.value(name)
        if value is None:  # the index names it but the keyring lost it
            return SecretAnswer(exists=False, access=False)
        return SecretAnswer(exists=True, access=True, payload=value)

    def forget_runtime(self, endpoint: str) -> None:
        self._allowed = {(ep, name) for ep, name in self._allowed if ep != endpoint}
