"""The secrets notebooks read with ``google.colab.userdata.get(NAME)``, and who may read them.

Each value is in the OS keyring (service ``colabtray-secrets``, one entry per name); the names,
and whether each may be read without asking, are in ``secrets.json`` in the config directory
(never a value). When a runtime asks for a name:

* a name there is no secret for: ``exists: false`` at once, no question;
* a name set with ``--no-ask``: the value;
* else the person is asked once per runtime and name: "Allow" holds while the runtime lives,
  and so does "Deny" (``access: false`` at once, never a new question, however often the
  notebook asks), until the person reverses it (``colabtray secret allow|deny NAME RUNTIME``);
  no answer: ``access: false``, and the next request asks again.

google.colab's ``userdata.get`` waits 10 s for its reply, then fails. So every request is
answered within ``REPLY_WITHIN``: the person's answer if given by then, else ``access: false``
while the question stays open (for the question's own time); an Allow given later serves the
next request, and the question says so ("Allow, then run the cell again").

The value goes only into the kernel's reply: never into a log line, a notification or a file.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from colabtray import hints
from colabtray.auth.tokens import SecretStore
from colabtray.core.questions import Answer, Question, Questions
from colabtray.errors import UserError
from colabtray.system.jsonfile import read_json, write_json

SERVICE = "colabtray-secrets"
INDEX = "secrets.json"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
REPLY_WITHIN = 8.0  # seconds: inside userdata.get's 10 s wait


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

    @property
    def place(self) -> str:
        """Where the values are kept, to end "kept in …"."""
        return self._store.place

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

    def __init__(
        self,
        secrets: NotebookSecrets,
        questions: Questions,
        *,
        within: float,
        reply_within: float = REPLY_WITHIN,
    ) -> None:
        self._secrets = secrets
        self._questions = questions
        self._within = within  # how long a question stays open
        self._reply_within = reply_within  # how long a request waits for its answer
        # (endpoint, name) → the person's answer, for the runtime's life
        self._decided: dict[tuple[str, str], bool] = {}
        self._asking: dict[tuple[str, str], Answer] = {}

    async def answer(self, endpoint: str, runtime_name: str, name: str) -> SecretAnswer:
        names = self._secrets.names()
        if name not in names:
            return SecretAnswer(exists=False, access=False)
        allowed = self._decided.get((endpoint, name))  # a Deny is answered at once
        if allowed is None and not names[name]:
            question = self._ask(endpoint, runtime_name, name)
            try:
                async with asyncio.timeout(self._reply_within):
                    allowed = await asyncio.shield(question)
            except TimeoutError:
                return SecretAnswer(exists=True, access=False)  # the question stays open
        if allowed is False or (allowed is None and not names[name]):
            return SecretAnswer(exists=True, access=False)
        value = await self._secrets.value(name)
        if value is None:  # the index names it but the keyring lost it
            return SecretAnswer(exists=False, access=False)
        return SecretAnswer(exists=True, access=True, payload=value)

    def decide(self, endpoint: str, name: str, allow: bool) -> bool:
        """The person's answer from outside the question (a command, the Secrets window): it
        answers the open question, or reverses an earlier answer for that runtime and name.
        False when the runtime has neither asked nor been answered about ``name``."""
        if self._questions.answer(question_key(endpoint, name), allow):
            return True  # recorded by _record
        if (endpoint, name) not in self._decided:
            return False
        self._decided[(endpoint, name)] = allow
        return True

    def decisions(self, endpoint: str) -> dict[str, bool]:
        """What the person answered for a runtime: name → allowed."""
        return {n: allowed for (ep, n), allowed in self._decided.items() if ep == endpoint}

    def forget_runtime(self, endpoint: str) -> None:
        self._decided = {key: v for key, v in self._decided.items() if key[0] != endpoint}
        for key in [key for key in self._asking if key[0] == endpoint]:
            self._questions.close(question_key(*key))

    def _ask(self, endpoint: str, runtime_name: str, name: str) -> Answer:
        """The open question for this runtime and name (one, however many requests wait)."""
        key = (endpoint, name)
        asking = self._asking.get(key)
        if asking is not None:
            return asking
        question = Question(
            key=question_key(endpoint, name),
            title=f"{runtime_name} asks for the secret {name}",
            body=(
                f"A notebook on the runtime {runtime_name} wants to read the secret {name} "
                "(google.colab.userdata). Allow it for as long as this runtime lives? "
                "Your answer holds until you change it. The notebook cannot wait long: "
                "Allow, then run the cell again."
            ),
            yes="Allow",
            no="Deny",
            commands=(
                f"answer with {hints.command('secret', 'allow', name, runtime_name)} (then run "
                f"the cell again) / {hints.command('secret', 'deny', name, runtime_name)}"
            ),
        )
        asking = self._questions.open(question, self._within)
        self._asking[key] = asking
        asking.add_done_callback(lambda done: self._record(key, done))
        return asking

    def _record(self, key: tuple[str, str], done: Answer) -> None:
        del self._asking[key]
        answer = None if done.cancelled() else done.result()
        if answer is not None:
            self._decided[key] = answer
