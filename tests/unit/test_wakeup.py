"""Waking from sleep is noticed from the clocks (the suspend itself cannot happen here)."""

from __future__ import annotations

from colabtray.core.wakeup import WakeWatcher


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 50.0

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def suspend(self, seconds: float) -> None:
        self.wall += seconds  # the monotonic clock stands still while suspended


def test_a_gap_between_the_clocks_is_a_wake_up_and_nothing_else_is():
    clocks, woke = Clocks(), []
    watcher = WakeWatcher(
        lambda: woke.append(1), wall=lambda: clocks.wall, monotonic=lambda: clocks.mono
    )
    clocks.run(5)
    assert not watcher.check()
    clocks.run(3)
    clocks.suspend(600)
    clocks.run(2)
    assert watcher.check() and woke == [1]
    clocks.run(5)
    clocks.wall += 3  # NTP nudging the wall clock a little is no sleep
    assert not watcher.check() and woke == [1]
