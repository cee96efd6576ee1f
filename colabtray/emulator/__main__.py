"""``python -m colabtray.emulator`` / ``colabtray emulator``: run the local Google + Colab."""

from __future__ import annotations

import asyncio
import logging
import sys

from colabtray.emulator.config import parse_config
from colabtray.emulator.server import serve
from colabtray.system.logs import OneLineFormatter, Throttle


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run until a stop signal, return the status."""
    try:
        config = parse_config(argv)
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2)
        return exc.code if isinstance(exc.code, int) else 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Throttle())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # aiohttp's access log would print query strings, which may hold tokens.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
