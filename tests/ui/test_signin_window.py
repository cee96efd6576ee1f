"""Signing in from the tray with nothing configured: the sign-in window and its ways, clicked
through to the emulator (Google's sign-in, token and userinfo endpoints) on the app's qasync
loop, with a real Chromium on the consent page and the real gcloud where it is installed; and
the About box's diagnostics, copied for a bug report without a token in them."""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from keyring.backends import fail
from PySide6.QtCore import QObject, QPoint, QRect, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QWidget

from colabtray.auth.client_file import CONSOLE_URL, FILE_NAME, ClientFileError, read_client_file
from colabtray.auth.identities import Source
from colabtray.auth.methods import client_how_to
from colabtray.auth.tokens import SecretStore
from colabtray.core.app import Core
from colabtray.system.logs import QUIET_LOGGERS
from colabtray.ui import signin_window
from colabtray.ui.signin_window import (
    LOOKING,
    NO_BROWSER,
    NOT_BACK,
    NOTHING_FOUND,
    WAITING_FOR_BROWSER,
    SignInWindow,
)
from colabtray.ui.tray import Tray
from tests.fixtures.colab import settings_for
from tests.fixtures.emulator import Emulator, pid_alive
from tests.fixtures.waiting import until
from tests.ui.conftest import (
    UNREACHABLE,
    action,
    allow_in_browser,
    chromium,
    run,
    texts,
)

ADA = "ada@example.com"  # the emulator's default account


