"""The bounds on a runtime's kernel requests, on a clock the test moves: whatever a notebook
sends, the record of requests taken stays within its size and age, and the answers within
their rate."""

from __future__ import annotations

from colabtray.bridge.kernel_messages import (
    MAX_IN_FLIGHT,
    REFUSALS_PER_SECOND,
    REQUEST_BURST,
    SEEN_FOR,
    SEEN_MAX,
    RuntimeRequests,
    Seen,
    TokenBucket,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_seen_is_bounded_in_size_and_age_and_still_recognizes_repeats() -> None:
    clock = Clock()
    seen = Seen(SEEN_FOR, SEEN_MAX, clock)
    for index in range(10 * SEEN_MAX):
        assert seen.add(("kernel", str(index)))
        assert not seen.add(("kernel", str(index)))  # the other socket's copy
        assert len(seen) <= SEEN_MAX
    clock.now += SEEN_FOR + 1
    assert seen.add(("kernel", "late"))
    assert len(seen) == 1  # everything older went at once


def test_a_bucket_gives_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(5.0, 20, clock)
    assert sum(bucket.take() for _ in range(1000)) == 20
    clock.now += 1.0
    assert sum(bucket.take() for _ in range(1000)) == 5
    clock.now += 3600.0
    assert sum(bucket.take() for _ in range(1000)) == 20  # no more than the burst saved up


def test_a_flood_is_answered_at_the_rate_refused_at_once_then_dropped() -> None:
    clock = Clock()
    requests = RuntimeRequests("m-s-1", clock=clock)
    verdicts = [requests.admit() for _ in range(30_000)]
    assert verdicts.count("answer") == REQUEST_BURST
    assert verdicts.count("refuse") == REFUSALS_PER_SECOND
    assert verdicts.count("drop") == 30_000 - REQUEST_BURST - REFUSALS_PER_SECOND
    # However fast they are answered, no more than MAX_IN_FLIGHT are at work at once.
    requests.in_flight = MAX_IN_FLIGHT
    clock.now += 60.0
    assert requests.admit() == "refuse"
    requests.in_flight = 0
    assert requests.admit() == "answer"
