"""The one rule for text shown to a person (colabtray.text): whatever a runtime or Colab
wrote, what reaches a terminal, a notification or a dialog carries no control, format or
line-break character, and still reads as what was written."""

from __future__ import annotations

import io
import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from colabtray.core.display import RuntimeRow, TrayState, tooltip
from colabtray.system.logs import one_line
from colabtray.text import HIDDEN, printable, printable_lines, say

# Every C0 control, DEL, every C1 control, the bidi embeddings, overrides and isolates, and
# other format and separator characters, mixed into arbitrary text (surrogates included).
STEERING = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + [
    *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    *"\u200b\u200d\u200e\u200f\u061c\u00ad\ufeff\u2028\u2029\ue000\udcff\U000e0001",
]
hostile = st.lists(st.one_of(st.sampled_from(STEERING), st.text()), max_size=12).map("".join)
ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[ntr])")


def hidden(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in HIDDEN]


def read_back(shown: str) -> str:
    """What a person reads the escapes as (the text's own backslashes aside)."""
    named = {"n": "\n", "t": "\t", "r": "\r"}
    return ESCAPE.sub(lambda m: named.get(m[1]) or chr(int(m[1][1:], 16)), shown)


@given(hostile)
def test_nothing_that_steers_a_screen_is_left(text: str) -> None:
    shown = printable(text)
    assert hidden(shown) == []
    assert not {"\x1b", "\x07", "\x9b", "\n", "\r"} & set(shown)
    assert printable(shown) == shown  # shown once is shown for good
    shown.encode("utf-8")  # no lone surrogate is left to break a write


@given(hostile.filter(lambda t: "\\" not in t))
def test_what_was_written_can_be_read_back(text: str) -> None:
    assert read_back(printable(text)) == text


@given(st.text(st.characters(exclude_categories=tuple(HIDDEN))))
def test_plain_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


def test_escapes_read_as_python_writes_them() -> None:
    assert printable("x\x1b]52;c;aGk=\x07.txt") == "x\\x1b]52;c;aGk=\\x07.txt"
    assert printable("\x9b2J\u202etxt.exe\nnext") == "\\x9b2J\\u202etxt.exe\\nnext"
    assert printable("T4 GPU · “café” 日本 🙂\u00a0") == "T4 GPU · “café” 日本 🙂\u00a0"


@given(st.lists(hostile, max_size=4))
def test_our_own_lines_keep_their_breaks_and_nothing_else(lines: list[str]) -> None:
    text = "\n".join(lines)
    shown = printable_lines(text).split("\n")
    assert len(shown) == text.count("\n") + 1
    assert all(hidden(line) == [] for line in shown)


@given(st.lists(hostile, min_size=1, max_size=4))
def test_say_writes_one_line_per_line(lines: list[str]) -> None:
    out = io.StringIO()
    say(*lines, file=out)
    written = out.getvalue()
    assert written.count("\n") == len(lines) and written.endswith("\n")
    assert hidden(written.replace("\n", "")) == []


@given(hostile, hostile)
def test_the_menu_and_tooltip_show_names_escaped(name: str, problem: str) -> None:
    row = RuntimeRow("m-s-1", name, "T4 GPU", "Standard", "in use", pending=True)
    assert hidden(row.label) == []
    shown = tooltip(
        TrayState.ATTENTION, email="a@b.c", rows=[row], problem=problem, units_line=None
    )
    assert all(hidden(line) == [] for line in shown.split("\n"))
    assert printable(name) in shown


@given(hostile)
def test_a_log_line_follows_the_same_rule(text: str) -> None:
    assert one_line(text) == printable(text)
