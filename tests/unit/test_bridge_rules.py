"""The bridge's pure rules, fast: who may use a port (guard), and Colab's kernel messages
(encode, decode, what counts as a request the bridge answers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from colabtray.bridge import guard
from colabtray.bridge.kernel_messages import (
    auth_request,
    colab_reply,
    decode,
    encode,
    secret_request,
)

PORT = 41234
SECRET = "s3cr3t-" + "x" * 30
HOSTS = [
    f"127.0.0.1:{PORT}",
    f"localhost:{PORT}",
    f"LOCALHOST:{PORT}",
    "evil.example",
    f"127.0.0.1:{PORT + 1}",
    "",
    None,
]
ORIGINS = [
    None,
    f"http://127.0.0.1:{PORT}",
    f"http://localhost:{PORT}",
    "http://evil.example",
    "null",
    f"https://127.0.0.1:{PORT}",
]
SITES = [None, "same-origin", "none", "same-site", "cross-site"]


@given(
    host=st.sampled_from(HOSTS),
    origin=st.sampled_from(ORIGINS),
    site=st.sampled_from(SITES),
    how=st.sampled_from(["query", "header", "cookie", "wrong", "none"]),
)
def test_a_request_is_admitted_exactly_when_every_rule_holds(
    host: str | None, origin: str | None, site: str | None, how: str
) -> None:
    verdict = guard.check(
        port=PORT,
        secret=SECRET,
        host=host,
        origin=origin,
        fetch_site=site,
        query_tokens=[SECRET] if how == "query" else (["nope"] if how == "wrong" else []),
        authorization=f"token {SECRET}" if how == "header" else None,
        cookie=f"{guard.cookie_name(PORT)}={SECRET}" if how == "cookie" else None,
    )
    expected = (
        host is not None
        and host.lower() in (f"127.0.0.1:{PORT}", f"localhost:{PORT}")
        and (origin is None or origin in (f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"))
        and how in ("query", "header", "cookie")
        and not (how == "cookie" and site in ("same-site", "cross-site"))
    )
    assert verdict.ok is expected
    assert SECRET not in verdict.reason and "\n" not in verdict.reason


def request(msg_type: str, request_type: str, body: dict, msg_id: object = 7) -> dict:
    return {
        "header": {"msg_type": msg_type, "msg_id": "k-1", "session": "kernel"},
        "parent_header": {},
        "metadata": {"colab_request_type": request_type, "colab_msg_id": msg_id},
        "content": {"request": body},
        "channel": "stdin",
    }


def test_frames_round_trip_in_both_protocols() -> None:
    message = request("colab_request", "GetSecret", {"key": "HF_TOKEN"})
    for v1 in (False, True):
        assert decode(encode(message, v1), v1) == message
    assert decode(b"\x00\x01garbage", True) is None
    assert decode("not json", False) is None


def test_only_colabs_requests_are_taken_out() -> None:
    secret = secret_request(request("colab_request", "GetSecret", {"key": "HF_TOKEN"}))
    assert secret is not None and (secret.name, secret.colab_msg_id) == ("HF_TOKEN", 7)
    auth = auth_request(request("colab_request", "request_auth", {"authType": "dfs_ephemeral"}))
    assert auth is not None and auth.auth_type == "dfs_ephemeral"
    for other in (
        request("execute_request", "GetSecret", {"key": "X"}),  # not a colab_request
        request("colab_request", "GetSecret", {"key": 5}),  # no name
        request("colab_request", "GetSecret", {"key": "X"}, msg_id=True),  # not a number
        request("colab_request", "request_auth", {"authType": "something_else"}),
    ):
        assert secret_request(other) is None and auth_request(other) is None


def test_a_reply_carries_data_or_an_error() -> None:
    reply = colab_reply("kernel", 7, data={"exists": True, "access": False, "payload": ""})
    assert reply["content"]["value"] == {
        "type": "colab_reply",
        "colab_msg_id": 7,
        "data": {"exists": True, "access": False, "payload": ""},
    }
    failed = colab_reply("kernel", 8, error="declined")
    assert failed["content"]["value"]["error"] == "declined"
    assert failed["channel"] == "stdin" and failed["header"]["msg_type"] == "input_reply"
