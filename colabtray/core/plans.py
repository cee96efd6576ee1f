"""Which Colab plan each account has, as Colab last named it, remembered across runs.

Colab names the plan in few places (docs: colab-public-api.md §3): an assign reply's
``subTier``, GAPI ``v1/user-info``'s ``subscriptionTier`` (``account_api = "gapi"``, whose
token carries the colaboratory scope), and the public API's ``GetSubscription``. The
default account call, ``/tun/m/ccu-info``, names none. So a plan Colab told once is kept per
account in ``accounts.json`` (a plan is no secret) and used until Colab says otherwise; where
nothing ever told it, the plan is unknown and nothing is guessed from the balance.

Every source reports through :meth:`RuntimeRegistry.learn_plan
<colabtray.core.registry.RuntimeRegistry.learn_plan>`, the one place a plan is learned; a new
source (the public API's subscription) calls it too. This module only remembers.
"""

from __future__ import annotations

import logging
from pathlib import Path

from colabtray.colab.models import FREE, PRO, PRO_PLUS
from colabtray.system.jsonfile import read_json, write_json

log = logging.getLogger(__name__)

KNOWN = frozenset({FREE, PRO, PRO_PLUS})
KEY = "plans"  # beside "accounts" and "active" in accounts.json


class Plans:
    """email → plan, kept in the accounts file; another process's writes are read afresh."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def of(self, email: str | None) -> str | None:
        """The plan Colab last named for ``email``, or None if it never did."""
        if not email:
            return None
        tier = _plans(read_json(self._path)).get(email)
        return tier if tier in KNOWN else None

    def remember(self, email: str | None, tier: str | None) -> None:
        """Keep ``tier`` for ``email`` (nothing to keep without both); written only on change."""
        if not email or tier not in KNOWN:
            return
        data = read_json(self._path)
        data = data if isinstance(data, dict) else {}
        plans = _plans(data)
        if plans.get(email) == tier:
            return
        plans[email] = tier
        try:
            write_json(self._path, {**data, KEY: plans})
        except OSError as exc:
            log.warning("could not remember the plan of %s in %s: %s", email, self._path, exc)

    def forget(self, emails: list[str]) -> None:
        """Drop the plans of accounts signed out."""
        data = read_json(self._path)
        if not isinstance(data, dict):
            return
        plans = _plans(data)
        if not any(email in plans for email in emails):
            return
        for email in emails:
            plans.pop(email, None)
        write_json(self._path, {**data, KEY: plans})


def _plans(data: object) -> dict[str, str]:
    found = data.get(KEY) if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}
