"""When the runtime list is polled: soon after a change, rarely while nothing changes, and
never more often on average than once per interval, whoever asks (a fake clock)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from colabtray.core.registry import PollPlan


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_soon_after_a_change_then_less_soon_then_rarely() -> None:
    clock = Clock()
    plan = PollPlan(60.0, clock=clock)
    plan.spent()
    assert plan.delay() == 120.0  # nothing changed: half the old rate
    plan.changed()
    waits = []
    for _ in range(6):
        wait = plan.delay()
        waits.append(wait)
        clock.now += wait
        plan.spent()
    assert waits[0] == 5.0 and waits == sorted(waits)
    assert waits[-1] == 120.0  # back to rarely


@settings(max_examples=300)
@given(
    events=st.lists(
        st.tuples(st.floats(0, 200), st.sampled_from(["change", "look", "nothing"])),
        max_size=60,
    )
)
def test_the_average_never_exceeds_one_listing_per_interval(events) -> None:
    """Background polls, changes and people looking (menus, lookups), in any order: over any
    run, listings ≤ elapsed / interval + the small budget."""
    clock = Clock()
    plan = PollPlan(60.0, burst=3.0, clock=clock)
    listings = 0
    next_poll = 0.0
    for gap, event in events:
        target = clock.now + gap
        while next_poll <= target:  # the background polls due meanwhile
            clock.now = next_poll
            plan.spent()
            listings += 1
            next_poll = clock.now + plan.delay()
        clock.now = target
        if event == "change":
            plan.changed()
            next_poll = min(next_poll, clock.now + plan.delay())
    assert listings <= clock.now / 60.0 + 3.0 + 1
