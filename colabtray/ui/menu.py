"""The tray menu, rebuilt from core state each time it opens (and live while it is open).

This module only lays out actions; what a click does is a method of the :class:`Actions`
it is given (the tray), and every word comes from ``core``; every entry's text and tooltip
is :func:`colabtray.text.printable` (runtime names and Colab's sentences reach them), and an
entry's ``&`` is doubled, so that a name like "R&D" shows as written instead of as a shortcut.
Actions carry object names (``"new-runtime"``, ``"runtime:<endpoint>"``…) so that tests and
tools can find them.

An account that needs a sign-in is signed in again in the browser, unless it came from gcloud
or Application Default Credentials: those are fixed where they live (the problem sentence
says how), then colabtray only has to ask them again ("Try gcloud again").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from colabtray.auth.identities import Source
from colabtray.colab.errors import ColabError
from colabtray.core.app import NO_BRIDGE_REASON, Core
from colabtray.core.display import RuntimeRow, resource_lines
from colabtray.core.session import AccountState
from colabtray.errors import bug_sentence
from colabtray.text import printable
from colabtray.ui import icons

log = logging.getLogger(__name__)

RESOURCES_MAX_AGE = 5.0  # seconds before an open submenu fetches fresh figures
CANNOT_READ = "Could not read RAM, disk and GPU"
RETRY = {
    Source.GCLOUD: "Try gcloud again",
    Source.ADC: "Try Application Default Credentials again",
}


class Actions(Protocol):
    """What the menu's entries do."""

    def sign_in(self, login_hint: str | None = None) -> None: ...
    def retry_sign_in(self, email: str) -> None: ...
    def cancel_sign_in(self) -> None: ...
    def switch_to(self, email: str) -> None: ...
    def sign_out(self) -> None: ...
    def new_runtime(self) -> None: ...
    def confirm_disconnect(self, endpoint: str) -> None: ...
    def answer_idle(self, endpoint: str, keep: bool) -> None: ...
    def answer_question(self, key: str, yes: bool) -> None: ...
    def open_terminal(self, endpoint: str) -> None: ...
    def open_in_colab(self, endpoint: str) -> None: ...
    def copy_url(self, endpoint: str) -> None: ...
    def copy_lab_command(self, endpoint: str) -> None: ...
    def copy_ssh_command(self, endpoint: str) -> None: ...
    def secrets(self) -> None: ...
    def settings(self) -> None: ...
    def open_log_folder(self) -> None: ...
    def about(self) -> None: ...
    def quit(self) -> None: ...


# The runtime list is listed again when the menu opens and it is older than this (seconds).
LOOKED_AT_WITHIN = 3.0


@dataclass
class _Build:
    """One filling of a menu: its submenus, and where each runtime's figures go."""

    top: QMenu
    submenus: list[QMenu] = field(default_factory=list)
    figures: dict[str, tuple[QMenu, QAction, list[QAction]]] = field(default_factory=dict)

    def dispose(self) -> None:
        for submenu in self.submenus:
            submenu.deleteLater()


