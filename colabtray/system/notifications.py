"""Desktop notifications, through whatever this desktop offers.

The first choice is the platform's notification service through desktop-notifier (D-Bus on
Linux, sending and listening on one connection). It runs on an asyncio loop of its own in a
worker thread: on the qasync loop, dbus-fast's replies arrive but the ActionInvoked signals
that carry button clicks never do (seen with qasync 0.28, dbus-fast 5.2, dunst 1.9), and
keeping socket work off the Qt loop is the rule anyway. Clicks are handed back to the
caller's loop. Where there is no service, ``fallback`` shows the message another way (the
tray balloon, which the tray passes in). Capabilities are asked, not assumed: desktop-
notifier's ``send`` only logs a warning when no server exists, while ``get_capabilities``
raises, so that is the probe.

A title and a body are shown as one line each with every control or format character escaped
(:func:`colabtray.text.printable`): runtime names and Colab's error texts reach them. On Linux
the body is also escaped as markup: the freedesktop servers (dunst, GNOME, KDE) read a body's
``<b>``, ``<a href>`` and ``<img>``, and a runtime's text must show as the text it is.
"""

from __future__ import annotations

import asyncio
import html
import logging
import sys
from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any, TypeVar

from desktop_notifier import Button, Capability, DesktopNotifier, Icon, Urgency

from colabtray.system.loop_thread import LoopThread
from colabtray.text import printable

log = logging.getLogger(__name__)

Fallback = Callable[[str, str], None]
T = TypeVar("T")


class Notifier:
    """``await notifier.notify(title, body)`` and buttons; never raises for a missing service."""

    def __init__(self, fallback: Fallback | None = None, app_name: str = "colabtray") -> None:
        self._fallback = fallback
        self._app_name = app_name
        self._thread = LoopThread("colabtray-notifications")
        self._service: DesktopNotifier | None = None
        self._capabilities: frozenset[Capability] | None = None

    async def _on_thread(self, make: Callable[[DesktopNotifier], Coroutine[Any, Any, T]]) -> T:
        async def call() -> T:
            if self._service is None:
                icon_path = resources.files("colabtray.resources") / "icons" / "colabtray.svg"
                icon = Icon(path=icon_path) if icon_path.is_file() else None  # type: ignore[arg-type]
                self._service = DesktopNotifier(app_name=self._app_name, app_icon=icon)
            return await make(self._service)

        return await asyncio.wrap_future(self._thread.submit(call()))

    async def capabilities(self) -> frozenset[Capability]:
        """What the notification service supports; empty if there is no service."""
        if self._capabilities is None:
            try:
                found = await self._on_thread(lambda service: service.get_capabilities())
                self._capabilities = frozenset(found)
            except Exception as exc:  # no server on the bus, no bus at all, …
                log.info("no notification service: %s", type(exc).__name__)
                self._capabilities = frozenset()
        return self._capabilities

    def forget_capabilities(self) -> None:
        """Ask again next time (the notification server may have been restarted)."""
        self._capabilities = None

    async def notify(self, title: str, body: str) -> None:
        title, body = printable(title), printable(body)
        if await self.capabilities():
            try:
                shown = _as_body(body)
                await self._on_thread(lambda service: service.send(title=title, message=shown))
                return
            except Exception as exc:
                log.info("the notification service failed: %s", type(exc).__name__)
                self.forget_capabilities()
        if self._fallback is not None:
            self._fallback(title, body)
        else:
            log.info("notification (nowhere to show it): %s", title)

    async def can_ask(self) -> bool:
        """Whether a notification here can carry buttons whose clicks reach us."""
        return Capability.BUTTONS in await self.capabilities()

    async def ask(
        self, title: str, body: str, buttons: list[tuple[str, Callable[[], None]]]
    ) -> str | None:
        """A notification with buttons; returns its id (to withdraw it), None if it failed.

        Each button's callback runs on the caller's loop.
        """
        home = asyncio.get_running_loop()
        title, body = printable(title), _as_body(printable(body))

        def relay(pressed: Callable[[], None]) -> Callable[[], None]:
            def on_home() -> None:
                home.call_soon_threadsafe(pressed)

            return on_home

        try:
            return await self._on_thread(
                lambda service: service.send(
                    title=title,
                    message=body,
                    urgency=Urgency.Critical,  # stays up until answered or withdrawn
                    buttons=[Button(title=label, on_pressed=relay(cb)) for label, cb in buttons],
                )
            )
        except Exception as exc:
            log.info("could not show a notification with buttons: %s", type(exc).__name__)
            self.forget_capabilities()
            return None

    async def withdraw(self, identifier: str) -> None:
        try:
            await self._on_thread(lambda service: service.clear(identifier))
        except Exception as exc:
            log.info("could not withdraw a notification: %s", type(exc).__name__)

    def close(self) -> None:
        """Hang up on the notification service and stop the thread (at quit)."""
        if self._service is not None:
            # desktop-notifier has no close(); its D-Bus backend keeps the connection in
            # ``_backend.bus``. Disconnecting it on its own loop closes the socket cleanly.
            bus = getattr(getattr(self._service, "_backend", None), "bus", None)
            if bus is not None:

                async def hang_up() -> None:
                    bus.disconnect()
                    await bus.wait_for_disconnect()

                try:
                    self._thread.submit(hang_up()).result(timeout=5)
                except Exception as exc:
                    log.info("closing the notification connection: %s", type(exc).__name__)
            self._service = None
        self._thread.stop()


def _as_body(text: str) -> str:
    """``text`` as a notification body: markup-escaped where the server reads markup."""
    return html.escape(text, quote=False) if sys.platform.startswith("linux") else text
