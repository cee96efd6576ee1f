"""The app's face: the tray icon (or a small window where there is no tray), its menu, the
dialogs a click opens, and desktop notifications for what the core reports.

Every click that needs the network schedules a coroutine on the core (``core.spawn``) and
returns at once; an error comes back as a sentence in a dialog. The icon and its tooltip
follow the core's state; the menu is rebuilt when it opens and, while open, when what it
shows changes. "Sign in with Google…" runs the browser sign-in when there is an OAuth client
to run it with, and opens the sign-in window (every other way) when there is none.
"""

from __future__ import annotations

import asyncio
import logging
import webbrowser
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint, Qt, QUrl
from PySide6.QtGui import QCursor, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QPushButton, QSystemTrayIcon, QWidget

from colabtray import __version__
from colabtray.colab.errors import ColabError
from colabtray.colab.links import open_in_colab
from colabtray.core.app import Core
from colabtray.core.keepalive import Choice
from colabtray.core.notices import Notice
from colabtray.system.notifications import Notifier
from colabtray.text import printable
from colabtray.ui import icons
from colabtray.ui.menu import TrayMenu, describe, rect_of
from colabtray.ui.new_runtime import NewRuntimeDialog
from colabtray.ui.window import StatusWindow

if TYPE_CHECKING:
    from colabtray.ui.settings_window import SettingsWindow
    from colabtray.ui.signin_window import ChooseFile, ShowUrl, SignInWindow

log = logging.getLogger(__name__)

BALLOON_MS = 8000


