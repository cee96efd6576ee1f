"""Yes-or-no questions a runtime makes the app ask the person: may it read a secret, may it
open Google's consent page. Asked once per key at a time, through whatever the face offers (a
notification with two buttons, a small window, a line on stdout with the commands that
answer it); answered by a click or by ``colabtray secret allow|deny`` / the control channel.
No answer within the question's time is no.
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
    yes: str  # the button that says yes ("Allow", "Open consent page")
    no: str  # the button that says no ("Deny")
    commands: str = ""  # how to answer from a terminal (headless)


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


class Questions:
    """The questions waiting for an answer, and the asker that shows them."""

    def __init__(self, asker: Asker | None = None) -> None:
        self.asker: Asker = asker or QuietAsker()
        self._waiting: dict[str, asyncio.Future[bool]] = {}

    def pending(self) -> list[str]:
        return [key for key, answer in self._waiting.items() if not answer.done()]

    async def ask(self, question: Question, within: float) -> bool:
        """The person's answer; False when they say no or do not answer within ``within``.
        Asking what is already being asked waits for that same answer."""
        waiting = self._waiting.get(question.key)
        if waiting is None or waiting.done():
            waiting = asyncio.get_running_loop().create_future()
            self._waiting[question.key] = waiting
            self.asker.ask(question, lambda yes: self.answer(question.key, yes))
        try:
            async with asyncio.timeout(within):
                return await asyncio.shield(waiting)
        except TimeoutError:
            self.answer(question.key, False)
            return False
        finally:
            if waiting.done() and self._waiting.get(question.key) is waiting:
                del self._waiting[question.key]
                with contextlib.suppress(Exception):
                    self.asker.withdraw(question.key)

    def answer(self, key: str, yes: bool) -> bool:
        """Answer a waiting question (a click, a command); False if none waits under ``key``."""
        waiting = self._waiting.get(key)
        if waiting is None or waiting.done():
            return False
        waiting.set_result(yes)
        return True
