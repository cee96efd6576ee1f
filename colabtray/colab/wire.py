"""Facts of Colab's wire that several layers need, stated once: how a runtime's proxy token
is sent, and how long before it expires it is renewed.

The token goes in the ``X-Colab-Runtime-Proxy-Token`` header of plain HTTP requests, and in
the ``colab-runtime-proxy-token`` query parameter of WebSocket paths (``/colab/tty``,
``/colab/ssh``), where Colab demands it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RUNTIME_TOKEN_HEADER = "X-Colab-Runtime-Proxy-Token"
RUNTIME_TOKEN_QUERY = "colab-runtime-proxy-token"

# A runtime's proxy token is renewed when less than this is left (Google's extension: 5 min).
PROXY_TOKEN_LEAD = 300.0
# A tool holding a token (cp) asks the app for a fresh one when less than this is left: less
# than the renewal lead, so a token it is handed (at least PROXY_TOKEN_LEAD left) is not due
# again a moment later.
TOOL_TOKEN_LEAD = 60.0


def expires_within(expires_at: datetime, seconds: float) -> bool:
    """Whether something that stops working at ``expires_at`` has ``seconds`` or less left."""
    return datetime.now(UTC) + timedelta(seconds=seconds) >= expires_at
