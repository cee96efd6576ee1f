"""``userdata.get(name)``: asks the frontend for a notebook secret (``GetSecret``), as Colab's
``google.colab.userdata`` does: ``ValueError`` before asking for a key that is empty, not a
string or has whitespace; the reply's data is ``{"exists", "access", "payload"}``; no reply
within 10 s raises ``TimeoutException`` (``../shared/docs/colab-public-api.md`` §2)."""

from __future__ import annotations

from google.colab import _message

TIMEOUT_SEC = 10


class SecretNotFoundError(KeyError):
    """No secret of that name."""


class NotebookAccessError(PermissionError):
    """The secret exists, but this notebook may not read it."""


class TimeoutException(TimeoutError):
    """No reply from the frontend in time (as when run without the Colab UI)."""


def get(key: str) -> str:
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        raise ValueError(f"{key!r} is not a secret's name: a non-empty string without spaces")
    try:
        reply = _message.blocking_request("GetSecret", {"key": key}, timeout_sec=TIMEOUT_SEC)
    except TimeoutError:
        raise TimeoutException(
            f"Requesting secret {key} timed out. Secrets can only be fetched when running "
            "from the Colab UI."
        ) from None
    if not isinstance(reply, dict) or not reply.get("exists", False):
        raise SecretNotFoundError(key)
    if not reply.get("access", False):
        raise NotebookAccessError(key)
    return str(reply.get("payload", ""))
