"""The tray menu in every state, rebuilt from the core's state (nothing here is started, so
nothing reaches the network), its live updates, and the window used where there is no tray."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from PySide6.QtGui import QCursor, QGuiApplication
from PySide6.QtWidgets import QLabel, QSystemTrayIcon

from colabtray.auth.identities import READY_PASTED, ReadyToken
from colabtray.colab.errors import ColabError
from colabtray.colab.models import CPU, GPU, TPU, ComputeUnits
from colabtray.core.app import NO_BRIDGE_REASON, Core
from colabtray.core.display import TrayState
from colabtray.runner import make_core
from colabtray.ui.menu import LOOKED_AT_WITHIN
from tests.fixtures.waiting import until
from tests.ui.conftest import (
    UNREACHABLE,
    action,
    active_state,
    offline_core,
    run,
    runtime,
    submenu,
    texts,
    with_runtimes,
)

T4 = runtime("gpu-t4-s-aaa", GPU, "T4", high_mem=True)
V5E = runtime("tpu-v5e1-s-bbb", TPU, "V5E1", high_mem=True)
CPU_RT = runtime("m-s-ccc", CPU, None)


def test_signed_out(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path, token=None)
    tray = make_tray(core)
    tray.menu.rebuild()
    assert texts(tray.menu.menu) == [
        "Sign in with Google…",
        "---",
        "Secrets…",
        "Settings…",
        "Open log folder",
        "About colabtray",
        "Quit",
    ]
    assert core.tray_state() is TrayState.SIGNED_OUT
    assert core.tooltip() == "colabtray: signed out"


def test_a_second_click_while_signing_in_offers_cancel(qapp, tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path, token=None)
    opened: list[str] = []
    tray = make_tray(core, open_browser=lambda url: opened.append(url) or True)

    async def scenario() -> None:
        tray.menu.rebuild()
        action(tray.menu.menu, "sign-in").trigger()
        await until(lambda: opened and core.signing_in)
        assert opened[0].startswith("http://127.0.0.1:9/auth?")
        tray.menu.rebuild()
        assert texts(tray.menu.menu)[:2] == [
            "Waiting for you to sign in, in your browser…",
            "Cancel sign-in",
        ]
        assert not action(tray.menu.menu, "sign-in-waiting").isEnabled()
        action(tray.menu.menu, "cancel-sign-in").trigger()
        await until(lambda: not core.signing_in)
        tray.menu.rebuild()
        assert texts(tray.menu.menu)[0] == "Sign in with Google…"
        assert not tray._messages, "cancelling is not an error"
        await core.stop()

    run(qapp, scenario())


def test_signed_in_without_runtimes(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    core.ready.email = "ada@example.com"
    tray = make_tray(core)
    tray.menu.rebuild()
    assert texts(tray.menu.menu)[2] == "Looking for runtimes…"  # before the first listing
    with_runtimes(core)
    tray.menu.rebuild()
    assert texts(tray.menu.menu) == [
        (
            "ada@example.com",
            [
                "Signed in with a ready access token (COLABTRAY_ACCESS_TOKEN)",
                "---",
                "Switch account…",
                "Sign out",
            ],
        ),
        "---",
        "No runtime",
        "New runtime…",
        "---",
        "Compute units: 98.50 · 3.92/h · about 25 h left",
        "---",
        "Secrets…",
        "Settings…",
        "Open log folder",
        "About colabtray",
        "Quit",
    ]
    assert core.tray_state() is TrayState.IDLE


def test_the_demo_says_it_is_signed_in_with_the_demos_account(
    qapp, tmp_path: Path, make_tray
) -> None:
    """The demo's ready token comes from its emulator, not from a COLABTRAY_ACCESS_TOKEN the
    person set (issue 25, item 8b); a pasted token is no such variable either."""
    core = make_core(offline_core(tmp_path).settings, demo=True)  # as the demo makes its own
    assert core.ready is not None
    core.ready.email = "ada@example.com"
    tray = make_tray(core)
    tray.menu.rebuild()
    title, entries = texts(tray.menu.menu)[0]
    assert (title, entries[0]) == (
        "ada@example.com",
        "Signed in with the demo's account, on the local emulator (no Google account)",
    )

    async def paste() -> None:  # as the sign-in window does, on the app's loop
        core.serving.use_ready(ReadyToken("pasted-token", READY_PASTED, "ada@example.com"))
        await core.stop()  # and with it the demo token's client, which closes on the loop

    run(qapp, paste())
    tray.menu.rebuild()
    assert texts(tray.menu.menu)[0][1][0] == "Signed in with a ready access token (memory only)"


def test_runtimes_running(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    core.ready.email = "ada@example.com"
    with_runtimes(core, ("T4 GPU", T4), ("my tpu", V5E))
    tray = make_tray(core)
    tray.menu.rebuild()
    entries = texts(tray.menu.menu)
    assert [e[0] for e in entries[2:4]] == [  # by name
        "v5e TPU · High-RAM · “my tpu” — running",
        "T4 GPU · High-RAM — running",
    ]
    t4 = submenu(tray.menu.menu, f"runtime:{T4.endpoint}")
    assert texts(t4) == [
        "Keep-alive: not looked at yet",  # why it is pinged, once keep-alive has looked
        "---",
        "Open terminal",
        "Open in Colab",
        "Copy connection URL (needs the editor bridge)",
        "Copy JupyterLab command",
        "Copy SSH command",
        "---",
        "Reading RAM, disk and GPU…",
        "---",
        "Disconnect runtime…",
    ]
    copy = action(t4, "copy-url")
    assert not copy.isEnabled() and copy.toolTip() == NO_BRIDGE_REASON
    opened: list[str] = []
    tray.open_page = opened.append  # the browser: what it is given is the point
    action(t4, "open-in-colab").trigger()
    assert opened == [
        f"{UNREACHABLE}/notebooks/empty.ipynb?dbu=%2Ftun%2Fm%2F{T4.endpoint}"
        f"#datalabBackendUrl={UNREACHABLE}/tun/m/{T4.endpoint}"
    ]
    assert core.tray_state() is TrayState.RUNNING
    assert tray.describe()["state"] == "running"
    assert "2 runtimes running: my tpu, T4 GPU" in core.tooltip()


class _Bridge:
    """Stands in for colabtray.bridge (tested in its own suites): only the seam is tested."""

    def url_for(self, endpoint: str) -> str | None:
        return f"http://127.0.0.1:4242/{endpoint}/?token=t" if endpoint == T4.endpoint else None

    def gateway_command(self, endpoint: str) -> str | None:
        lab = "JUPYTER_GATEWAY_AUTH_TOKEN=t jupyter lab --gateway-url=http://127.0.0.1:4242"
        return lab if endpoint == T4.endpoint else None

    def last_activity(self, endpoint: str) -> datetime | None:
        return None

    def stop(self) -> None:
        pass


def test_connection_url_once_a_bridge_is_attached(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    with_runtimes(core, ("T4 GPU", T4), ("CPU", CPU_RT))
    core.attach_bridge(_Bridge())
    tray = make_tray(core)
    tray.menu.rebuild()
    copy = action(submenu(tray.menu.menu, f"runtime:{T4.endpoint}"), "copy-url")
    assert copy.isEnabled() and copy.text() == "Copy connection URL"
    copy.trigger()
    assert QGuiApplication.clipboard().text() == f"http://127.0.0.1:4242/{T4.endpoint}/?token=t"
    other = action(submenu(tray.menu.menu, f"runtime:{CPU_RT.endpoint}"), "copy-url")
    assert not other.isEnabled()
    lab = action(submenu(tray.menu.menu, f"runtime:{T4.endpoint}"), "copy-lab-command")
    lab.trigger()
    assert QGuiApplication.clipboard().text() == (
        "JUPYTER_GATEWAY_AUTH_TOKEN=t jupyter lab --gateway-url=http://127.0.0.1:4242"
    )


def test_copy_ssh_command(qapp, tmp_path: Path, make_tray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    core = offline_core(tmp_path)
    with_runtimes(core, ("T4 GPU", T4), ("CPU", CPU_RT))
    tray = make_tray(core)
    tray.menu.rebuild()
    copy = action(submenu(tray.menu.menu, f"runtime:{T4.endpoint}"), "copy-ssh-command")
    clipboard = QGuiApplication.clipboard()
    ssh_dir = tmp_path / "home" / ".ssh"
    ours = ssh_dir / "colabtray_config"

    async def scenario() -> None:
        clipboard.clear()
        copy.trigger()  # ~/.ssh/config does not include colabtray's entries: the command
        await until(lambda: clipboard.text() == "colabtray ssh 'T4 GPU'")
        assert not ours.exists()

        ssh_dir.mkdir(parents=True)
        (ssh_dir / "config").write_text("Include ~/.ssh/colabtray_config\n")  # as a person would
        copy.trigger()  # it does: the entries are written, and ssh finds the runtime by name
        await until(lambda: clipboard.text() == "ssh colab-t4-gpu")
        entries = ours.read_text()
        assert "Host colab-t4-gpu\n" in entries and "Host colab-cpu\n" in entries
        assert f"ssh-proxy {T4.endpoint}" in entries

        ours.unlink()
        ours.mkdir()  # nothing can be written there: a sentence, and the clipboard kept
        clipboard.setText("kept")
        copy.trigger()
        await until(lambda: "Could not copy the SSH command" in tray._messages)
        sentence = tray._messages["Could not copy the SSH command"].text()
        assert sentence.startswith(f"colabtray could not write {ours} (")
        assert clipboard.text() == "kept"

    run(qapp, scenario())


def test_backend_unreachable(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    with_runtimes(core, ("T4 GPU", T4))
    state = active_state(core)
    state.reachable = False
    state.problem = "Colab could not be reached for the runtime list (HTTP 503); try again later."
    tray = make_tray(core)
    tray.menu.rebuild()
    entries = texts(tray.menu.menu)
    assert entries[2] == state.problem
    assert not action(tray.menu.menu, "problem").isEnabled()
    assert entries[3][0] == "T4 GPU · High-RAM — status unknown"
    assert core.tray_state() is TrayState.UNREACHABLE
    assert state.problem in core.tooltip()


def test_accounts_switch_and_sign_in_again(qapp, tmp_path: Path, make_tray) -> None:
    core = offline_core(
        tmp_path,
        token=None,
        accounts=["ada@example.com", "bob@example.com", "eve@example.com"],
    )
    # ada and bob have a refresh token; eve's was lost: she must sign in again.
    for email in ("ada@example.com", "bob@example.com"):
        core.session._store.set(email, SecretStr("refresh-token"))  # the test's memory store
    run(qapp, core.session.check_stored())
    tray = make_tray(core)
    tray.menu.rebuild()
    assert texts(tray.menu.menu)[0] == (
        "ada@example.com",
        [
            "Switch to bob@example.com",
            "eve@example.com (sign in again…)",
            "---",
            "Switch account…",
            "Sign out",
        ],
    )
    action(tray.menu.menu, "switch-to").trigger()
    assert core.email == "bob@example.com"

    active_state(core).signed_out = True  # Google refused bob's sign-in on the last poll
    active_state(core).problem = "bob@example.com needs to sign in again."
    tray.menu.rebuild()
    assert texts(tray.menu.menu)[2] == "Sign in again as bob@example.com…"
    assert core.tray_state() is TrayState.ATTENTION
    assert "bob@example.com needs to sign in again." in core.tooltip()


def test_every_accounts_runtimes_are_listed_under_their_email(
    qapp, tmp_path: Path, make_tray
) -> None:
    core = offline_core(tmp_path, token=None, accounts=["ada@example.com", "bob@example.com"])
    for email in ("ada@example.com", "bob@example.com"):
        core.session._store.set(email, SecretStr("refresh-token"))  # the test's memory store
    for email, name, made in (
        ("ada@example.com", "T4 GPU", T4),
        ("bob@example.com", "CPU", CPU_RT),
    ):
        member = core.fleet.member(email)
        assert member is not None, f"{email} is not served"
        member.registry.state.loaded = True
        member.registry.state.runtimes = {made.endpoint: made}
        member.registry.state.names = {made.endpoint: name}
    bob = core.fleet.member("bob@example.com")
    assert bob is not None
    bob.registry.state.signed_out = True  # Google refused bob's sign-in on the last poll
    tray = make_tray(core)
    tray.menu.rebuild()
    entries = [e[0] if isinstance(e, tuple) else e for e in texts(tray.menu.menu)]
    start = entries.index("ada@example.com", 1)
    assert entries[start : start + 4] == [
        "ada@example.com",
        "T4 GPU · High-RAM — running",
        "bob@example.com",
        "CPU · Standard — its account must sign in again",
    ]
    assert core.email == "ada@example.com" and not core.must_sign_in
    assert core.tray_state() is TrayState.ATTENTION, "bob's runtime is not kept alive"


def test_the_open_menu_follows_the_core(qapp, tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    with_runtimes(core, ("T4 GPU", T4), ("CPU", CPU_RT))
    tray = make_tray(core)

    async def scenario() -> None:
        tray.menu.menu.popup(tray.menu.menu.pos())
        await until(tray.menu.menu.isVisible)
        names = [a.objectName() for a in tray.menu.menu.actions()]
        assert f"runtime:{T4.endpoint}" in names
        core.fleet.forget(T4.endpoint)  # e.g. keep-alive learnt it is gone
        names = [a.objectName() for a in tray.menu.menu.actions()]
        assert f"runtime:{T4.endpoint}" not in names and f"runtime:{CPU_RT.endpoint}" in names
        before = tray.menu.menu.actions()
        core._changed()  # nothing it shows changed: the open menu is left alone
        assert tray.menu.menu.actions() == before

        tray.menu.menu.popup(tray.menu.menu.pos())
        await until(tray.menu.menu.isVisible)
        before = tray.menu.menu.actions()
        # Only words change (units burn on every poll): same entries, new words, still open.
        active_state(core).compute_units = ComputeUnits(balance=97.25, rate_per_hour=0.07)
        core._changed()
        assert tray.menu.menu.actions() == before and tray.menu.menu.isVisible()
        units = action(tray.menu.menu, "compute-units").text()
        assert units == "Compute units: 97.25 · 0.07/h · about 1389 h left"
        tray.menu.menu.hide()

    run(qapp, scenario())


def test_icon_and_tooltip_follow_the_state(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    with_runtimes(core)
    tray = make_tray(core)
    tray._render()
    assert tray.icon.toolTip().startswith("colabtray")
    assert "No runtime" in tray.icon.toolTip()
    active_state(core).runtimes = {T4.endpoint: T4}
    active_state(core).names = {T4.endpoint: "T4 GPU"}
    core._changed()
    assert "1 runtime running: T4 GPU" in tray.icon.toolTip()
    assert tray.describe()["state"] == "running"


def test_a_window_where_there_is_no_tray(qtbot, tmp_path: Path, make_tray) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable(), "this test wants no tray host"
    core = offline_core(tmp_path)
    core.ready.email = "ada@example.com"
    with_runtimes(core, ("T4 GPU", T4))
    tray = make_tray(core)
    tray.show()
    window = tray.window
    assert window is not None and window.isVisible() and not tray.icon.isVisible()
    assert window.status.text() == core.tooltip()
    assert window.button.menu() is tray.menu.menu
    tray.balloon("T4 GPU was disconnected", "Colab reclaimed this runtime.")
    assert window.message.isVisible() and "T4 GPU was disconnected" in window.message.text()
    window.close()  # closing minimizes: the window is the app's only face
    qtbot.waitUntil(window.isMinimized, timeout=5000)
    assert tray.show_menu() == "window"
    assert tray.describe()["window"] is True
    assert asyncio.iscoroutinefunction(tray._sign_in)


# ---- gcloud and ADC accounts that need a sign-in: tried again, never the browser ------------

GINA = "gina@example.com"
ADAM = "adam@example.com"


def _accounts(tmp_path: Path, accounts: list[dict[str, str]], active: str) -> None:
    config = tmp_path / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "accounts.json").write_text(json.dumps({"accounts": accounts, "active": active}))


def test_a_gcloud_account_that_needs_a_sign_in_offers_to_try_gcloud_again(
    qapp, tmp_path: Path, make_tray, monkeypatch
) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # gcloud is not installed here
    _accounts(tmp_path, [{"email": GINA, "source": "gcloud"}], GINA)
    core = offline_core(tmp_path, token=None)
    opened: list[str] = []
    tray = make_tray(core, open_browser=lambda url: opened.append(url) or True)
    gone = (
        "gcloud (the Google Cloud CLI) is not installed or not on PATH; install it, or sign in "
        "another way."
    )

    async def scenario() -> None:
        with pytest.raises(ColabError):  # what the first listing meets
            await core.session.access_token()
        problem = f"{GINA}: {gone}"
        assert core.problem() == problem
        tray.menu.rebuild()
        assert texts(tray.menu.menu)[:4] == [
            (GINA, ["Switch account…", "Sign out"]),
            "---",
            problem,
            "Try gcloud again",
        ]
        retry = action(tray.menu.menu, "retry-sign-in")
        assert retry.isEnabled() and retry.toolTip() == problem
        assert core.tray_state() is TrayState.ATTENTION and problem in core.tooltip()

        retry.trigger()  # gcloud is still missing: it says so, and opens no browser
        await until(lambda: "Still not signed in" in tray._messages)
        assert tray._messages["Still not signed in"].text() == gone
        assert not opened and not core.signing_in and tray.sign_in_window is None

    run(qapp, scenario())


def test_an_adc_account_that_needs_a_sign_in_offers_to_try_adc_again(
    qapp, tmp_path: Path, make_tray
) -> None:
    missing = tmp_path / "moved-away.json"
    _accounts(
        tmp_path,
        [
            {"email": "ada@example.com", "source": "oauth"},
            {"email": ADAM, "source": "adc", "adc_file": str(missing)},
        ],
        "ada@example.com",
    )
    core = offline_core(tmp_path, token=None)
    core.session._store.set("ada@example.com", SecretStr("refresh-token"))  # the test's memory
    tray = make_tray(core)

    async def scenario() -> None:
        with pytest.raises(ColabError):
            await core.retry_sign_in(ADAM)  # the file is gone: adam needs a sign-in

    run(qapp, scenario())
    tray.menu.rebuild()
    account_menu = texts(tray.menu.menu)[0]
    assert account_menu == (
        "ada@example.com",
        [
            f"{ADAM}: Try Application Default Credentials again",
            "---",
            "Switch account…",
            "Sign out",
        ],
    )
    retry = action(tray.menu.menu, "retry-sign-in")
    assert retry.toolTip().startswith(
        f"{ADAM}: The Application Default Credentials in {missing} are gone"
    )
    assert core.email == "ada@example.com" and not core.must_sign_in


def test_a_runtime_made_elsewhere_appears_in_the_open_menu_within_2_s(
    qapp, emulator, tmp_path: Path, make_tray
) -> None:
    """Colab's web page assigns a runtime; the background poll is an hour away, but opening
    the menu lists again and the open menu follows."""
    from tests.fixtures.colab import cli_env, run_cli, settings_for

    core = Core(settings_for(emulator, tmp_path, poll_interval=3600, log_dir=tmp_path / "log"))
    tray = make_tray(core)

    async def scenario() -> None:
        await core.start()
        await until(lambda: core.fleet.state.loaded, 30)
        made = await asyncio.to_thread(
            run_cli, cli_env(emulator, tmp_path / "elsewhere"), "new", "--cpu"
        )
        assert made.returncode == 0, made.stderr
        await until(lambda: core.fleet.age() > LOOKED_AT_WITHIN, 10)

        def shows_cpu() -> bool:
            return any(
                isinstance(t, tuple) and t[0].startswith("CPU") for t in texts(tray.menu.menu)
            )

        tray.menu.rebuild()
        assert not shows_cpu()
        tray.menu.menu.popup(QCursor.pos())
        opened = asyncio.get_running_loop().time()
        await until(shows_cpu, 5)
        assert asyncio.get_running_loop().time() - opened < 2.0
        assert tray.menu.menu.isVisible()  # updated in place, not closed
        tray.menu.menu.hide()
        await core.stop()

    run(qapp, scenario())


def test_the_secrets_window_adds_and_removes_names_and_never_shows_a_value(
    qapp, tmp_path: Path, make_tray
) -> None:
    core = offline_core(tmp_path)
    tray = make_tray(core)
    tray.menu.rebuild()
    action(tray.menu.menu, "secrets").trigger()
    window = tray._windows["secrets"]

    async def scenario() -> None:
        window.name.setText("bad name")
        window.add.click()
        assert "is not a secret name" in window.status.text()
        window.name.setText("HF_TOKEN")
        window.value.setText("s3cr3t-value")
        window.add.click()
        await until(lambda: window.names.count() == 1)
        assert window.names.item(0).text() == "HF_TOKEN"
        assert window.value.text() == "" and window.status.text().startswith("Stored HF_TOKEN.")
        assert await core.notebook_secrets.value("HF_TOKEN") == "s3cr3t-value"
        window.names.setCurrentRow(0)
        window.remove.click()
        await until(lambda: window.names.count() == 0)
        assert core.notebook_secrets.names() == {}

    run(qapp, scenario())
    assert "s3cr3t" not in "".join(w.text() for w in window.findChildren(QLabel))


def test_an_ampersand_in_a_runtime_name_shows_as_written(tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    core.ready.email = "ada@example.com"
    with_runtimes(core, ("R&D box", T4))
    tray = make_tray(core)
    tray.menu.rebuild()
    entry = submenu(tray.menu.menu, f"runtime:{T4.endpoint}").menuAction()
    # Qt reads "&D" as a shortcut and hides the "&"; what it shows is iconText().
    assert entry.iconText() == "T4 GPU · High-RAM · “R&D box” — running"


def test_the_secrets_window_reverses_a_deny(qapp, tmp_path: Path, make_tray) -> None:
    core = offline_core(tmp_path)
    core.ready.email = "ada@example.com"
    with_runtimes(core, ("T4 GPU", T4))
    tray = make_tray(core)

    async def scenario() -> None:
        await core.notebook_secrets.set("HF_TOKEN", "s3cr3t-value", no_ask=False)
        asking = asyncio.ensure_future(core.secret_gate.answer(T4.endpoint, "T4 GPU", "HF_TOKEN"))
        # decide() is False until the question is open; then it is the person's Deny.
        await until(lambda: core.secret_gate.decide(T4.endpoint, "HF_TOKEN", False), 5)
        assert (await asking).access is False
        tray.menu.rebuild()
        action(tray.menu.menu, "secrets").trigger()
        window = tray._windows["secrets"]
        assert [window.answers.item(i).text() for i in range(window.answers.count())] == [
            "HF_TOKEN for T4 GPU: denied"
        ]
        # Denied: the notebook's next read is refused at once, with no new question.
        again = await core.secret_gate.answer(T4.endpoint, "T4 GPU", "HF_TOKEN")
        assert again.access is False
        window.answers.setCurrentRow(0)
        window.allow.click()
        assert window.status.text() == "T4 GPU may read HF_TOKEN now."
        assert window.answers.item(0).text() == "HF_TOKEN for T4 GPU: allowed"
        allowed = await core.secret_gate.answer(T4.endpoint, "T4 GPU", "HF_TOKEN")
        assert allowed.access is True and allowed.payload == "s3cr3t-value"

    run(qapp, scenario())
