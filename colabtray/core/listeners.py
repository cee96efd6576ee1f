"""Who to tell when something changed: a list of callbacks where one that fails is logged and
does not stop the others (a broken view must not silence the rest of the app)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Listeners:
    """``add(callback)``; ``tell(*args)`` calls each with ``args``, in the order added."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._callbacks: list[Callable[..., None]] = []

    def add(self, callback: Callable[..., None]) -> None:
        self._callbacks.append(callback)

    def tell(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            try:
                callback(*args)
            except Exception:
                log.exception("a listener to %s failed", self._what)
