"""A runtime's question in the tray where no notification service offers buttons (as in this
test session): a small box with the question's own two buttons, whose click is the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from colabtray.core.questions import Question, Questions
from colabtray.ui.notifications import Notifier
from colabtray.ui.questions import TrayAsker
from tests.fixtures.waiting import until
from tests.ui.conftest import offline_core, run

QUESTION = Question(
    key="secret:m-s-1:HF_TOKEN",
    title="CPU asks for the secret HF_TOKEN",
    body="A notebook on the runtime CPU wants to read the secret HF_TOKEN.",
    yes="Allow",
    no="Deny",
)


def test_the_box_asks_and_its_buttons_answer(qapp) -> None:
    notifier = Notifier()
    asker = TrayAsker(notifier, window_only=True)
    questions = Questions(asker)

    async def scenario() -> None:
        for click, expected in (("Allow", True), ("Deny", False)):
            asking = asyncio.create_task(questions.ask(QUESTION, 30))
            await until(lambda: QUESTION.key in asker.boxes)
            box = asker.boxes[QUESTION.key]
            assert box.windowTitle() == QUESTION.title and box.text() == QUESTION.body
            (button,) = [b for b in box.buttons() if b.text() == click]
            button.click()
            assert await asyncio.wait_for(asking, 10) is expected
            assert QUESTION.key not in asker.boxes

        asking = asyncio.create_task(questions.ask(QUESTION, 0.3))  # nobody answers
        await until(lambda: QUESTION.key in asker.boxes)
        assert await asyncio.wait_for(asking, 10) is False
        await until(lambda: QUESTION.key not in asker.boxes)  # withdrawn, not left open

    try:
        run(qapp, scenario())
    finally:
        notifier.close()


def test_the_drive_question_says_to_run_the_cell_again_after_its_2_minutes(
    qapp, tmp_path: Path
) -> None:
    notifier = Notifier()
    asker = TrayAsker(notifier, window_only=True)
    core = offline_core(tmp_path)
    core.set_asker(asker)

    async def scenario() -> None:
        asking = asyncio.create_task(core.may_open_consent("m-s-1", "dfs_ephemeral"))
        box = await until(lambda: next(iter(asker.boxes.values()), None))
        assert "drive.mount waits 2 minutes" in box.text()
        assert box.text().endswith("if you allow it later, run the cell again.")
        (deny,) = [b for b in box.buttons() if b.text() == "Deny"]
        deny.click()
        assert await asyncio.wait_for(asking, 10) is False

    try:
        run(qapp, scenario())
    finally:
        notifier.close()
