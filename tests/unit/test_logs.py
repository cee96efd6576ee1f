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


def test_the_log_file_is_private_rotates_privately_and_masks_tracebacks(tmp_path):
    import stat

    from colabtray.logs import LOG_FILE, configure_logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        path = configure_logging(verbose=True, log_dir=tmp_path / "logs")
        assert path == tmp_path / "logs" / LOG_FILE
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        log = logging.getLogger("colabtray.test")
        log.debug("a debug line with --verbose")
        try:
            raise RuntimeError("POST /token failed: refresh_token=1//0gSecretInTraceback")
        except RuntimeError:
            log.exception("request failed")
        (handler,) = [h for h in root.handlers if getattr(h, "baseFilename", None)]
        handler.doRollover()
        log.info("after the rollover")
        text = "".join(p.read_text() for p in sorted(path.parent.glob(LOG_FILE + "*")))
        assert "a debug line with --verbose" in text and "after the rollover" in text
        assert "Traceback" in text and "0gSecretInTraceback" not in text
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
