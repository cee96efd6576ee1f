"""Logging set-up shared by every entry point.

HTTP libraries are kept at WARNING even with ``--verbose``: their debug lines carry full
URLs, and colabtray logs its own requests without query strings or headers instead.
"""

from __future__ import annotations

import logging

_QUIET = {"httpx2": logging.WARNING, "httpcore2": logging.WARNING, "hpack": logging.WARNING}


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    if not verbose:  # each retry is logged as a warning; the final error says enough
        logging.getLogger("stamina").setLevel(logging.ERROR)
