"""``colab_request`` out, ``colab_reply`` back: how Colab code in a kernel asks its frontend.

The request goes on the stdin channel to the client that sent the running execute request
(as ``input_request`` does), or on iopub to every client (``channel="iopub"``; Google's CLI
saw requests there). The kernel then polls its stdin socket until an ``input_reply`` arrives
whose ``content.value`` is ``{"type": "colab_reply", "colab_msg_id": <ours>}``; an ``error``
in it raises :class:`MessageError`, and no reply within ``timeout_sec`` raises
:class:`TimeoutError`, so a cell never hangs for ever.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

import zmq

_ids = itertools.count(1)


class MessageError(RuntimeError):
    """The frontend answered with an error."""


def _kernel() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        raise RuntimeError("google.colab needs to run in a Jupyter kernel")
    return shell.kernel


def send_request(request_type: str, request: Any, *, channel: str = "stdin") -> int:
    """Send a ``colab_request``; returns its ``colab_msg_id``."""
    kernel = _kernel()
    msg_id = next(_ids)
    content = {"request": request}
    metadata = {"colab_request_type": request_type, "colab_msg_id": msg_id}
    parent = kernel.get_parent("shell")
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    if channel == "iopub":
        kernel.session.send(
            kernel.iopub_socket, "colab_request", content, parent, metadata=metadata
        )
    else:
        _drain(kernel)
        kernel.session.send(
            kernel.stdin_socket,
            "colab_request",
            content,
            parent,
            ident=kernel._parent_ident["shell"],
            metadata=metadata,
        )
    return msg_id


def _drain(kernel: Any) -> None:
    """Drop stale replies, as ipykernel does before an input_request."""
    while True:
        try:
            kernel.stdin_socket.recv_multipart(zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EAGAIN:
                return
            raise


def read_reply(msg_id: int, timeout_sec: float | None = None) -> Any:
    """Wait for the ``colab_reply`` to ``msg_id``; returns its ``data``."""
    kernel = _kernel()
    socket = kernel.stdin_socket
    deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
    while deadline is None or time.monotonic() < deadline:
        readable, _, failed = zmq.select([socket], [], [socket], 0.05)
        if not (readable or failed):
            continue
        _ident, reply = kernel.session.recv(socket)
        if not reply:
            continue
        value = reply.get("content", {}).get("value")
        if not isinstance(value, dict) or value.get("type") != "colab_reply":
            continue
        if value.get("colab_msg_id") != msg_id:
            continue
        if "error" in value:
            raise MessageError(str(value["error"]))
        return value.get("data")
    raise TimeoutError(f"no reply to colab_request {msg_id} within {timeout_sec} s")


def blocking_request(
    request_type: str, request: Any, timeout_sec: float | None = None, *, channel: str = "stdin"
) -> Any:
    """Send a ``colab_request`` and wait for its reply."""
    return read_reply(send_request(request_type, request, channel=channel), timeout_sec)
