"""Desktop notifications, through whatever this desktop offers.

The first choice is the platform's notification service through desktop-notifier (D-Bus on
Linux, sending and listening on one connection, on the asyncio loop). Where there is none,
``fallback`` shows the message another way (the tray balloon, which the tray passes in).
Capabilities are asked, not assumed: desktop-notifier's ``send`` only logs a warning when no
server exists, while ``get_capabilities`` raises, so that is the probe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources

from desktop_notifier import DesktopNotifier, Icon

log = logging.getLogger(__name__)

Fallback = Callable[[str, str], None]


class Notifier:
    """``await notifier.notify(title, body)``; never raises for a missing service."""

    def __init__(self, fallback: Fallback | None = None, app_name: str = "colabtray") -> None:
        icon_path = resources.files("colabtray.resources") / "icons" / "colabtray.svg"
        icon = Icon(path=icon_path) if icon_path.is_file() else None  # type: ignore[arg-type]
        self._service = DesktopNotifier(app_name=app_name, app_icon=icon)
        self._fallback = fallback
        self._capabilities: frozenset[str] | None = None

    async def capabilities(self) -> frozenset[str]:
        """What the notification service supports; empty if there is no service."""
        if self._capabilities is None:
            try:
                found = await self._service.get_capabilities()
                self._capabilities = frozenset(str(c) for c in found)
            except Exception as exc:  # no server on the bus, no bus at all, …
                log.info("no notification service: %s", type(exc).__name__)
                self._capabilities = frozenset()
        return self._capabilities

    def forget_capabilities(self) -> None:
        """Ask again next time (the notification server may have been restarted)."""
        self._capabilities = None

    async def notify(self, title: str, body: str) -> None:
        if await self.capabilities():
            try:
                await self._service.send(title=title, message=body)
                return
            except Exception as exc:
                log.info("the notification service failed: %s", type(exc).__name__)
                self.forget_capabilities()
        if self._fallback is not None:
            self._fallback(title, body)
        else:
            log.info("notification (nowhere to show it): %s: %s", title, body)

    @property
    def service(self) -> DesktopNotifier:
        return self._service
