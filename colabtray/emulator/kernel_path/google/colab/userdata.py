"""``userdata.get(name)``: asks the frontend for a notebook secret (``GetSecret``), as Colab's
``google.colab.userdata`` does: the reply's data is ``{"exists", "access", "payload"}``."""

from __future__ import annotations

from google.colab import _message


class SecretNotFoundError(KeyError):
    """No secret of that name."""


class NotebookAccessError(PermissionError):
    """The secret exists, but this notebook may not read it."""


def get(key: str) -> str:
    reply = _message.blocking_request("GetSecret", {"key": key}, timeout_sec=None)
    if not isinstance(reply, dict) or not reply.get("exists", False):
        raise SecretNotFoundError(key)
    if not reply.get("access", False):
        raise NotebookAccessError(key)
    return str(reply.get("payload", ""))
