"""``auth.authenticate_user()``: asks the frontend for the user's Google credentials
(``auth_user_ephemeral``)."""

from __future__ import annotations

from google.colab import _message


def authenticate_user(timeout_sec: float = 120.0, *, channel: str = "stdin") -> None:
    _message.blocking_request(
        "request_auth", {"authType": "auth_user_ephemeral"}, timeout_sec, channel=channel
    )