@pytest.fixture
def nothing_configured(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No COLABTRAY_* variable and an empty config dir (the shared ``config_dir``), and gcloud
    reading a configuration of its own (no account, no ADC) instead of this machine's."""
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return config_dir


def bare_core(emulator: Emulator, tmp_path: Path) -> Core:
    """A core on the emulator as if its export lines had given no OAuth client and no token."""
    settings = settings_for(
        emulator,
        tmp_path,
        client_id=None,
        client_secret=None,
        access_token=None,
        tokeninfo_url=UNREACHABLE + "/tokeninfo",  # nothing ever goes to Google
        poll_interval=0.3,
        retry_attempts=1,
        log_dir=tmp_path / "log",
    )
    # Refresh tokens in memory: the run's Secret Service keyring is the e2e tests' to check.
    return Core(settings, secrets=SecretStore(fail.Keyring()))


def desktop_client(emulator: Emulator, tmp_path: Path) -> Path:
    """A "Desktop app" client file as the Google Cloud console gives it, for the emulator's
    client."""
    path = tmp_path / "downloads" / "client_secret_desktop.json"
    path.parent.mkdir()
    env = emulator.env
    installed = {
        "client_id": env["COLABTRAY_CLIENT_ID"],
        "client_secret": env["COLABTRAY_CLIENT_SECRET"],
        "auth_uri": env["COLABTRAY_OAUTH_AUTH_URL"],
        "token_uri": env["COLABTRAY_OAUTH_TOKEN_URL"],
    }
    path.write_text(json.dumps({"installed": installed}))
    return path


async def open_window(tray: Tray) -> SignInWindow:
    """Click "Sign in with Google…"; the window, once it has looked at this computer."""
    tray.menu.rebuild()
    assert texts(tray.menu.menu)[0] == "Sign in with Google…"
    action(tray.menu.menu, "sign-in").trigger()
    assert not tray._messages, "an error instead of the sign-in window"
    window = tray.sign_in_window
    assert window is not None and window.isVisible()
    await until(lambda: window.looking.text() != LOOKING, 30)
    return window


def ways(window: SignInWindow) -> dict[str, bool]:
    """The ways the window shows (object name → enabled); Close is not a way."""
    shown: dict[str, bool] = {}
    for kind in (QPushButton, QLineEdit):
        for widget in window.findChildren(kind):
            if widget.isVisible() and widget.objectName() != "close":
                shown[widget.objectName()] = widget.isEnabled()
    return shown


def every_way_works(window: SignInWindow) -> bool:
    """Every way can be tried (the token's button waits for a token in its field)."""
    shown = ways(window)
    return all(enabled for name, enabled in shown.items() if name != "use-token")


class _Opened(QObject):
    """Stands in for the desktop's https handler: records what QDesktopServices opens."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def record(self, url: QUrl) -> None:
        self.urls.append(url.toString())


def test_with_nothing_configured_sign_in_opens_the_window(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    core = bare_core(emulator, tmp_path)
    opened: list[str] = []
    tray = make_tray(core, open_browser=lambda url: opened.append(url) or True)

    async def scenario() -> None:
        window = await open_window(tray)
        assert window.problem.isHidden() and window.status.isHidden()
        expected = {"open-console": True, "use-client-file": True, "token": True}
        expected["use-token"] = False  # until something is pasted
        if shutil.which("gcloud"):  # installed, but no ADC yet: offer gcloud's command
            expected["make-adc"] = True
            assert window.adc_command.text().startswith(
                "Runs gcloud auth application-default login --scopes="
            )
        else:
            assert window.looking.text() == NOTHING_FOUND
        assert ways(window) == expected
        how_to = [window.findChild(QLabel, f"how-to-{n}").text() for n in (1, 2, 3)]
        assert how_to == list(client_how_to())
        assert window.token.echoMode() is QLineEdit.EchoMode.Password

        seen = _Opened()
        QDesktopServices.setUrlHandler("https", seen, "record")
        try:
            window.open_console.click()
        finally:
            QDesktopServices.unsetUrlHandler("https")
        assert seen.urls == [CONSOLE_URL]

        action(tray.menu.menu, "sign-in").trigger()  # again: the same window, raised
        assert tray.sign_in_window is window
        assert not opened and not core.signing_in, "no browser without an OAuth client"
        window.close()
        assert not window.isVisible() and not tray._messages
        await core.stop()

    run(qapp, scenario())


def clipped(window: SignInWindow) -> list[str]:
    """What the window does not show whole: a line shorter than its text needs at its width, a
    button or field narrower or lower than it asks, two that overlap, a window off the screen."""
    found = []
    shown: list[tuple[str, QRect]] = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or not isinstance(widget, (QLabel, QPushButton, QLineEdit)):
            continue
        name = widget.objectName() or type(widget).__name__
        size = widget.size()
        if isinstance(widget, QLabel) and widget.wordWrap():
            needs = widget.heightForWidth(size.width())
            if size.height() < needs:
                found.append(f"{name}: {size.height()} px high, needs {needs}")
        else:
            hint = widget.minimumSizeHint()
            if size.width() < hint.width() or size.height() < hint.height():
                found.append(f"{name}: {size.toTuple()}, needs {hint.toTuple()}")
        shown.append((name, QRect(widget.mapTo(window, QPoint(0, 0)), size)))
    for (one, where), (other, there) in itertools.combinations(shown, 2):
        if where.intersects(there):
            found.append(f"{one} overlaps {other}")
    area = window.screen().availableGeometry()
    if not area.contains(window.frameGeometry()):
        found.append(f"the window {window.frameGeometry()} is not within the screen {area}")
    return found


def test_nothing_is_clipped_at_the_default_size(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    core = bare_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        window = await open_window(tray)
        assert window.screen().size().toTuple() == (1280, 800)  # the test session's screen
        await until(lambda: not clipped(window), 5)  # once Qt has laid out what it found
        assert all(window.findChild(QLabel, f"how-to-{n}").isVisible() for n in (1, 2, 3))
        # A sentence shown later (a failure) makes room for itself too.
        window._failed("Something went wrong " * 12)
        await until(lambda: not clipped(window), 5)
        window.close()
        await core.stop()

    run(qapp, scenario())


def test_a_pasted_token_signs_in_and_a_refused_one_is_its_sentence(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    core = bare_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        await core.start()
        window = await open_window(tray)
        window.token.setText("a-token-google-never-issued")
        window.use_token.click()
        assert window.status.text() == "Asking Google whose token this is…"
        assert not any(ways(window).values()), "one way at a time"
        await until(window.problem.isVisible, 30)
        assert window.problem.text().startswith("Google does not accept this access token")
        assert window.status.isHidden() and window.isVisible()
        assert every_way_works(window) and window.use_token.isEnabled(), "all work again"
        assert not core.signed_in

        window.token.setText(f" {emulator.access_token}\n")  # as pasted, with a line end
        window.use_token.click()
        await until(lambda: not window.isVisible(), 30)
        assert core.email == ADA and core.uses_ready_token
        assert window.token.text() == "", "the window keeps no token"
        await until(lambda: core.fleet.state.loaded, 30)
        tray.menu.rebuild()
        entries = texts(tray.menu.menu)
        assert entries[0][0] == ADA and "No runtime" in entries
        assert not tray._messages
        await core.stop()

    run(qapp, scenario())


def test_a_web_client_file_is_refused_with_its_sentence(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    web = tmp_path / "client_secret_web.json"
    web.write_text(json.dumps({"web": {"client_id": "1-web.example", "client_secret": "s"}}))
    with pytest.raises(ClientFileError) as refused:
        read_client_file(web)
    answers: list[Path | None] = [None, web]  # first the person cancels the file dialog
    core = bare_core(emulator, tmp_path)
    opened: list[str] = []
    tray = make_tray(
        core,
        open_browser=lambda url: opened.append(url) or True,
        choose_client_file=lambda parent: answers.pop(0),
    )

    async def scenario() -> None:
        window = await open_window(tray)
        window.use_client_file.click()
        assert answers == [web] and window.problem.isHidden() and window.status.isHidden()
        window.use_client_file.click()
        assert window.problem.isVisible()
        assert window.problem.text() == refused.value.message
        assert '"Web application" client' in window.problem.text()
        assert every_way_works(window)
        assert not (nothing_configured / FILE_NAME).exists(), "a refused file is not kept"
        assert not opened and not core.signing_in
        window.close()
        await core.stop()

    run(qapp, scenario())


def test_a_desktop_client_file_signs_in_in_the_browser(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    chosen = desktop_client(emulator, tmp_path)
    core = bare_core(emulator, tmp_path)
    opened: list[str] = []
    tray = make_tray(
        core,
        open_browser=lambda url: opened.append(url) or True,
        choose_client_file=lambda parent: chosen,
    )

    async def scenario() -> None:
        await core.start()
        window = await open_window(tray)
        window.use_client_file.click()
        kept = nothing_configured / FILE_NAME
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert json.loads(kept.read_text()) == json.loads(chosen.read_text())
        assert window.status.text() == WAITING_FOR_BROWSER
        assert not any(ways(window).values())
        await until(lambda: opened and core.signing_in, 30)
        query = parse_qs(urlparse(opened[0]).query)
        assert query["client_id"] == [emulator.env["COLABTRAY_CLIENT_ID"]]
        assert window.isVisible(), "it waits with the person"

        async with chromium() as browser:
            await allow_in_browser(browser, opened[0])
        await until(lambda: not window.isVisible(), 30)
        assert core.email == ADA and not core.uses_ready_token
        assert [(a.email, a.source) for a in core.session.accounts()] == [(ADA, Source.OAUTH)]
        tray.menu.rebuild()
        assert texts(tray.menu.menu)[0][0] == ADA
        assert not tray._messages
        await core.stop()

    run(qapp, scenario(), 120)


def test_with_no_browser_the_window_shows_the_address_to_copy(
    qapp,
    emulator: Emulator,
    tmp_path: Path,
    make_tray,
    nothing_configured: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # as --verbose logs
    for name, level in QUIET_LOGGERS.items():
        caplog.set_level(level, logger=name)
    chosen = desktop_client(emulator, tmp_path)
    core = bare_core(emulator, tmp_path)
    tried: list[str] = []
    tray = make_tray(
        core,
        open_browser=lambda url: tried.append(url) and False,  # as webbrowser.open, none found
        choose_client_file=lambda parent: chosen,
    )

    async def scenario() -> None:
        await core.start()
        window = await open_window(tray)
        assert window.url_box.isHidden()
        window.use_client_file.click()
        await until(window.url_box.isVisible, 30)
        assert window.url_note.text() == NO_BROWSER and window.status.text() == WAITING_FOR_BROWSER
        assert window.url.text() == tried[0] and window.url.isReadOnly()
        assert parse_qs(urlparse(tried[0]).query)["state"], "the address of this sign-in"
        assert not tray._messages, "in the window, not a box of its own"
        await until(lambda: not clipped(window), 5)

        QGuiApplication.clipboard().setText("what was there before")
        window.copy_url.click()
        assert QGuiApplication.clipboard().text() == tried[0]
        async with chromium() as browser:  # the person opens it in a browser of their own
            await allow_in_browser(browser, QGuiApplication.clipboard().text())
        await until(lambda: not window.isVisible(), 30)
        assert core.email == ADA
        state = parse_qs(urlparse(tried[0]).query)["state"][0]
        assert not [r for r in caplog.records if state in r.getMessage()], "never logged"
        await core.stop()

    run(qapp, scenario(), 120)


def test_a_browser_that_does_not_come_back_gets_the_address_to_copy(
    qapp,
    emulator: Emulator,
    tmp_path: Path,
    make_tray,
    nothing_configured: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(signin_window, "NOT_BACK_AFTER_MS", 500)
    chosen = desktop_client(emulator, tmp_path)
    core = bare_core(emulator, tmp_path)
    opened: list[str] = []
    tray = make_tray(
        core,
        open_browser=lambda url: opened.append(url) or True,
        choose_client_file=lambda parent: chosen,
    )

    async def scenario() -> None:
        window = await open_window(tray)
        window.use_client_file.click()
        await until(lambda: opened and core.signing_in, 30)
        assert window.url_box.isHidden(), "the browser took it: nothing to copy yet"
        await until(window.url_box.isVisible, 10)
        assert window.url_note.text() == NOT_BACK and window.url.text() == opened[0]
        window.close()  # gives up: the address goes with the sign-in
        await until(lambda: not core.signing_in, 10)
        assert window.url_box.isHidden() and window.url.text() == ""
        await core.stop()

    run(qapp, scenario())


def test_closing_the_window_cancels_the_waiting_sign_in(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    chosen = desktop_client(emulator, tmp_path)
    core = bare_core(emulator, tmp_path)
    opened: list[str] = []
    tray = make_tray(
        core,
        open_browser=lambda url: opened.append(url) or True,
        choose_client_file=lambda parent: chosen,
    )

    async def scenario() -> None:
        window = await open_window(tray)
        window.use_client_file.click()
        await until(lambda: opened and core.signing_in, 30)
        redirect = parse_qs(urlparse(opened[0]).query)["redirect_uri"][0]
        port = urlparse(redirect).port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens
        window.close()
        await until(lambda: not core.signing_in, 10)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert not tray._messages, "closing is not an error"
        tray.menu.rebuild()
        assert texts(tray.menu.menu)[0] == "Sign in with Google…"

        # The client file was kept: from now on the tray goes to the browser at once.
        action(tray.menu.menu, "sign-in").trigger()
        await until(lambda: len(opened) == 2 and core.signing_in, 30)
        assert not window.isVisible() and tray.sign_in_window is window
        core.cancel_sign_in()
        await until(lambda: not core.signing_in)
        await core.stop()

    run(qapp, scenario())


def test_adc_that_cannot_be_used_are_their_sentence(
    qapp,
    emulator: Emulator,
    tmp_path: Path,
    make_tray,
    nothing_configured: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A file without its refresh token: refused before any request.
    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "1-adc.example"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    core = bare_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        window = await open_window(tray)
        shown = ways(window)
        assert shown["use-adc"] and "make-adc" not in shown, "ADC exist: nothing to make"
        assert window.use_adc.toolTip() == str(adc)
        window.use_adc.click()
        assert window.status.text() == "Reading the Application Default Credentials…"
        await until(window.problem.isVisible, 30)
        sentence = window.problem.text()
        assert sentence.startswith(f"The Application Default Credentials in {adc} are incomplete")
        assert "; run: gcloud auth application-default login --scopes=" in sentence
        assert every_way_works(window) and not core.signed_in
        window.close()
        await core.stop()

    run(qapp, scenario())


GCLOUD_STAND_IN = """#!/bin/sh
# Stands in for gcloud's ADC login: records its arguments, then does what the test wants.
case "$1 $2" in
  "config get-value") echo "(unset)" >&2; exit 0;;
