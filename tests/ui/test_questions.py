"""A runtime's question in the tray where no notification service offers buttons (as in this
test session): a small box with the question's own two buttons, whose click is the answer; and
the tray menu, which offers both answers to every question still open (its notification may
have been dismissed) until it is answered or expires."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMenu

from colabtray.colab.models import CPU, GPU
from colabtray.core.display import TrayState
from colabtray.core.questions import Question, Questions
from colabtray.system.notifications import Notifier
from colabtray.ui.questions import TrayAsker
from tests.fixtures.waiting import until
from tests.ui.conftest import action, offline_core, run, runtime, submenu, texts, with_runtimes

T4 = runtime("gpu-t4-s-aaa", GPU, "T4")
CPU_RT = runtime("m-s-ccc", CPU, None)

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


def shown(menu: QMenu, name: str) -> bool:
    try:
        action(menu, name)
    except LookupError:
        return False
    return True


def test_the_menu_answers_a_secret_question_nobody_answered_elsewhere(
    qapp, tmp_path: Path, make_tray
) -> None:
    core = offline_core(tmp_path)
    core.ready.email = "ada@example.com"
    with_runtimes(core, ("T4 GPU", T4), ("CPU", CPU_RT))
    tray = make_tray(core)  # no asker: as a notification dismissed, no face answers

    async def scenario() -> None:
        await core.notebook_secrets.set("HF_TOKEN", "s3cr3t-value", no_ask=False)
        asking = asyncio.ensure_future(core.secret_gate.answer(T4.endpoint, "T4 GPU", "HF_TOKEN"))
        key = f"question:secret:{T4.endpoint}:HF_TOKEN"
        await until(core.waiting_questions)
        assert core.tray_state() is TrayState.ATTENTION
        tray.menu.rebuild()
        question = submenu(tray.menu.menu, key)
        assert question.title() == "T4 GPU asks for the secret HF_TOKEN"
        assert texts(question) == ["Allow", "Deny"]
        assert "google.colab.userdata" in action(question, "question-yes").toolTip()
        action(question, "question-yes").trigger()
        answer = await asyncio.wait_for(asking, 10)
        assert answer.access is True and answer.payload == "s3cr3t-value"
        assert not core.waiting_questions() and core.tray_state() is TrayState.RUNNING
        tray.menu.rebuild()
        assert not shown(tray.menu.menu, key), "answered: gone from the menu"

        asking = asyncio.ensure_future(core.secret_gate.answer(CPU_RT.endpoint, "CPU", "HF_TOKEN"))
        key = f"question:secret:{CPU_RT.endpoint}:HF_TOKEN"
        await until(core.waiting_questions)
        tray.menu.rebuild()
        action(submenu(tray.menu.menu, key), "question-no").trigger()
        assert (await asyncio.wait_for(asking, 10)).access is False
        assert core.secret_gate.decisions(CPU_RT.endpoint) == {"HF_TOKEN": False}
        tray.menu.rebuild()
        assert not shown(tray.menu.menu, key)

    run(qapp, scenario())


@pytest.mark.parametrize("asked_by", ["secret", "consent"])
def test_a_question_leaves_the_open_menu_when_it_expires(
    qapp, tmp_path: Path, make_tray, asked_by: str
) -> None:
    core = offline_core(tmp_path, idle_prompt_timeout=1.0)  # how long a question stays open
    core.ready.email = "ada@example.com"
    with_runtimes(core, ("T4 GPU", T4))
    tray = make_tray(core)

    async def scenario() -> None:
        if asked_by == "secret":
            await core.notebook_secrets.set("HF_TOKEN", "s3cr3t-value", no_ask=False)
            asking = core.secret_gate.answer(T4.endpoint, "T4 GPU", "HF_TOKEN")
            answers = ["Allow", "Deny"]
        else:
            asking = core.may_open_consent(T4.endpoint, "dfs_ephemeral")
            answers = ["Open consent page", "Deny"]
        task = asyncio.ensure_future(asking)
        await until(core.waiting_questions)
        (question,) = core.waiting_questions()
        tray.menu.menu.popup(QPoint(40, 40))
        await until(tray.menu.menu.isVisible)
        entry = submenu(tray.menu.menu, f"question:{question.key}")
        assert texts(entry) == answers
        await until(lambda: not shown(tray.menu.menu, f"question:{question.key}"), 10)
        assert tray.menu.menu.isVisible(), "the open menu follows the core"
        result = await asyncio.wait_for(task, 10)
        assert (result.access if asked_by == "secret" else result) is False
        assert not core.waiting_questions() and core.tray_state() is TrayState.RUNNING
        tray.menu.menu.hide()

    run(qapp, scenario())
