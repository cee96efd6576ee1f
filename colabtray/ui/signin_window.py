"""The sign-in window: every way this computer offers to sign in, as buttons, so that
"Sign in with Google…" never ends in a dead end when colabtray has no OAuth client.

The tray opens it instead of the browser when no OAuth client is configured
(:func:`needs_window`). It looks for gcloud and Application Default Credentials in the
background (:func:`colabtray.auth.methods.discover`, which asks gcloud and may take a second)
and offers what it finds: gcloud's account, the ADC file, or the gcloud command that makes
one. It always offers an OAuth client file of the user's own (kept, then the browser sign-in)
and a pasted access token (memory only).

One way is tried at a time: meanwhile every way is disabled and a line says what is
happening. A failure is its one sentence in the window and every way works again; success
closes the window, and the tray follows the core. Closing the window cancels what it was
trying (a browser sign-in that waits, gcloud making credentials).

When no browser could be opened, or nothing has come back from it for a while, the window
shows the sign-in address with a Copy button, as ``colabtray signin --no-browser`` prints it.
The address holds the sign-in's one-time state: it is shown and copied, never logged.
Word-wrapped lines need a height that depends on the width, which a window's minimum size
does not follow: the window grows to what its lines need whenever what it shows changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QEvent, QStandardPaths, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from colabtray.auth import gcloud
from colabtray.auth.client_file import (
    CONSOLE_URL,
    ClientFileError,
    configured_client,
    install_client_file,
)
from colabtray.auth.methods import Methods, client_how_to, discover
from colabtray.core.app import Core
from colabtray.errors import describe_os_error
from colabtray.text import printable
from colabtray.ui import icons

log = logging.getLogger(__name__)

ChooseFile = Callable[[QWidget], Path | None]
# Given the sign-in address and whether a browser took it (called on the loop's thread).
ShowUrl = Callable[[str, bool], None]
BrowserSignIn = Callable[[ShowUrl], Awaitable[str | None]]

LOOKING = "Looking for gcloud and Application Default Credentials…"
NOTHING_FOUND = (
    "Neither gcloud (the Google Cloud CLI) nor Application Default Credentials are on this "
    "computer; the ways below need neither."
)
WAITING_FOR_BROWSER = "Waiting for you to sign in, in your browser…"
NO_BROWSER = "No web browser could be opened. Open this address in your browser to sign in:"
NOT_BACK = "Nothing from your browser yet? Open this address in a browser to sign in:"
NOT_BACK_AFTER_MS = 20_000  # how long a browser sign-in waits before showing its address


def needs_window(core: Core) -> bool:
    """Whether signing in must offer the other ways: there is no OAuth client to run the
    browser sign-in with, or the kept client file cannot be used."""
    try:
        return configured_client(core.settings) is None
    except ClientFileError:
        return True


def choose_client_file(parent: QWidget) -> Path | None:
    """Ask for the client's JSON file (where browsers download it, first); None if cancelled."""
    downloads = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DownloadLocation)
    path, _ = QFileDialog.getOpenFileName(
        parent, "Choose your OAuth client file", downloads, "OAuth client file (*.json)"
    )
    return Path(path) if path else None


