"""Notice when the machine wakes from sleep, without asking the platform.

The monotonic clock stops while a machine is suspended (CLOCK_MONOTONIC on Linux, likewise on
macOS and Windows), the wall clock does not. A watcher that wakes up every few seconds and
finds that much more wall time than monotonic time has passed was asleep in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class WakeWatcher:
    def __init__(
        self,
        on_wake: Callable[[], None],
        *,
        period: float = 5.0,
        slack: float = 10.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_wake = on_wake
        self._period = period
        self._slack = slack
        self._wall = wall
        self._monotonic = monotonic
        self._last = (wall(), monotonic())

    def check(self) -> bool:
        """Compare the clocks since the last check; call ``on_wake`` after a sleep."""
        wall, mono = self._wall(), self._monotonic()
        last_wall, last_mono = self._last
        self._last = (wall, mono)
        slept = (wall - last_wall) - (mono - last_mono)
        if slept > self._slack:
            log.info("woke up after about %.0f s asleep", slept)
            self._on_wake()
            return True
        return False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            self.check()
