"""The rule for a name in a runtime's listing (colabtray.tools.listing.name_problem): a name
it accepts is one path component in its folder, on POSIX and on Windows, whatever its text."""

from __future__ import annotations

import ntpath
import posixpath
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colabtray.tools.listing import name_problem

TRICKY = [
    *("", ".", "..", "...", "/", "\\", "\x00", "a/b", "a\\b", "../x", "..\\x", "/abs", "//x"),
    *("C:", "C:x", "c:\\x", "\\\\host\\share", "\\\\?\\C:\\x", "x:stream", "a.", "a ", "CON"),
    *("con.txt", "LPT1", "Com9.tar.gz", "CONIN$", "\ud800", "x" * 256, "é" * 128),
]
names = st.one_of(
    st.sampled_from(TRICKY),
    st.text(),
    st.text(st.sampled_from("./\\:\x00aC $"), max_size=8),
)


@pytest.mark.parametrize("windows", [False, True], ids=["posix", "windows"])
@given(name=names)
def test_an_accepted_name_stays_in_its_folder(windows: bool, name: str) -> None:
    if name_problem(name, windows=windows) is not None:
        return
    flavour, module = (PureWindowsPath, ntpath) if windows else (PurePosixPath, posixpath)
    folder = "C:\\dest" if windows else "/dest"
    joined = flavour(folder) / name
    assert (joined.parent, joined.name) == (flavour(folder), name)
    assert module.dirname(module.normpath(module.join(folder, name))) == folder


@pytest.mark.parametrize(
    ("name", "posix", "windows"),
    [
        ("data.csv", None, None),
        (".hidden", None, None),
        ("...", None, "cannot be a file name on Windows"),
        ("a:b", None, "is not a single file name"),  # "b" on drive A:
        ("notes:secret", None, "cannot be a file name on Windows"),  # a stream of "notes"
        ("C:", None, "is not a single file name"),
        ("nul", None, "cannot be a file name on Windows"),
        ("a\\b", "is not a single file name", "is not a single file name"),
        ("..", "is not a single file name", "is not a single file name"),
        ("x\x00", "is not a single file name", "is not a single file name"),
        ("x\x1b]0;title\x07", None, "cannot be a file name on Windows"),
        (
            "x" * 256,
            "cannot be a file name on this machine",
            "cannot be a file name on this machine",
        ),
    ],
)
def test_what_each_system_refuses(name: str, posix: str | None, windows: str | None) -> None:
    assert name_problem(name, windows=False) == posix
    assert name_problem(name, windows=True) == windows