class Tray(QObject):
    def __init__(
        self,
        core: Core,
        *,
        quit: Callable[[], None],
        demo: bool = False,
        icon: QSystemTrayIcon | None = None,
        notifier: Notifier | None = None,
        open_browser: Callable[[str], bool] = webbrowser.open,
        choose_client_file: ChooseFile | None = None,
    ) -> None:
        super().__init__()
        self.core = core
        self.demo = demo
        self._quit = quit
        self._open_browser = open_browser  # honours $BROWSER; tests pass their own
        self._choose_client_file = choose_client_file  # None: a file dialog; tests pass one
        self.menu = TrayMenu(core, self)
        self.icon = icon or QSystemTrayIcon(icons.app_icon())  # the app may have put one up
        self.icon.setContextMenu(self.menu.menu)
        self.icon.activated.connect(self._activated)
        self.window: StatusWindow | None = None
        self.notifier = notifier or Notifier(fallback=self.balloon)
        self.dialog: NewRuntimeDialog | None = None
        self.sign_in_window: SignInWindow | None = None
        self.settings_window: SettingsWindow | None = None
        self.confirmation: QMessageBox | None = None
        self._confirming: str | None = None  # the endpoint the confirmation is about
        self._messages: dict[str, QMessageBox] = {}
        self._windows: dict[str, QWidget] = {}  # windows opened from the menu, kept while open
        self._shown: tuple[object, str] | None = None
        core.subscribe(self._on_core_changed)
        core.subscribe_notices(self._on_notice)

    # ---- showing --------------------------------------------------------------------------

    def show(self) -> None:
        """The tray icon if the desktop has a tray, else the small window."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._render()
            self.icon.show()
        else:
            log.info("this desktop has no system tray; showing a window instead")
            self.window = StatusWindow(self.menu.menu)
            self._render()
            self.window.show()

    def hide(self) -> None:
        """Take everything off the screen (quitting)."""
        self.icon.hide()
        if self.window is not None:
            self.window.hide()
        others = (self.dialog, self.sign_in_window, self.confirmation, *self._messages.values())
        for widget in others:
            if widget is not None:
                widget.close()

    def show_menu(self) -> str:
        """Bring the app up (a second ``colabtray`` asked); says what was shown."""
        if self.window is not None:
            self.window.bring_up()
            return "window"
        area = self.icon.geometry()
        self.menu.menu.popup(area.center() if area.isValid() else QCursor.pos())
        return "menu"

    def anchor(self) -> QPoint | None:
        """Where the tray icon is, for windows that should appear near it."""
        area = self.icon.geometry()
        return area.center() if self.icon.isVisible() and area.isValid() else None

    def describe(self) -> dict[str, object]:
        """What the tray shows now (the control channel's ``menu`` command)."""
        menu = self.menu.menu
        if not menu.isVisible():
            self.menu.rebuild()  # as it would be if it opened now
        area = self.icon.geometry()
        return {
            "state": str(self.core.tray_state()),
            "tooltip": self.core.tooltip(),
            "icon": [area.x(), area.y(), area.width(), area.height()] if area.isValid() else None,
            "window": self.window is not None and self.window.isVisible(),
            "visible": menu.isVisible(),
            "rect": rect_of(menu) if menu.isVisible() else None,
            "items": describe(menu),
            "dialog": self.dialog.describe() if self.dialog and self.dialog.isVisible() else None,
        }

    def _render(self) -> None:
        state = self.core.tray_state()
        text = self.core.tooltip()
        if self._shown == (state, text):
            return
        self._shown = (state, text)
        self.icon.setIcon(icons.state_icon(state))
        self.icon.setToolTip(text)
        if self.window is not None:
            self.window.show_state(icons.state_icon(state), text)

    def _on_core_changed(self) -> None:
        self._render()
        live = self.core.endpoints()
        self.menu.forget_figures(live)
        if self.confirmation is not None and self._confirming not in live:
            self.confirmation.close()  # nothing left to confirm
        self.menu.refresh_if_open()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # A left click opens the menu too: most Linux trays (and AppIndicator) work that way.
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.menu.menu.popup(QCursor.pos())

    # ---- notifications and messages -------------------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        if notice.action is None:
            self.core.spawn(self.notifier.notify(notice.title, notice.body))
        else:
            self.core.spawn(self._notify_with_action(notice))

    async def _notify_with_action(self, notice: Notice) -> None:
        """A notice with its button (low compute units: buy or change plan); where the desktop
        shows no buttons, the page's address ends the text instead."""
        assert notice.action is not None
        action = notice.action
        if await self.notifier.can_ask():
            button = (action.label, lambda: self.open_page(action.url))
            if await self.notifier.ask(notice.title, notice.body, [button]) is not None:
                return
        await self.notifier.notify(notice.title, f"{notice.body} {action.label}: {action.url}")

    def open_page(self, url: str) -> None:
        """Open a web page of Colab's in the person's browser."""
        QDesktopServices.openUrl(QUrl(url))

    def balloon(self, title: str, body: str) -> None:
        """Where notifications go when the desktop has no notification service."""
        if self.window is not None:
            self.window.show_message(title, body)
        elif self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, body, icons.app_icon(), BALLOON_MS)
        else:
            log.warning("%s: %s", title, body)

    def error(self, title: str, sentence: str) -> None:
        """A sentence in a small dialog; one dialog per kind of failure, reused."""
        sentence = printable(sentence)  # it may quote a runtime's or Colab's words
        box = self._messages.get(title)
        if box is None:
            box = QMessageBox(QMessageBox.Icon.Warning, title, sentence)
            box.setObjectName("error")
            box.setTextFormat(Qt.TextFormat.PlainText)
            box.setWindowIcon(icons.app_icon())
            box.finished.connect(lambda *_: self._messages.pop(title, None))
            self._messages[title] = box
        box.setText(sentence)
        box.show()
        box.raise_()

    # ---- what the menu's entries do (menu.Actions) ----------------------------------------

    def sign_in(self, login_hint: str | None = None) -> None:
        # Imported on first use, like the Settings window.
        from colabtray.ui.signin_window import needs_window

        if needs_window(self.core):
            self.show_sign_in_window(login_hint)
            return
        self.core.spawn(
            self._sign_in(login_hint), on_error=lambda s: self.error("Sign-in failed", s)
        )

    async def _sign_in(self, login_hint: str | None, show_url: ShowUrl | None = None) -> str | None:
        """The browser sign-in; ``show_url(url, opened)`` (the sign-in window's) is told the
        address and whether a browser took it, else a box shows it when none did."""
        loop = asyncio.get_running_loop()

        def open_browser(url: str) -> None:  # runs in a worker thread
            try:
                opened = bool(self._open_browser(url))
            except Exception as exc:  # a broken $BROWSER, say; the URL is never logged
                log.info("no web browser could be opened (%s)", type(exc).__name__)
                opened = False
            if show_url is not None:
                loop.call_soon_threadsafe(show_url, url, opened)
            elif not opened:
                loop.call_soon_threadsafe(self._show_sign_in_url, url)

        return await self.core.sign_in(open_browser, login_hint)

    def show_sign_in_window(self, login_hint: str | None = None) -> SignInWindow:
        """The sign-in window (the one already open, raised): every way to sign in."""
        from colabtray.ui.signin_window import SignInWindow, choose_client_file

        window = self.sign_in_window
        if window is None or not window.isVisible():
            window = SignInWindow(
                self.core,
                partial(self._sign_in, login_hint),
                choose_file=self._choose_client_file or choose_client_file,
            )
            self.sign_in_window = window
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def retry_sign_in(self, email: str) -> None:
        """Ask a gcloud or ADC account's source again (the person fixed it there)."""
        self.core.spawn(
            self._retry_sign_in(email),
            on_error=lambda s: self.error("Still not signed in", s),
        )

    async def _retry_sign_in(self, email: str) -> None:
        await self.core.retry_sign_in(email)
        if self.core.email != email:
            self.core.switch(email)  # as signing in again in the browser makes it active
        # A listing refused meanwhile keeps the tray at "sign in again" until the next poll:
        # list at once with the account's new token.
        self.core.list_now()

    def _show_sign_in_url(self, url: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Sign in with Google",
            "No web browser could be opened. Open this address in your browser to sign in:",
        )
        box.setInformativeText(url)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._messages["sign-in-url"] = box
        box.finished.connect(lambda *_: self._messages.pop("sign-in-url", None))
        box.show()

    def cancel_sign_in(self) -> None:
        self.core.cancel_sign_in()

    def switch_to(self, email: str) -> None:
        try:
            self.core.switch(email)
        except ColabError as exc:
            self.error("Could not switch accounts", exc.message)

    def sign_out(self) -> None:
        self.core.spawn(self.core.sign_out(), on_error=lambda s: self.error("Sign-out failed", s))

    def new_runtime(self) -> None:
        if self.dialog is None or not self.dialog.isVisible():
            self.dialog = NewRuntimeDialog(self.core, report=self.error)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()

    def confirm_disconnect(self, endpoint: str) -> None:
        row = next((r for r in self.core.rows() if r.endpoint == endpoint), None)
        if row is None:
            return
        if self.confirmation is not None:
            self.confirmation.close()
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Disconnect runtime?",
            printable(f"Disconnect “{row.name}” ({row.kind}, {row.shape})?"),
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setObjectName("confirm-disconnect")
        box.setWindowIcon(icons.app_icon())
        box.setInformativeText(
            "Colab stops the runtime and deletes what is on it: files, variables and anything "
            "still running. It stops using compute units."
        )
        disconnect = box.addButton("&Disconnect", QMessageBox.ButtonRole.DestructiveRole)
        disconnect.setObjectName("disconnect")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)

        def answered(*_: object) -> None:
            if box.clickedButton() is disconnect:
                self.core.spawn(
                    self.core.disconnect(endpoint),
                    on_error=lambda s: self.error("Could not disconnect the runtime", s),
                )
            if self.confirmation is box:
                self.confirmation, self._confirming = None, None

        box.finished.connect(answered)
        self.confirmation, self._confirming = box, endpoint
        box.show()
        box.raise_()

    def answer_idle(self, endpoint: str, keep: bool) -> None:
        self.core.answer_idle(endpoint, Choice.KEEP if keep else Choice.DISCONNECT)

    def answer_question(self, key: str, yes: bool) -> None:
        self.core.answer_question(key, yes)

    def open_in_colab(self, endpoint: str) -> None:
        """Colab's web page attached to the runtime, in the browser."""
        self.open_page(open_in_colab(self.core.settings.colab_url, endpoint))

    def open_terminal(self, endpoint: str) -> None:
        """A terminal window running ``colabtray shell NAME``; where this desktop has no
        terminal colabtray knows, the command is copied and a message says so."""
        from colabtray.tools.terminal_launcher import open_terminal

        name = next((r.name for r in self.core.rows() if r.endpoint == endpoint), endpoint)
        command = open_terminal(name, demo=self.demo)
        if command is not None:
            QGuiApplication.clipboard().setText(command)
            self.error(
                "No terminal found",
                "colabtray found no terminal program to open; the command is on the "
                f"clipboard to paste into one: {command}",
            )

    def copy_url(self, endpoint: str) -> None:
        url = self.core.connection_url(endpoint)
        if url:
            QGuiApplication.clipboard().setText(url)

    def copy_lab_command(self, endpoint: str) -> None:
        command = self.core.lab_command(endpoint)
        if command:
            QGuiApplication.clipboard().setText(command)

    def copy_ssh_command(self, endpoint: str) -> None:
        """``ssh colab-NAME`` (the ssh-config file written first) or ``colabtray ssh NAME``."""
        self.core.spawn(
            self._copy_ssh_command(endpoint),
            on_error=lambda s: self.error("Could not copy the SSH command", s),
        )

    async def _copy_ssh_command(self, endpoint: str) -> None:
        from colabtray.tools.ssh_hosts import command_to_copy

        runtimes = [(row.name, row.endpoint) for row in self.core.rows()]
        # Off the Qt thread: the config file is synced, and a first key is ssh-keygen's.
        command = await asyncio.to_thread(
            command_to_copy, self.core.settings, runtimes, endpoint, demo=self.demo
        )
        QGuiApplication.clipboard().setText(command)

    def secrets(self) -> None:
        from colabtray.ui.secrets_window import SecretsWindow

        window = self._windows.get("secrets")
        if not isinstance(window, SecretsWindow):
            window = SecretsWindow(self.core)
            self._windows["secrets"] = window
        window.refresh()
        window.show()
        window.raise_()

    def settings(self) -> None:
        # Imported on first use: the window (and tomlkit) cost nothing until asked for.
        from colabtray.ui.settings_window import show_settings_window

        window = show_settings_window(
            self.core.settings, on_saved=self._settings_saved, shown=self.settings_window
        )
        if window is not self.settings_window:
            self.settings_window = window
            window.finished.connect(lambda _result: self._settings_closed(window))

    def _settings_closed(self, window: SettingsWindow) -> None:
        """Forget the Settings window once closed (it deletes itself)."""
        if self.settings_window is window:
            self.settings_window = None

    def _settings_saved(self, changes: dict[str, object]) -> None:
        """Saved settings apply from the next start; say so once rather than half-apply them."""
        if changes:
            self.balloon(
                "Settings saved",
                "They take effect the next time colabtray starts (start at login: now).",
            )

    def open_log_folder(self) -> None:
        folder = self.core.settings.log_dir
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def about(self) -> None:
        """A small box: the version, where the backend is, and a way to copy diagnostics."""
        shown = self._messages.get("about")
        if shown is not None:  # one About box, raised again
            shown.raise_()
            shown.activateWindow()
            return
        where = (
            "This is the demo: a local emulator of Google sign-in and Colab, started with "
            "colabtray --demo. Nothing here reaches Google, and quitting stops it."
            if self.demo
            else f"Colab backend: {self.core.settings.colab_url}"
        )
        box = QMessageBox(
            QMessageBox.Icon.NoIcon,
            "About colabtray",
            f"<b>colabtray {__version__}</b><br>Google Colab runtimes one click away from any "
            "local editor.",
        )
        box.setObjectName("about")
        box.setIconPixmap(icons.app_icon().pixmap(48, 48))
        about = f"{where}\n\ncolabtray is not made or endorsed by Google. Apache-2.0 licence."
        box.setInformativeText(about)
        copy = box.addButton("Copy diagnostics", QMessageBox.ButtonRole.ActionRole)
        copy.setObjectName("copy-diagnostics")
        copy.setToolTip("What 'colabtray doctor' reports, secrets masked, for a bug report.")
        # Any button of a QMessageBox closes it; this one must leave the box open to say
        # how copying went, so the box's own handler is taken off it.
        copy.clicked.disconnect()
        copy.clicked.connect(lambda *_: self._copy_diagnostics(box, copy, about))
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Ok))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # and its slot, which holds it
        self._messages["about"] = box
        box.finished.connect(lambda *_: self._messages.pop("about", None))
        box.show()

    def _copy_diagnostics(self, box: QMessageBox, button: QPushButton, about: str) -> None:
        def say(line: str, *, done: bool = True) -> None:
            if self._messages.get("about") is box:  # still open
                box.setInformativeText(f"{about}\n\n{line}")
                button.setEnabled(done)

        async def collect() -> None:
            # Only doctor's own text, masked there: nothing is added to it here.
            from colabtray import doctor

            core = self.core
            ready = core.ready if core.uses_ready_token else None  # else the active account
            text = await doctor.diagnostics(core.settings, core.session, ready)
            QGuiApplication.clipboard().setText(text)
            say("Diagnostics copied to the clipboard; paste them into your bug report.")

        say("Collecting diagnostics (this takes a few seconds)…", done=False)
        self.core.spawn(collect(), on_error=lambda s: say(f"Could not collect diagnostics: {s}"))

    def quit(self) -> None:
        self._quit()