esac
echo "$@" > "{here}/args"
case "$(cat "{here}/mode")" in
  refuse) echo "ERROR: (gcloud.auth.application-default.login) the person said no" >&2; exit 1;;
  make) echo '{{"type": "authorized_user", "client_id": "1-adc.example"}}' \\
          > "$CLOUDSDK_CONFIG/{name}";;
  wait) echo $$ > "{here}/pid"; exec sleep 120;;
esac
"""


def test_gcloud_makes_adc_then_the_window_looks_again(
    qapp,
    emulator: Emulator,
    tmp_path: Path,
    make_tray,
    nothing_configured: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = tmp_path / "gcloud-stand-in"
    (here / "bin").mkdir(parents=True)
    script = here / "bin" / "gcloud"
    script.write_text(
        GCLOUD_STAND_IN.format(here=here, name="application_default_credentials.json")
    )
    script.chmod(0o700)
    monkeypatch.setenv("PATH", f"{here / 'bin'}:{os.environ['PATH']}")
    (tmp_path / "gcloud").mkdir()  # CLOUDSDK_CONFIG (nothing_configured), where ADC go
    mode = here / "mode"
    core = bare_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        window = await open_window(tray)
        shown = ways(window)
        assert shown["make-adc"] and "use-adc" not in shown and "use-gcloud" not in shown
        command = window.adc_command.text().removeprefix("Runs ").split(";")[0]

        mode.write_text("refuse")
        window.make_adc.click()
        assert window.status.text().startswith("gcloud is asking for your permission")
        assert not any(ways(window).values())
        await until(window.problem.isVisible, 30)
        assert window.problem.text() == (
            "gcloud did not make Application Default Credentials (it ended with status 1); "
            f"run {command} in a terminal to see why."
        )
        assert (here / "args").read_text().split() == command.split()[1:]
        assert every_way_works(window)

        mode.write_text("wait")  # closing the window stops gcloud
        window.make_adc.click()
        await until(lambda: (here / "pid").exists() and (here / "pid").read_text(), 30)
        pid = int((here / "pid").read_text())
        window.close()
        await until(lambda: not pid_alive(pid), 10)
        assert not tray._messages

        window = await open_window(tray)
        mode.write_text("make")  # gcloud makes the file: the window looks again, uses it
        window.make_adc.click()
        await until(window.problem.isVisible, 30)
        made = tmp_path / "gcloud" / "application_default_credentials.json"
        assert window.problem.text().startswith(
            f"The Application Default Credentials in {made} are incomplete"
        )
        shown = ways(window)
        assert shown["use-adc"] and "make-adc" not in shown, "it looked again"
        window.close()
        await core.stop()

    run(qapp, scenario())


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="the Google Cloud CLI is not installed")
def test_a_gcloud_account_without_credentials_is_its_sentence(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    # gcloud names an account it holds no credentials for (its own configuration directory).
    subprocess.run(
        ["gcloud", "config", "set", "account", "gina@example.com"],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    core = bare_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        window = await open_window(tray)
        assert window.use_gcloud.text() == "Use gcloud (signed in as gina@example.com)"
        window.use_gcloud.click()
        assert window.status.text() == "Asking gcloud for a token…"
        await until(window.problem.isVisible, 30)
        assert window.problem.text() == (
            "gcloud has no credentials for that account: run 'gcloud auth login' and try again."
        )
        assert every_way_works(window) and not core.signed_in
        window.close()
        await core.stop()

    run(qapp, scenario())


def test_about_copies_diagnostics_without_the_token(
    qapp, emulator: Emulator, tmp_path: Path, make_tray, nothing_configured: Path
) -> None:
    core = bare_core(emulator, tmp_path)
    tray = make_tray(core)

    async def scenario() -> None:
        await core.start()
        assert await core.use_ready_token(emulator.access_token) == ADA
        QGuiApplication.clipboard().setText("what was there before")
        tray.menu.rebuild()
        action(tray.menu.menu, "about").trigger()
        box = tray._messages["about"]
        copy = next(b for b in box.buttons() if b.objectName() == "copy-diagnostics")
        copy.click()
        assert box.isVisible(), "copying leaves the About box open"
        assert not copy.isEnabled() and "Collecting diagnostics" in box.informativeText()
        await until(lambda: "Diagnostics copied" in box.informativeText(), 90)
        copied = QGuiApplication.clipboard().text()
        assert copied.startswith("· version: colabtray")
        assert f"✓ sign-in: {ADA} via a ready access token (memory only)" in copied
        assert emulator.access_token not in copied
        assert copy.isEnabled() and box.isVisible()
        box.close()
        await core.stop()

    run(qapp, scenario(), 120)
