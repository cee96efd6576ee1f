"""A listener that fails is logged and the others are still told (a broken view must not
silence the tray's menu, the bridge or keep-alive)."""

from __future__ import annotations

import logging

import pytest

from colabtray.core.listeners import Listeners


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    told: list[str] = []
    listeners = Listeners("the test")
    listeners.add(lambda value: told.append(f"first {value}"))
    listeners.add(lambda value: 1 / 0)
    listeners.add(lambda value: told.append(f"third {value}"))
    with caplog.at_level(logging.ERROR):
        listeners.tell("x")
    assert told == ["first x", "third x"]
    assert "a listener to the test failed" in caplog.text and "ZeroDivisionError" in caplog.text
