"""A runtime's file names never steer the user's terminal: files named with escape sequences
(an OSC 52 clipboard write, clear-screen, a C1 CSI, a bidi override, line breaks, bytes that
are not UTF-8) are put on the emulator's runtime, a real Jupyter server, as a notebook would,
and ``colabtray cp`` runs on a terminal (its progress line) and into its failures (its
sentence). Nothing but printable text, line ends and cp's own erase-line comes out."""

from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import pexpect
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colabtray.text import HIDDEN
from tests.fixtures.colab import cli_env, content_dir, new_runtime, run_cli
from tests.fixtures.emulator import Emulator

pytestmark = pytest.mark.slow

HOSTILE = [
    b"x\x1b]52;c;aGFja2Vk\x07.txt",  # OSC 52: writes the terminal's clipboard
    b"\x1b]0;title\x07\x1b[2J\x1b[H.csv",  # window title, clear screen
    "c1-\x9b31m-red".encode(),  # a C1 CSI, as UTF-8 sends it
    "report-\u202etxt.exe".encode(),  # reads as report-exe.txt
    b"two\nlines\rback.bin",
    b"raw-\x9b\xff-bytes.bin",  # not UTF-8 at all
]
OWN_ERASE = "\x1b[K"  # the progress line's own "erase to the end of the line"


def steering(output: bytes) -> list[str]:
    """What in ``output`` could steer a terminal: anything hidden but line ends and cp's own
    erase-line (undecodable bytes count too)."""
    text = output.decode("utf-8", errors="surrogateescape").replace(OWN_ERASE, "")
    return [c for c in text if c not in "\r\n" and unicodedata.category(c) in HIDDEN]


def on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, bytes]:
    """``colabtray ARGS`` on a pseudo-terminal (so cp draws its progress line): status, bytes."""
    shell = pexpect.spawn(
        sys.executable,
        ["-m", "colabtray", *args],
        env=env,
        timeout=120,
        dimensions=(24, 250),
    )
    shell.expect(pexpect.EOF)
    shell.close()
    return shell.exitstatus, shell.before


def put(folder: Path, names: list[bytes]) -> None:
    """Files on the runtime's disk, written by name as a notebook (root there) can."""
    os.makedirs(folder, exist_ok=True)
    for name in names:
        with open(os.path.join(os.fsencode(folder), name), "wb") as out:
            out.write(b"x" * 1000)


def test_hostile_names_reach_the_terminal_escaped(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    runtime = new_runtime(env)
    content = content_dir(emulator, runtime["endpoint"])
    put(content / "box", HOSTILE)

    status, output = on_a_terminal(env, "cp", "-r", "CPU:box", str(tmp_path / "here"))
    assert steering(output) == [], output
    assert status in (0, 1), output  # copied, or stopped with a sentence
    assert b"\\x1b]0;title\\x07\\x1b[2J\\x1b[H.csv" in output  # the name, readable

    # The same names in cp's sentences: folders here where the runtime has files, and a
    # runtime's file named as a folder to copy into.
    (tmp_path / "there" / "box").mkdir(parents=True)
    for name in HOSTILE:
        (tmp_path / "there" / "box" / os.fsdecode(name)).mkdir()
    _status, clash = on_a_terminal(env, "cp", "-r", "CPU:box", str(tmp_path / "there"))
    (tmp_path / "x.csv").write_text("a\n")
    refused = run_cli(env, "cp", str(tmp_path / "x.csv"), f"CPU:box/{os.fsdecode(HOSTILE[1])}/")
    for data in (clash, refused.stdout.encode(), refused.stderr.encode()):
        assert steering(data) == [], data
    assert refused.returncode == 1 and refused.stderr.startswith("colabtray: "), refused.stderr
    assert "\\x1b]0;title\\x07\\x1b[2J" in refused.stderr
    assert refused.stderr.count("\n") == 1


names = st.lists(
    st.binary(min_size=1, max_size=40).filter(
        lambda b: b"/" not in b and b"\0" not in b and not b.startswith(b".")
    ),
    min_size=1,
    max_size=6,
    unique=True,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=names)
def test_any_bytes_in_names_never_steer_the_terminal(
    emulator: Emulator, tmp_path: Path, names: list[bytes]
) -> None:
    """Arbitrary bytes as file names, copied down with progress and then refused: cp may
    copy them or stop with a sentence, never pass their control bytes on."""
    env = cli_env(emulator, tmp_path)
    if not emulator.state()["runtimes"]:  # one runtime for all the examples
        new_runtime(env)
    (runtime,) = emulator.state()["runtimes"]
    folder = Path(runtime["root_dir"]) / "content" / f"case-{os.urandom(4).hex()}"
    put(folder, names)
    here = tmp_path / f"here-{folder.name}"
    status, output = on_a_terminal(env, "cp", "-r", f"CPU:{folder.name}", str(here))
    assert status in (0, 1), output
    assert steering(output) == [], output
    status, output = on_a_terminal(env, "cp", "-r", f"CPU:{folder.name}", str(here))
    assert steering(output) == [], output
