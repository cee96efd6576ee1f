"""The new-runtime dialog, the disconnect confirmation, live resources and the idle prompt's
menu entries, clicked through to the emulator on the app's own qasync loop."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from colabtray.colab import errors
from colabtray.colab.models import CPU
from colabtray.core import offers
from colabtray.core.app import Core
from colabtray.core.display import TrayState
from colabtray.ui.new_runtime import NewRuntimeDialog
from tests.fixtures.colab import settings_for
from tests.fixtures.emulator import Emulator
from tests.fixtures.waiting import until
from tests.ui.conftest import (
    action,
    run,
    submenu,
    texts,
)


def emulator_core(emulator: Emulator, tmp_path: Path, **overrides: object) -> Core:
    values: dict[str, object] = {
        "poll_interval": 0.3,
        "retry_attempts": 1,
        "keepalive_interval": 600.0,  # unless a test is about keep-alive
        "log_dir": tmp_path / "log",
    }
    settings = settings_for(emulator, tmp_path, **(values | overrides))
    return Core(settings)


def _dialog(qtbot, core: Core) -> NewRuntimeDialog:
    dialog = NewRuntimeDialog(core)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_a_free_account_sees_what_it_may_have(qapp, qtbot, emulator_factory, tmp_path: Path):
    emulator = emulator_factory("--account", "free@example.com:free")
    core = emulator_core(emulator, tmp_path, account_api="gapi")  # the plan named at once

    async def scenario() -> None:
        dialog = _dialog(qtbot, core)
        assert dialog.status.text() == "Reading what this account may have…"
        assert not dialog.create_button.isEnabled()
        await until(lambda: dialog.offer_buttons())
        buttons = dialog.offer_buttons()
        assert {label: b.isEnabled() for label, b in buttons.items()} == {
            "CPU": True,
            "T4 GPU": True,
            "L4 GPU": False,
            "A100 GPU": False,
            "H100 GPU": False,
            "v5e TPU": True,
            "v2-8 TPU": False,
            "v6e TPU": False,
        }
        assert buttons["H100 GPU"].text() == "H100 GPU (not on your plan)"
        assert buttons["H100 GPU"].toolTip() == offers.NOT_ON_PLAN
        assert buttons["T4 GPU"].isChecked(), "the first GPU it may have is the default"
        assert not dialog.high_ram.isEnabled() and not dialog.high_ram.isChecked()
        assert dialog.high_ram_note.text() == offers.HIGH_RAM_NEEDS_PLAN
        buttons["v5e TPU"].click()
        assert dialog.high_ram.isChecked() and not dialog.high_ram.isEnabled()
        assert dialog.high_ram_note.text() == offers.HIGH_RAM_ONLY
        assert dialog.create_button.isEnabled()
        dialog.close()
        await core.stop()

    run(qapp, scenario())


def test_a_pro_account_may_choose_high_ram(qapp, qtbot, emulator: Emulator, tmp_path: Path):
    core = emulator_core(emulator, tmp_path, account_api="gapi")  # the plan named at once

    async def scenario() -> None:
        dialog = _dialog(qtbot, core)
        await until(lambda: dialog.offer_buttons())
        buttons = dialog.offer_buttons()
        assert [label for label, b in buttons.items() if not b.isEnabled()] == [
            "H100 GPU",
            "v2-8 TPU",
        ]
        assert dialog.high_ram.isEnabled() and dialog.high_ram_note.isHidden()
        buttons["L4 GPU"].click()
        assert dialog.high_ram.isChecked() and not dialog.high_ram.isEnabled()
        buttons["A100 GPU"].click()
        assert dialog.high_ram.isEnabled() and not dialog.high_ram.isChecked()
        dialog.close()
        await core.stop()

    run(qapp, scenario())


@pytest.mark.parametrize(
    ("setup", "undo", "sentence"),
    [
        (
            ("unavailable", {"accelerators": ["T4"]}),
            ("unavailable", {"accelerators": []}),
            errors.AcceleratorUnavailableError("T4").message,
        ),
        (
            ("accounts/ada@example.com", {"max_runtimes": 0}),
            ("accounts/ada@example.com", {"max_runtimes": None}),
            errors.TooManyRuntimesError().message,
        ),
        (
            ("accounts/ada@example.com", {"quota_outcome": 1}),
            ("accounts/ada@example.com", {"quota_outcome": None}),
            errors.QuotaExceededError().message,
        ),
        (
            ("accounts/ada@example.com", {"denylisted": True}),
            ("accounts/ada@example.com", {"denylisted": False}),
            errors.DenylistedError().message,
        ),
    ],
    ids=["no-t4-free", "too-many", "quota", "denylisted"],
)
def test_each_refusal_is_a_sentence_in_the_dialog(
    qapp, qtbot, emulator: Emulator, tmp_path: Path, setup, undo, sentence
):
    core = emulator_core(emulator, tmp_path, account_api="gapi")  # the plan named at once
    emulator.admin("POST", *setup)

    async def scenario() -> None:
        dialog = _dialog(qtbot, core)
        await until(lambda: dialog.offer_buttons())
        QTest.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
        assert not dialog.create_button.isEnabled(), "a second click would assign twice"
        assert dialog.status.text().startswith("Asking Colab for a T4 GPU runtime")
        await until(lambda: dialog.status.property("error"))
        assert dialog.status.text() == sentence
        assert dialog.isVisible() and dialog.create_button.isEnabled()
        dialog.close()
        await core.stop()

    run(qapp, scenario())
    emulator.admin("POST", *undo)
    assert emulator.state()["runtimes"] == []


def test_create_look_and_disconnect_with_confirmation(
    qapp, qtbot, emulator: Emulator, tmp_path: Path, make_tray
):
    core = emulator_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        await core.start()
        await until(lambda: core.fleet.state.loaded)
        tray.new_runtime()
        dialog = tray.dialog
        assert dialog is not None
        await until(lambda: dialog.offer_buttons())
        dialog.offer_buttons()["CPU"].click()
        QTest.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
        await until(lambda: not dialog.isVisible(), 60)
        assert [r.label for r in core.rows()] == ["CPU · Standard — running"]
        endpoint = core.rows()[0].endpoint

        tray.menu.rebuild()
        runtime_menu = submenu(tray.menu.menu, f"runtime:{endpoint}")
        runtime_menu.aboutToShow.emit()  # what opening the submenu does
        await until(lambda: "System RAM" in str(texts(runtime_menu)))
        lines = [t for t in texts(runtime_menu) if isinstance(t, str)]
        assert any(t.startswith("System RAM: ") and t.endswith(" GB") for t in lines)
        assert any(t.startswith("Disk") for t in lines)
        assert not any(t.startswith("GPU RAM") for t in lines), "a CPU runtime has no GPU"

        action(runtime_menu, "disconnect").trigger()
        box = tray.confirmation
        assert isinstance(box, QMessageBox) and box.isVisible()
        assert box.text() == "Disconnect “CPU” (CPU, Standard)?"
        assert "deletes what is on it" in box.informativeText()
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Cancel).click()
        await until(lambda: tray.confirmation is None)
        assert len(emulator.state()["runtimes"]) == 1, "Cancel disconnected it"

        action(runtime_menu, "disconnect").trigger()
        box = tray.confirmation
        assert box is not None
        disconnect = next(b for b in box.buttons() if b.objectName() == "disconnect")
        disconnect.click()
        await until(lambda: not core.rows() and not emulator.state()["runtimes"], 30)
        assert not tray._messages, "an error was shown"
        await core.stop()

    run(qapp, scenario(), 120)


def test_an_idle_runtime_needs_attention_and_can_be_kept(
    qapp, emulator: Emulator, tmp_path: Path, make_tray
):
    core = emulator_core(
        emulator,
        tmp_path,
        keepalive_interval=0.3,
        idle_threshold=0.5,
        idle_prompt_timeout=60.0,
        idle_extension=600.0,
    )
    tray = make_tray(core)

    async def scenario() -> None:
        await core.start()
        _, runtime = await core.create("CPU", None)
        await until(lambda: runtime.endpoint in core.keepalive.pending(), 30)
        assert core.tray_state() is TrayState.ATTENTION
        assert "Needs attention: CPU idle" in tray.icon.toolTip()
        tray.menu.rebuild()
        entry = action(tray.menu.menu, f"runtime:{runtime.endpoint}")
        assert entry.text() == "CPU · Standard — idle: keep running?"
        assert texts(entry.menu())[:3] == ["Keep running", "Disconnect now", "---"]
        action(entry.menu(), "keep-running").trigger()
        await until(lambda: not core.keepalive.pending())
        assert core.tray_state() is TrayState.RUNNING
        assert len(emulator.state()["runtimes"]) == 1
        await core.stop()

    run(qapp, scenario(), 90)


def test_a_busy_accelerator_offers_the_plan_s_others_one_click_each(
    qapp, qtbot, emulator: Emulator, tmp_path: Path
):
    core = emulator_core(emulator, tmp_path)
    emulator.admin("POST", "unavailable", {"accelerators": ["A100", "T4"]})

    async def scenario() -> None:
        dialog = _dialog(qtbot, core)
        await until(lambda: dialog.offer_buttons())
        assert dialog.fallback_buttons() == {} and dialog.fallbacks.isHidden()
        dialog.offer_buttons()["A100 GPU"].click()
        QTest.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
        await until(lambda: dialog.status.property("error"))
        assert dialog.status.text() == errors.AcceleratorUnavailableError("A100").plain
        tries = dialog.fallback_buttons()
        assert list(tries) == ["T4 GPU", "L4 GPU"], "the plan's other GPUs, in its order"
        assert [b.text() for b in tries.values()] == ["Try T4 GPU", "Try L4 GPU"]
        assert all(b.isVisible() for b in tries.values())

        QTest.mouseClick(tries["T4 GPU"], Qt.MouseButton.LeftButton)  # one click: choose, ask
        assert dialog.offer_buttons()["T4 GPU"].isChecked()
        assert dialog.status.text().startswith("Asking Colab for a T4 GPU runtime")
        assert dialog.fallbacks.isHidden() and not dialog.create_button.isEnabled()
        await until(lambda: dialog.status.property("error"))
        assert dialog.status.text() == errors.AcceleratorUnavailableError("T4").plain
        assert list(dialog.fallback_buttons()) == ["L4 GPU"], "A100 was not free just now"

        QTest.mouseClick(dialog.fallback_buttons()["L4 GPU"], Qt.MouseButton.LeftButton)
        await until(lambda: not dialog.isVisible(), 60)
        assert [r.label for r in core.rows()] == ["L4 GPU · High-RAM — running"]
        await core.stop()

    run(qapp, scenario(), 120)
    assert [r["accelerator"] for r in emulator.state()["runtimes"]] == ["L4"]


def test_when_every_gpu_is_busy_the_dialog_says_which_it_tried(
    qapp, qtbot, emulator: Emulator, tmp_path: Path
):
    core = emulator_core(emulator, tmp_path)
    emulator.admin("POST", "unavailable", {"accelerators": ["L4", "T4"]})

    async def scenario() -> None:
        dialog = _dialog(qtbot, core)
        await until(lambda: dialog.offer_buttons())
        dialog.offer_buttons()["L4 GPU"].click()
        QTest.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
        await until(lambda: dialog.status.property("error"))
        QTest.mouseClick(dialog.fallback_buttons()["T4 GPU"], Qt.MouseButton.LeftButton)
        await until(lambda: dialog.status.property("error"))
        assert list(dialog.fallback_buttons()) == ["A100 GPU"]
        emulator.admin("POST", "unavailable", {"accelerators": ["L4", "T4", "A100"]})
        QTest.mouseClick(dialog.fallback_buttons()["A100 GPU"], Qt.MouseButton.LeftButton)
        await until(lambda: dialog.status.property("error"))
        assert dialog.status.text() == errors.NoneFreeError("GPU", ["L4", "T4", "A100"]).message
        assert dialog.fallback_buttons() == {} and dialog.fallbacks.isHidden()
        assert dialog.create_button.isEnabled(), "the person may still pick another kind"
        dialog.close()
        await core.stop()

    run(qapp, scenario(), 120)
    assert emulator.state()["runtimes"] == []


@pytest.mark.parametrize(
    ("account", "assign_first", "plan", "high_ram_offered", "note"),
    [
        ("pat@example.com:pro:0", True, "Colab plan: Pro", True, None),
        (
            "payg@example.com:free:50",
            True,
            "Colab plan: free (no subscription)",
            False,
            offers.HIGH_RAM_NEEDS_PLAN,
        ),
        (
            "payg@example.com:free:50",
            False,
            "Plan unknown: Colab names it when a runtime is assigned.",
            True,
            offers.PLAN_UNKNOWN,
        ),
    ],
    ids=["pro-without-units", "units-without-plan", "plan-not-yet-named"],
)
def test_the_plan_not_the_balance_decides_high_ram(
    qapp,
    qtbot,
    emulator_factory,
    tmp_path: Path,
    account,
    assign_first,
    plan,
    high_ram_offered,
    note,
):
    """Colab names the plan in an assign reply (ccu-info never does): after one runtime the
    dialog knows it; before any, it says the plan is unknown and lets Colab decide."""
    emulator = emulator_factory("--account", account)
    core = emulator_core(emulator, tmp_path)

    async def scenario() -> None:
        if assign_first:
            await core.create(CPU, None)
        dialog = _dialog(qtbot, core)
        await until(lambda: dialog.offer_buttons())
        assert dialog.plan.text() == plan
        for label in ("CPU", "T4 GPU"):
            dialog.offer_buttons()[label].click()
            assert dialog.high_ram.isEnabled() is high_ram_offered, label
            assert dialog.high_ram_note.isHidden() is (note is None)
            assert dialog.high_ram_note.text() == (note or "")
        dialog.close()
        await core.stop()

    run(qapp, scenario())


def test_the_dialog_makes_the_runtime_for_the_account_it_opened_for(
    qapp, qtbot, emulator_factory, tmp_path: Path
):
    """With two accounts signed in, the dialog names the active one in its title and makes
    the runtime there, even if another account became active while it was open."""
    emulator = emulator_factory("--auto-approve")  # its consent page signs in login_hint
    core = emulator_core(emulator, tmp_path, access_token=None)

    def follow(url: str) -> None:  # the browser, once the person allowed
        with httpx2.Client(follow_redirects=True, timeout=30) as http:
            http.get(url)

    async def scenario() -> None:
        await core.start()
        try:
            await core.sign_in(follow, login_hint="ada@example.com")
            await core.sign_in(follow, login_hint="free@example.com")
            dialog = _dialog(qtbot, core)
            assert dialog.windowTitle() == "New Colab runtime for free@example.com"
            await until(lambda: dialog.offer_buttons())
            core.switch("ada@example.com")
            dialog.offer_buttons()["CPU"].click()
            QTest.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
            await until(lambda: not dialog.isVisible(), 60)
            (made,) = core.rows()
            assert made.account == "free@example.com", made
        finally:
            await core.stop()

    run(qapp, scenario())