class TrayMenu:
    def __init__(self, core: Core, actions: Actions) -> None:
        self.core = core
        self.actions = actions
        self.menu = QMenu()
        self.menu.setToolTipsVisible(True)
        self.menu.aboutToShow.connect(self.rebuild)
        self.menu.aboutToShow.connect(self._list_if_stale)
        self._live = _Build(self.menu)
        self._signature: object = None
        # Per runtime: the figures last read (time, lines, why not) and whether they load.
        self._figures: dict[str, tuple[float, list[str], str | None]] = {}
        self._loading: set[str] = set()

    # ---- building -------------------------------------------------------------------------

    def signature(self) -> object:
        """Everything the menu shows; nothing is redone while this stays the same."""
        core = self.core
        return (
            core.signed_in,
            core.signing_in,
            core.email,
            tuple(core.accounts()),  # each one's state, source and problem
            tuple(core.other_accounts()),
            core.must_sign_in,
            core.problem(),
            tuple(core.rows()),
            core.compute_units_line(),
            tuple(core.connection_url(r.endpoint) is not None for r in core.rows()),
            tuple(core.waiting_questions()),
        )

    def _list_if_stale(self) -> None:
        """A look at the menu lists the runtimes again when the last listing is older than a
        few seconds; the open menu follows the answer (refresh_if_open)."""
        if self.core.signed_in and not self.core.must_sign_in:
            self.core.spawn(self.core.fresh_listing(LOOKED_AT_WITHIN))

    def rebuild(self) -> None:
        self._signature = self.signature()
        self._live.dispose()
        self.menu.clear()
        self._live = _Build(self.menu)
        self._fill(self._live)

    def refresh_if_open(self) -> None:
        """Follow the core while the menu is open, without closing it.

        Replacing a shown menu's actions closes it on X11, and the balance changes on every
        poll while a runtime burns units: so when only words changed (the usual case), they
        are copied onto the shown actions; only a change of entries rebuilds.
        """
        if not self.menu.isVisible() or self.signature() == self._signature:
            return
        fresh = _Build(QMenu())  # owned here: it goes, with its submenus, when this returns
        self._fill(fresh)
        if _shape(fresh.top) == _shape(self.menu):
            _copy_words(fresh.top, self.menu)
            self._signature = self.signature()
        else:
            self.rebuild()

    def _fill(self, build: _Build) -> None:
        if self.core.signed_in:
            self._signed_in(build)
        else:
            self._signed_out(build)
        build.top.addSeparator()
        self._add(build.top, "Secrets…", "secrets", self.actions.secrets)
        self._add(build.top, "Settings…", "settings", self.actions.settings)
        self._add(build.top, "Open log folder", "logs", self.actions.open_log_folder)
        self._add(build.top, "About colabtray", "about", self.actions.about)
        self._add(build.top, "Quit", "quit", self.actions.quit)

    def _signed_out(self, build: _Build) -> None:
        top = build.top
        if self.core.signing_in:
            self._note(top, "Waiting for you to sign in, in your browser…", "sign-in-waiting")
            self._add(top, "Cancel sign-in", "cancel-sign-in", self.actions.cancel_sign_in)
        else:
            self._add(top, "Sign in with Google…", "sign-in", self.actions.sign_in)
        for account in self.core.other_accounts():  # listed, but none active (rare)
            retry = RETRY.get(account.source)
            if account.state is AccountState.NEEDS_SIGN_IN and retry:
                entry = self._add(
                    top,
                    f"{account.email}: {retry}",
                    "retry-sign-in",
                    partial(self.actions.retry_sign_in, account.email),
                )
                entry.setToolTip(printable(account.problem or ""))
                continue
            self._add(
                top,
                f"Sign in again as {account.email}…",
                "sign-in-as",
                partial(self.actions.sign_in, account.email),
            )

    def _signed_in(self, build: _Build) -> None:
        core, top = self.core, build.top
        retry = self._retry_text()
        self._account_menu(build)
        top.addSeparator()
        if core.signing_in:
            self._note(top, "Waiting for you to sign in, in your browser…", "sign-in-waiting")
            self._add(top, "Cancel sign-in", "cancel-sign-in", self.actions.cancel_sign_in)
        elif core.must_sign_in and retry and core.email:
            # The remedy is outside colabtray (a gcloud command): say it, then "try again".
            why = core.problem() or ""
            self._note(top, why, "problem")
            entry = self._add(
                top,
                retry,
                "retry-sign-in",
                partial(self.actions.retry_sign_in, core.email),
                icon="attention",
            )
            entry.setToolTip(printable(why))
        elif core.must_sign_in:
            self._add(
                top,
                f"Sign in again as {core.email}…" if core.email else "Sign in with Google…",
                "sign-in-again",
                partial(self.actions.sign_in, core.email),
                icon="attention",
            )
        problem = core.problem()
        if problem and not core.must_sign_in:
            self._note(top, problem, "problem", icon="unreachable")
        self._questions(build)
        rows = core.rows()
        if not rows:
            self._note(top, "No runtime" if core.listed else "Looking for runtimes…", "no-runtime")
        several = bool(core.other_accounts())  # then each account's runtimes under its email
        heading: object = None
        for row in rows:
            if several and row.account != heading:
                heading = row.account
                self._note(top, row.account or "Account not known yet", "account-heading")
            self._runtime_menu(build, row)
        self._add(top, "New runtime…", "new-runtime", self.actions.new_runtime)
        units = core.compute_units_line()
        if units:
            top.addSeparator()
            self._note(top, units, "compute-units")

    def _questions(self, build: _Build) -> None:
        """Each question a runtime waits on (a secret, a consent page), answerable here until
        it is answered or expires, whatever became of its notification."""
        for question in self.core.waiting_questions():
            submenu = self._submenu(build, question.title, f"question:{question.key}", "attention")
            submenu.setToolTipsVisible(True)
            for yes, text, name in ((True, question.yes, "yes"), (False, question.no, "no")):
                answer = partial(self.actions.answer_question, question.key, yes)
                self._add(submenu, text, f"question-{name}", answer).setToolTip(
                    printable(question.body)
                )

    def _account_menu(self, build: _Build) -> None:
        core = self.core
        submenu = self._submenu(build, core.email or "Signed in", "account")
        if core.ready is not None:
            self._note(submenu, f"Signed in with {core.ready.how}", "ready-token")
            submenu.addSeparator()
        others = core.other_accounts()
        for account in others:
            retry = RETRY.get(account.source)
            if account.state is AccountState.NEEDS_SIGN_IN and retry:
                entry = self._add(
                    submenu,
                    f"{account.email}: {retry}",
                    "retry-sign-in",
                    partial(self.actions.retry_sign_in, account.email),
                )
                entry.setToolTip(printable(account.problem or ""))
            elif account.state is AccountState.NEEDS_SIGN_IN:
                self._add(
                    submenu,
                    f"{account.email} (sign in again…)",
                    "sign-in-as",
                    partial(self.actions.sign_in, account.email),
                )
            else:
                entry = self._add(
                    submenu,
                    f"Switch to {account.email}",
                    "switch-to",
                    partial(self.actions.switch_to, account.email),
                )
                entry.setToolTip(
                    "New runtimes go to this account; every account's runtimes stay served."
                )
        if others:
            submenu.addSeparator()
        switch = self._add(submenu, "Switch account…", "switch-account", self.actions.sign_in)
        switch.setToolTip("Sign in with another Google account in your browser.")
        switch.setEnabled(not core.signing_in)
        self._add(submenu, "Sign out", "sign-out", self.actions.sign_out)

    def _retry_text(self) -> str | None:
        """The words of the retry entry when the active account came from gcloud or ADC."""
        core = self.core
        if core.uses_ready_token or core.email is None:
            return None
        source = core.source_of(core.email)
        return RETRY.get(source) if source is not None else None

    def _runtime_menu(self, build: _Build, row: RuntimeRow) -> None:
        endpoint = row.endpoint
        submenu = self._submenu(
            build, row.label, f"runtime:{endpoint}", icon="attention" if row.pending else None
        )
        submenu.setToolTipsVisible(True)
        if row.pending:
            keep = partial(self.actions.answer_idle, endpoint, True)
            self._add(submenu, "Keep running", "keep-running", keep)
            drop = partial(self.actions.answer_idle, endpoint, False)
            self._add(submenu, "Disconnect now", "disconnect-now", drop)
            submenu.addSeparator()
        else:
            self._note(submenu, row.keeping, "keep-alive")
            submenu.addSeparator()
        terminal = partial(self.actions.open_terminal, endpoint)
        self._add(submenu, "Open terminal", "open-terminal", terminal)
        colab = partial(self.actions.open_in_colab, endpoint)
        self._add(submenu, "Open in Colab", "open-in-colab", colab).setToolTip(
            "Colab's web page attached to this runtime; best-effort: Colab may open a notebook "
            "of its own instead"
        )
        copy = self._add(
            submenu, "Copy connection URL", "copy-url", partial(self.actions.copy_url, endpoint)
        )
        lab = self._add(
            submenu,
            "Copy JupyterLab command",
            "copy-lab-command",
            partial(self.actions.copy_lab_command, endpoint),
        )
        ssh = partial(self.actions.copy_ssh_command, endpoint)
        self._add(submenu, "Copy SSH command", "copy-ssh-command", ssh)
        if self.core.connection_url(endpoint) is None:
            copy.setEnabled(False)
            copy.setText("Copy connection URL (needs the editor bridge)")
            copy.setToolTip(NO_BRIDGE_REASON)
            lab.setEnabled(False)
            lab.setToolTip(NO_BRIDGE_REASON)
        submenu.addSeparator()
        anchor = submenu.addSeparator()
        build.figures[endpoint] = (submenu, anchor, [])
        self._show_figures(endpoint, build)
        disconnect = partial(self.actions.confirm_disconnect, endpoint)
        self._add(submenu, "Disconnect runtime…", "disconnect", disconnect)
        submenu.aboutToShow.connect(partial(self._load_figures, endpoint))

    # ---- live RAM / disk / GPU figures ----------------------------------------------------

    def _load_figures(self, endpoint: str) -> None:
        """Fetch in the background; the submenu shows what is known meanwhile."""
        known = self._figures.get(endpoint)
        if endpoint in self._loading:
            return
        if known is not None and time.monotonic() - known[0] < RESOURCES_MAX_AGE:
            return
        self._loading.add(endpoint)
        self.core.spawn(self._fetch_figures(endpoint))

    async def _fetch_figures(self, endpoint: str) -> None:
        why = None
        try:
            lines = resource_lines(await self.core.resources(endpoint))
        except ColabError as exc:
            lines, why = [CANNOT_READ], exc.message
        except Exception:
            log.exception("reading the resources of %s failed", endpoint)
            lines, why = [CANNOT_READ], bug_sentence("to read them")
        finally:
            self._loading.discard(endpoint)
        self._figures[endpoint] = (time.monotonic(), lines, why)
        self._show_figures(endpoint, self._live)

    def _show_figures(self, endpoint: str, build: _Build) -> None:
        placed = build.figures.get(endpoint)
        if placed is None:
            return
        submenu, anchor, old = placed
        for action in old:
            submenu.removeAction(action)
            action.deleteLater()
        known = self._figures.get(endpoint)
        lines, why = (known[1], known[2]) if known else (["Reading RAM, disk and GPU…"], None)
        new = []
        for line in lines:
            action = QAction(_label(line), submenu)
            action.setObjectName("resources")
            action.setEnabled(False)
            if why:
                action.setToolTip(printable(why))
            submenu.insertAction(anchor, action)
            new.append(action)
        build.figures[endpoint] = (submenu, anchor, new)
        _keep_on_screen(submenu)

    def forget_figures(self, endpoints: set[str]) -> None:
        """Drop figures of runtimes that are gone."""
        for endpoint in list(self._figures):
            if endpoint not in endpoints:
                del self._figures[endpoint]

    # ---- helpers --------------------------------------------------------------------------

    def _add(
        self, menu: QMenu, text: str, name: str, slot: Callable[[], object], icon: str | None = None
    ) -> QAction:
        action = menu.addAction(_label(text))
        action.setObjectName(name)
        action.triggered.connect(lambda *_: slot())  # drop the "checked" argument
        if icon:
            action.setIcon(icons.icon(icon))
        return action

    def _note(self, menu: QMenu, text: str, name: str, icon: str | None = None) -> QAction:
        """A line that informs and cannot be clicked."""
        action = menu.addAction(_label(text))
        action.setObjectName(name)
        action.setEnabled(False)
        if icon:
            action.setIcon(icons.icon(icon))
        return action

    def _submenu(self, build: _Build, title: str, name: str, icon: str | None = None) -> QMenu:
        submenu = QMenu(_label(title), build.top)
        submenu.setObjectName(name)
        submenu.menuAction().setObjectName(name)
        if icon:
            submenu.setIcon(icons.icon(icon))
        build.top.addMenu(submenu)
        build.submenus.append(submenu)
        return submenu