class SignInWindow(QDialog):
    """The ways to sign in; ``browser_sign_in(show_url)`` runs the browser sign-in as the
    tray does (``Core.sign_in`` with the tray's way of opening the browser) and hands the
    address to ``show_url``; ``choose_file`` asks for the client file (tests pass their own)."""

    def __init__(
        self,
        core: Core,
        browser_sign_in: BrowserSignIn,
        *,
        choose_file: ChooseFile = choose_client_file,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._core = core
        self._browser_sign_in = browser_sign_in
        self._choose_file = choose_file
        self._task: asyncio.Task[object] | None = None
        self._in_browser = False  # the way being tried is the browser sign-in
        self._methods: Methods | None = None
        self.setObjectName("sign-in")
        self.setWindowTitle("Sign in to colabtray")
        self.setWindowIcon(icons.app_icon())

        intro = QLabel(
            "colabtray reaches Colab with your Google account's permission. Choose how to give it:"
        )
        intro.setWordWrap(True)

        # What this computer has (filled in once discover() answers).
        self.looking = _label("looking", LOOKING)
        self.use_browser = _button("use-browser", "Sign in with Google in your browser")
        self.use_gcloud = _button("use-gcloud", "Use gcloud")
        self.use_adc = _button("use-adc", "Use Application Default Credentials")
        self.make_adc = _button("make-adc", "Make Application Default Credentials with gcloud…")
        self.adc_command = _label("adc-command", "")
        self.adc_command.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        found = QGroupBox("On this computer")
        found.setObjectName("found")
        found_layout = QVBoxLayout(found)
        found_layout.addWidget(self.looking)
        for button in (self.use_browser, self.use_gcloud, self.use_adc, self.make_adc):
            button.hide()
            found_layout.addWidget(button)
        self.adc_command.hide()
        found_layout.addWidget(self.adc_command)

        # An OAuth client of the user's own.
        client = QGroupBox("Your own OAuth client")
        client.setObjectName("client")
        client_layout = QVBoxLayout(client)
        self.client_problem = _label("client-problem", "")
        self.client_problem.hide()
        client_layout.addWidget(self.client_problem)
        for number, line in enumerate(client_how_to(), 1):
            client_layout.addWidget(_label(f"how-to-{number}", line))
        self.open_console = _button("open-console", "Open Google Cloud console")
        self.open_console.setToolTip(CONSOLE_URL)
        self.use_client_file = _button("use-client-file", "Use an OAuth client file…")
        row = QHBoxLayout()
        row.addWidget(self.open_console)
        row.addWidget(self.use_client_file)
        row.addStretch(1)
        client_layout.addLayout(row)

        # A token the person already has (printed by gcloud elsewhere, say).
        ready = QGroupBox("Paste an access token")
        ready.setObjectName("ready-token")
        ready_layout = QVBoxLayout(ready)
        ready_layout.addWidget(
            _label(
                "token-note",
                "Kept in memory until colabtray quits, never written anywhere; it works "
                "until it expires (usually within an hour).",
            )
        )
        self.token = QLineEdit()
        self.token.setObjectName("token")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("Paste an access token")
        self.use_token = _button("use-token", "Use this token")
        token_row = QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.use_token)
        ready_layout.addLayout(token_row)

        self.status = _label("status", "")
        self.status.hide()
        # The browser sign-in's address, for a browser colabtray could not open.
        self._url = ""
        self.url_note = _label("sign-in-url-note", "")
        self.url = QLineEdit()
        self.url.setObjectName("sign-in-url")
        self.url.setReadOnly(True)
        self.copy_url = _button("copy-sign-in-url", "Copy")
        self.copy_url.clicked.connect(self._copy_url)
        self.url_box = QWidget()
        url_layout = QVBoxLayout(self.url_box)
        url_layout.setContentsMargins(0, 0, 0, 0)
        url_layout.addWidget(self.url_note)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_url)
        url_layout.addLayout(url_row)
        self.url_box.hide()
        self._not_back = QTimer(self)
        self._not_back.setSingleShot(True)
        self._not_back.setInterval(NOT_BACK_AFTER_MS)
        self._not_back.timeout.connect(lambda: self._show_url(NOT_BACK))
        self.problem = _label("problem", "")
        self.problem.setStyleSheet("color: #c5221f;")
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setObjectName("close")
        self.buttons.rejected.connect(self.reject)

        layout = self._column = QVBoxLayout(self)
        shown = (intro, found, client, ready, self.status, self.url_box, self.problem)
        for widget in (*shown, self.buttons):
            layout.addWidget(widget)
        self.setMinimumWidth(560)

        self._ways: list[QWidget] = [
            self.use_browser,
            self.use_gcloud,
            self.use_adc,
            self.make_adc,
            self.open_console,
            self.use_client_file,
            self.token,
        ]
        self.use_browser.clicked.connect(self._sign_in_in_browser)
        self.use_gcloud.clicked.connect(self._use_gcloud)
        self.use_adc.clicked.connect(self._use_adc)
        self.make_adc.clicked.connect(self._make_adc)
        self.open_console.clicked.connect(lambda *_: QDesktopServices.openUrl(QUrl(CONSOLE_URL)))
        self.use_client_file.clicked.connect(self._use_client_file)
        self.use_token.clicked.connect(self._use_token)
        self.token.returnPressed.connect(self._use_token)
        self.token.textChanged.connect(lambda *_: self._enable())
        self._enable()
        core.spawn(self._look(), on_error=self._not_found)

    @property
    def busy(self) -> bool:
        """A way is being tried."""
        return self._task is not None

    def event(self, event: QEvent) -> bool:
        """After each new layout (a line shown, hidden or reworded), fit the lines."""
        handled = super().event(event)
        if event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Show):
            self._fit()
        return handled

    def _fit(self) -> None:
        """Be at least as tall as the lines need at this width (wrapped labels give their
        height for a width, which the layout's minimum size leaves out)."""
        needed = self._column.totalHeightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)
        if self.height() < needed:
            self.resize(self.width(), needed)

    # ---- what this computer has -----------------------------------------------------------

    async def _look(self) -> None:
        self._show(await discover(self._core.settings))

    def _show(self, methods: Methods) -> None:
        self._methods = methods
        self.use_browser.setVisible(methods.client is not None)
        self.use_gcloud.setVisible(methods.gcloud_account is not None)
        self.use_gcloud.setText(f"Use gcloud (signed in as {methods.gcloud_account})")
        self.use_adc.setVisible(methods.adc is not None)
        self.use_adc.setToolTip(str(methods.adc) if methods.adc else "")
        can_make = methods.gcloud and methods.adc is None
        self.make_adc.setVisible(can_make)
        self.adc_command.setVisible(can_make)
        self.adc_command.setText(
            f"Runs {methods.adc_command}; gcloud asks for your permission in your browser."
        )
        anything = methods.client is not None or methods.gcloud or methods.adc is not None
        self.looking.setText("" if anything else NOTHING_FOUND)
        self.looking.setVisible(not anything)
        self.client_problem.setText(
            f"The kept OAuth client file cannot be used: {methods.client_problem}"
            if methods.client_problem
            else ""
        )
        self.client_problem.setVisible(bool(methods.client_problem))
        self._enable()

    def _not_found(self, sentence: str) -> None:
        self.looking.setText(f"Could not look for gcloud: {printable(sentence)}")

    # ---- the ways -------------------------------------------------------------------------

    def _sign_in_in_browser(self) -> None:
        way = partial(self._browser_sign_in, self._got_url)
        self._try(WAITING_FOR_BROWSER, way, in_browser=True)

    def _got_url(self, url: str, opened: bool) -> None:
        """The browser sign-in's address: shown at once if no browser took it, else once
        the wait has gone on for a while."""
        if not self._in_browser:
            return  # given up meanwhile
        self._url = url
        if opened:
            self._not_back.start()
        else:
            self._show_url(NO_BROWSER)

    def _show_url(self, why: str) -> None:
        if not self._in_browser or not self._url:
            return
        self.url_note.setText(why)
        self.url.setText(printable(self._url))
        self.url.setCursorPosition(0)
        self.copy_url.setText("Copy")
        self.url_box.show()

    def _copy_url(self) -> None:
        if self._url:
            QGuiApplication.clipboard().setText(self._url)
            self.copy_url.setText("Copied")

    def _use_gcloud(self) -> None:
        account = self._methods.gcloud_account if self._methods else None
        self._try("Asking gcloud for a token…", partial(self._core.sign_in_gcloud, account))

    def _use_adc(self) -> None:
        if self._methods is not None and self._methods.adc is not None:
            path = self._methods.adc
            self._try(
                "Reading the Application Default Credentials…",
                partial(self._core.sign_in_adc, path),
            )

    def _make_adc(self) -> None:
        if self._methods is not None:
            self._try(
                "gcloud is asking for your permission in your browser; finish there…",
                self._make_and_use_adc,
            )

    def _use_client_file(self) -> None:
        if self.busy:
            return
        path = self._choose_file(self)
        if path is None:
            return  # the person changed their mind
        config_dir = self._core.settings.config_dir
        try:
            install_client_file(path, config_dir)
        except ClientFileError as exc:
            self._failed(exc.message)
            return
        except OSError as exc:
            self._failed(
                f"Could not keep a copy of the client file in {config_dir} "
                f"({describe_os_error(exc)})."
            )
            return
        self.client_problem.hide()
        self._sign_in_in_browser()

    def _use_token(self) -> None:
        token = self.token.text().strip()
        if token and not self.busy:
            self._try("Asking Google whose token this is…", partial(self._use_ready, token))

    async def _use_ready(self, token: str) -> str:
        email = await self._core.use_ready_token(token)
        self.token.clear()
        return email

    async def _make_and_use_adc(self) -> str:
        """Run gcloud's ADC login (it opens the browser itself), then look again and sign
        in with the file it made."""
        settings = self._core.settings
        await gcloud.make_adc(settings.oauth_scopes, settings.signin_timeout)
        methods = await discover(settings)
        self._show(methods)
        if methods.adc is None:
            raise gcloud.adc_not_made(gcloud.adc_login_command(settings.oauth_scopes))
        return await self._core.sign_in_adc(methods.adc)

    # ---- trying one way at a time ---------------------------------------------------------

    def _try(
        self, doing: str, way: Callable[[], Awaitable[object]], *, in_browser: bool = False
    ) -> None:
        if self.busy:
            return
        self._in_browser = in_browser
        self.problem.hide()
        self.status.setText(doing)
        self.status.show()
        self._task = self._core.spawn(self._run(way), on_error=self._failed)
        self._enable()

    async def _run(self, way: Callable[[], Awaitable[object]]) -> None:
        result = await way()
        self._task = None
        if result is None:  # the browser sign-in was cancelled (the tray's "Cancel sign-in")
            self._idle()
            return
        self.accept()

    def _failed(self, sentence: str) -> None:
        self._task = None
        self._idle()
        self.problem.setText(printable(sentence))
        self.problem.show()

    def _idle(self) -> None:
        self._in_browser = False
        self._not_back.stop()
        self._url = ""
        self.url.clear()
        self.url_box.hide()
        self.status.hide()
        self.status.setText("")
        self._enable()

    def _enable(self) -> None:
        for control in self._ways:
            control.setEnabled(not self.busy)
        self.use_token.setEnabled(not self.busy and bool(self.token.text().strip()))

    def done(self, result: int) -> None:
        """Closing (Close, Escape, the title bar, the tray quitting) gives up what was being
        tried; a browser sign-in stops waiting and closes its port."""
        accepted = result == QDialog.DialogCode.Accepted.value
        if not accepted and self._task is not None:
            if self._in_browser:
                self._core.cancel_sign_in()
            self._task.cancel()
            self._task = None
            self._idle()
        self.token.clear()  # a pasted token stays nowhere it is not needed
        super().done(result)


def _label(name: str, text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(True)
    return label


def _button(name: str, text: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setAutoDefault(False)  # Return in the token field uses the token, nothing else
    return button
