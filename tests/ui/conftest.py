"""pytest-qt helpers for the tray: a core in a chosen state, the tray over it, menu reading.

Most tests here set the core's state directly (who is signed in, what the registry holds)
and read the menu that results; nothing is started, so nothing reaches the network. Tests
that click through to the backend use the emulator and run on the app's qasync loop.
"""

from __future__ import annotations

import contextlib
import gc
import json
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import fail
from playwright.async_api import Browser, async_playwright
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu

from colabtray.auth.tokens import SecretStore
from colabtray.colab.models import ComputeUnits, Runtime
from colabtray.core.app import Core
from colabtray.core.registry import RegistryState
from colabtray.settings import load_settings
from colabtray.ui import eventloop
from colabtray.ui.tray import Tray
from tests.fixtures.browser import CHROMIUM_ARGS

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens; no test here should get that far


def run(qapp: QApplication, coro: Coroutine[Any, Any, Any], seconds: float = 60.0) -> Any:
    """Run ``coro`` on a fresh app loop (qasync over ``qapp``), like the app does.

    The closed loop leaves Qt objects (its timer object, sockets' notifiers) in reference
    cycles. They are collected here, on the main thread: if a later collection ran in
    another thread (an emulator fixture's reader), Qt could not stop their timers there and
    would fire one on freed memory afterwards.
    """
    import asyncio

    try:
        return eventloop.run(qapp, asyncio.wait_for(coro, seconds))
    finally:
        gc.collect()


def offline_core(
    tmp_path: Path,
    *,
    token: str | None = "ready-token",  # noqa: S107 - a fake; the backend is never called
    accounts: tuple[str, ...] = (),
    active: str | None = None,
    **overrides: object,
) -> Core:
    """A core whose backend is unreachable (never called): its state is set by the test."""
    config = tmp_path / "config"
    if accounts:
        config.mkdir(parents=True, exist_ok=True)
        (config / "accounts.json").write_text(
            json.dumps({"accounts": list(accounts), "active": active or accounts[0]})
        )
    settings = load_settings(
        colab_url=UNREACHABLE,
        gapi_url=UNREACHABLE,
        public_api_url=UNREACHABLE,
        userinfo_url=UNREACHABLE,
        oauth_auth_url=UNREACHABLE + "/auth",
        oauth_token_url=UNREACHABLE + "/token",
        client_id="test-client",
        access_token=token,
        config_dir=config,
        state_dir=tmp_path / "state",
        log_dir=tmp_path / "log",
        **overrides,
    )
    return Core(settings, secrets=SecretStore(fail.Keyring()))


def runtime(endpoint: str, variant: str, accelerator: str | None, high_mem: bool = False):
    return Runtime.model_validate(
        {
            "endpoint": endpoint,
            "variant": variant,
            "accelerator": accelerator or "NONE",
            "machineShape": 1 if high_mem else 0,
        }
    )


def active_state(core: Core) -> RegistryState:
    """The active account's registry state, which a test sets (the fleet's is a view of it)."""
    registry = core.fleet.active_registry
    assert registry is not None, "nobody is signed in"
    return registry.state


def with_runtimes(core: Core, *runtimes: tuple[str, Runtime]) -> None:
    state = active_state(core)
    state.loaded = True
    state.runtimes = {rt.endpoint: rt for _, rt in runtimes}
    state.names = {rt.endpoint: name for name, rt in runtimes}
    state.compute_units = ComputeUnits(balance=98.5, rate_per_hour=3.92)


@pytest.fixture(autouse=True)
def tray_app(qapp: QApplication) -> Iterator[QApplication]:
    """As in the app: closing a dialog must not end the loop (the tray is no window).

    After each test, what it left in reference cycles (closed qasync loops and their timer
    objects, cores, trays) is collected here, on the main thread, once the test's own
    references are gone: see run().
    """
    qapp.setQuitOnLastWindowClosed(False)
    yield qapp
    gc.collect()


@pytest.fixture
def make_tray(qtbot, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Tray]]:
    """Build a Tray over a core; hidden and closed at the end.

    There is no session bus for its notifications (so the tray's own fallback shows them):
    none is started for them, and no notification daemon either.
    """
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/colabtray-test-bus")
    made: list[Tray] = []

    def make(core: Core, **options: Any) -> Tray:
        options.setdefault("quit", lambda: None)
        tray = Tray(core, **options)
        made.append(tray)
        return tray

    yield make
    for tray in made:
        tray.hide()
        tray.notifier.close()
    made.clear()
    gc.collect()  # on the main thread (see run())


def action(menu: QMenu, name: str) -> QAction:
    """The first action named ``name``, searching submenus too."""
    for item in menu.actions():
        if item.objectName() == name:
            return item
        sub = item.menu()
        if isinstance(sub, QMenu):
            try:
                return action(sub, name)
            except LookupError:
                pass
    raise LookupError(f"no action {name!r} in the menu")


def texts(menu: QMenu) -> list[str]:
    """The entries' texts, submenus as (title, [their texts]); separators as '---'."""
    found: list[Any] = []
    for item in menu.actions():
        sub = item.menu()
        if item.isSeparator():
            found.append("---")
        elif isinstance(sub, QMenu):
            found.append((item.text(), texts(sub)))
        else:
            found.append(item.text())
    return found


def submenu(menu: QMenu, name: str) -> QMenu:
    sub = action(menu, name).menu()
    assert isinstance(sub, QMenu)
    return sub


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched as tests/fixtures/browser.py does, on the running loop.

    That fixture's browser lives on pytest-asyncio's loop; a test that clicks through the
    tray runs on the app's qasync loop (see run()), where Playwright works as well.
    """
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed (scripts/test.sh installs it)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def allow_in_browser(browser: Browser, url: str, email: str = "ada@example.com") -> None:
    """What a person does on the emulator's Google consent page (as tests/e2e/test_signin.py
    does): choose the account, Allow, and see the sign-in page say so."""
    page = await browser.new_page()
    await page.goto(url)
    await page.check(f"input[value='{email}']")
    await page.click("#allow")
    await page.wait_for_selector("text=You are signed in", timeout=30_000)
