"""The log redaction filter masks token shapes wherever they hide in a record."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.system.logs import RedactSecrets
from tests.fixtures.credentials import access_token, refresh_token


def render(msg: str, *args: object) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    RedactSecrets().filter(record)
    return record.getMessage()


def test_token_shapes_are_masked_in_messages_and_arguments():
    line = render(
        "got %s and %s; GET /x?code=4/abc&state=s1 Authorization: Bearer abc.def",
        access_token("in-a-message"),
        refresh_token("in-an-argument"),
    )
    for secret in ("in-a-message", "in-an-argument", "4/abc", "abc.def"):
        assert secret not in line
    assert "ya29.[hidden]" in line and "code=[hidden]" in line


def test_ordinary_lines_are_untouched():
    assert render("listed %d runtimes on %s", 3, "gpu-t4-s-abc") == (
        "listed 3 runtimes on gpu-t4-s-abc"
    )


def test_the_log_file_is_private_rotates_privately_and_masks_tracebacks(tmp_path):
    import stat

    from colabtray.system.logs import LOG_FILE, configure_logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        path = configure_logging(verbose=True, log_dir=tmp_path / "logs")
        assert path == tmp_path / "logs" / LOG_FILE
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        log = logging.getLogger("colabtray.test")
        log.debug("a debug line with --verbose")
        try:
            raise RuntimeError(f"POST /token failed: refresh_token={refresh_token('traceback')}")
        except RuntimeError:
            log.exception("request failed")
        (handler,) = [h for h in root.handlers if getattr(h, "baseFilename", None)]
        handler.doRollover()
        log.info("after the rollover")
        text = "".join(p.read_text() for p in sorted(path.parent.glob(LOG_FILE + "*")))
        assert "a debug line with --verbose" in text and "after the rollover" in text
        assert "Traceback" in text and "fake-traceback" not in text
        assert "refresh_token=[hidden]" in text
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        assert modes == {LOG_FILE: 0o600, LOG_FILE + ".1": 0o600}
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)


# ---- request data cannot forge log lines ----------------------------------------------------

RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ [A-Z]+ ")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    from colabtray.system.logs import configure_logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        path = configure_logging(verbose=True, log_dir=tmp_path / "logs")
        assert path is not None
        yield path
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(max_size=40), header=st.text(max_size=40))
def test_nothing_a_request_carries_starts_a_line_of_its_own(
    log_file: Path, path: str, header: str
) -> None:
    """Every physical line of the log is a record of ours or indented under one, whatever a
    request's path, headers or an exception quoting them hold."""
    log = logging.getLogger(f"colabtray.test.{uuid.uuid4().hex}")  # its own throttle key
    before = log_file.read_text(encoding="utf-8")
    log.info("refused GET %s: header %s", path, header)
    try:
        raise ValueError(f"bad path {path!s}\n{header}")
    except ValueError:
        log.exception("request on %s failed", path)
    written = log_file.read_text(encoding="utf-8")[len(before) :]
    lines = written.split("\n")
    assert lines[-1] == ""  # every record ends its line
    records = [line for line in lines[:-1] if not line.startswith("    ")]
    assert len(records) == 2, written
    assert all(RECORD_START.match(line) for line in records), written


def test_a_flood_of_one_kind_of_line_is_held_back_and_counted(log_file: Path) -> None:
    from colabtray.system.logs import THROTTLE_BURST, Throttle

    log = logging.getLogger("colabtray.test.flood")
    for index in range(THROTTLE_BURST + 500):
        log.info("refused request %d", index)
    log.info("another kind of line")
    text = log_file.read_text()
    assert text.count("refused request") == THROTTLE_BURST
    assert "another kind of line" in text
    # After the window, the next line says how many were held back.
    throttle = Throttle(burst=2, window=0.0)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "x %d", (1,), None)
    assert throttle.filter(record) and throttle.filter(record)
    throttle = Throttle(burst=1, window=3600)
    first = logging.LogRecord("t", logging.INFO, __file__, 1, "y %d", (1,), None)
    assert throttle.filter(first) and not throttle.filter(first) and not throttle.filter(first)
    throttle._window = 0.0  # the window has passed
    later = logging.LogRecord("t", logging.INFO, __file__, 1, "y %d", (2,), None)
    assert throttle.filter(later)
    assert later.getMessage() == "y 2 (2 more like it were not logged)"