def _entries(menu: QMenu) -> list[QAction]:
    """The actions that say something about the core (not the figures, which load apart)."""
    return [a for a in menu.actions() if a.objectName() != "resources"]


def _shape(menu: QMenu) -> list[object]:
    """Which entries, in which order: what a rebuild would change (the words aside)."""
    shape: list[object] = []
    for action in _entries(menu):
        sub = action.menu()
        shape.append((action.objectName(), _shape(sub) if isinstance(sub, QMenu) else None))
    return shape


def _copy_words(source: QMenu, target: QMenu) -> None:
    """Give ``target``'s entries the texts, states and icons of ``source``'s (same shape)."""
    for new, old in zip(_entries(source), _entries(target), strict=True):
        if old.text() != new.text():
            old.setText(new.text())
        old.setEnabled(new.isEnabled())
        old.setToolTip(new.toolTip())
        old.setIcon(new.icon())
        sub_new, sub_old = new.menu(), old.menu()
        if isinstance(sub_new, QMenu) and isinstance(sub_old, QMenu):
            _copy_words(sub_new, sub_old)


def describe(menu: QMenu) -> list[dict[str, object]]:
    """The menu as data: text, name, enabled, submenu, and where it is on screen if shown.

    Served by the control channel's ``menu`` command, for scripts and end-to-end tests that
    need to know what the tray shows and where to click.
    """
    items: list[dict[str, object]] = []
    for action in menu.actions():
        item: dict[str, object] = {
            "text": action.text(),
            "name": action.objectName(),
            "enabled": action.isEnabled(),
            "separator": action.isSeparator(),
        }
        rect = menu.actionGeometry(action)
        if menu.isVisible() and action.isVisible() and rect.isValid():
            center = menu.mapToGlobal(rect.center())
            item["at"] = [center.x(), center.y()]
        submenu = action.menu()
        if isinstance(submenu, QMenu):
            item["submenu"] = describe(submenu)
            item["open"] = submenu.isVisible()
            if submenu.isVisible():
                item["rect"] = rect_of(submenu)
        items.append(item)
    return items


def rect_of(menu: QMenu) -> list[int]:
    """Where a shown menu is: [x, y, width, height] on the screen."""
    area = menu.geometry()
    return [area.x(), area.y(), area.width(), area.height()]


def _label(text: str) -> str:
    """``text`` as a menu entry shows it: escaped, with ``&`` literal (Qt reads ``&x`` as a
    keyboard shortcut)."""
    return printable(text).replace("&", "&&")


def _keep_on_screen(menu: QMenu) -> None:
    """An open menu that grew (its figures came in) is moved up as far as it needs to stay on
    its screen: Qt places a menu when it opens and leaves it there, so its last entries (such as
    "Disconnect runtime…") could end up below the screen's edge."""
    if not menu.isVisible():
        return
    menu.adjustSize()
    screen = menu.screen().availableGeometry()
    place = menu.geometry()
    if place.bottom() > screen.bottom():
        menu.move(place.x(), max(screen.top(), screen.bottom() - place.height() + 1))
