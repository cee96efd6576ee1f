"""The log redaction filter masks token shapes wherever they hide in a record."""

from __future__ import annotations

import logging

from colabtray.logs import RedactSecrets


def render(msg: str, *args: object) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    RedactSecrets().filter(record)
    return record.getMessage()


def test_token_shapes_are_masked_in_messages_and_arguments():
    line = render(
        "got %s and %s; GET /x?code=4/abc&state=s1 Authorization: Bearer abc.def",
        "ya29.a0AfB_byC-secret",
        "1//0gRefresh-secret",
    )
    for secret in ("a0AfB_byC-secret", "0gRefresh-secret", "4/abc", "abc.def"):
        assert secret not in line
    assert "ya29.[hidden]" in line and "code=[hidden]" in line


def test_ordinary_lines_are_untouched():
    assert render("listed %d runtimes on %s", 3, "gpu-t4-s-abc") == (
        "listed 3 runtimes on gpu-t4-s-abc"
    )
