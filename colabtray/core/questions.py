"""Yes-or-no questions the app asks the person: may a runtime read a secret, may it open
Google's consent page, keep an idle runtime or give it back (keep-alive's question). Asked
once per key while open, however often a runtime asks (a flood of requests shows one
question), through whatever the face offers (a notification with two buttons, a small window,
a line on stdout with the commands that answer it); answered by a click, by the tray menu, or
by ``colabtray secret allow|deny`` / ``keep`` / ``remove`` through the control channel. A
question stays open for the time it was opened with; no answer by then is no answer
(``None``), which callers take as no (the idle question: let Colab reclaim it). The open
questions stay readable (:meth:`Questions.waiting`, the tray menu's entries), so one whose
notification was dismissed can still be answered until it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Question:
    key: str  # what is being asked, e.g. "secret:<endpoint>:HF_TOKEN" (one question at a time)
    title: str
    body: str
    yes: str  # the button that says yes ("Allow", "Open consent page", "Cancel")
    no: str  # the button that says no ("Deny", "Disconnect now")
    commands: str = ""  # how to answer from a terminal, a phrase (headless prints it)
    seconds: float = 0.0  # how long it stands, where the face counts down (0: it does not)
    countdown: str = ""  # what the countdown says, "{}" the time left ("Disconnecting in {}…")


def consent_question(endpoint: str, runtime: str, auth_type: str) -> Question:
    """May the runtime send the person to Google's consent page (``drive.mount``, ``auth``)?"""
    drive = auth_type == "dfs_ephemeral"
    what = "mount your Google Drive" if drive else "use your Google credentials"
    # drive.mount gives up after 2 minutes (the bridge answers it before that).
    late = " drive.mount waits 2 minutes: if you allow it later, run the cell again."
    return Question(
        key=f"consent:{endpoint}:{auth_type}",
        title=f"{runtime} asks to {what}",
        body=(
            f"A notebook on {runtime} asks to {what}. Open Google's consent page in your "
            f"browser to decide there, or deny it here.{late if drive else ''}"
        ),
        yes="Open consent page",
        no="Deny",
    )


class Asker(Protocol):
    """Shows questions (the tray: a notification or a window; headless: stdout)."""

    def ask(self, question: Question, answer: Callable[[bool], None]) -> None: ...

    def withdraw(self, key: str) -> None: ...


class QuietAsker:
    """No face to ask with: every question goes unanswered (which is no)."""

    def ask(self, question: Question, answer: Callable[[bool], None]) -> None:
        pass

    def withdraw(self, key: str) -> None:
        pass


Answer = asyncio.Future[bool | None]  # True, False, or None: not answered in time


class Questions:
    """The questions open now, and the asker that shows them."""

    def __init__(
        self, asker: Asker | None = None, changed: Callable[[], None] = lambda: None
    ) -> None:
        self.asker: Asker = asker or QuietAsker()
        self._changed = changed  # called when a question opens or closes
        self._open: dict[str, Answer] = {}
        self._asked: dict[str, Question] = {}

    def pending(self) -> list[str]:
        return list(self._open)

    def waiting(self) -> list[Question]:
        """The open questions, oldest first."""
        return [self._asked[key] for key in self._open]

    def open(self, question: Question, within: float) -> Answer:
        """The answer to come: the person's True or False, or None after ``within`` seconds.
        A question already open under the same key is not shown again: its answer is given."""
        waiting = self._open.get(question.key)
        if waiting is not None:
            return waiting
        loop = asyncio.get_running_loop()
        waiting = loop.create_future()
        self._open[question.key] = waiting
        self._asked[question.key] = question
        timer = loop.call_later(within, self._settle, question.key, None)
        waiting.add_done_callback(lambda _done: timer.cancel())

        def answered(yes: bool) -> None:
            self.answer(question.key, yes)

        self.asker.ask(question, answered)
        self._changed()
        return waiting

    async def ask(self, question: Question, within: float) -> bool:
        """True only if the person says yes within ``within`` seconds."""
        return await asyncio.shield(self.open(question, within)) is True

    def answer(self, key: str, yes: bool) -> bool:
        """Answer an open question (a click, a command); False if none is open under ``key``."""
        return self._settle(key, yes)

    def close(self, key: str) -> None:
        """Withdraw an open question unanswered (its runtime is gone)."""
        self._settle(key, None)

    def _settle(self, key: str, result: bool | None) -> bool:
        waiting = self._open.pop(key, None)
        self._asked.pop(key, None)
        if waiting is None or waiting.done():
            return False
        waiting.set_result(result)
        with contextlib.suppress(Exception):
            self.asker.withdraw(key)
        self._changed()
        return True
