"""Text shown to a person: every character that could steer a terminal, a notification or a
dialog is written out as an escape instead.

A runtime is a machine where any notebook runs as root, and the backend is across the
network: file names, runtime names and error texts from either may carry ESC (a terminal's
clipboard write, title, clear-screen), BEL, C1 controls such as CSI (U+009B), bidi overrides
that make a name read backwards, or line breaks that forge a line of our own. Whatever shows
text to a person passes it through :func:`printable` (one line) or :func:`printable_lines`
(our own multi-line text, each line made printable), so it does not matter where a string
came from. Escapes read as Python writes them: ``\\x1b``, ``\\n``, ``\\u202e``, ``\\udcff``.

What a person asked for is not text shown by colabtray and passes untouched: the remote
terminal of ``colabtray shell`` and ``ssh``, a file's contents, JSON for scripts (``json.dumps``
escapes every control character itself).
"""

from __future__ import annotations

import sys
import unicodedata
from typing import TextIO

# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width, soft hyphen),
# surrogate (undecodable bytes of a file name), private use, unassigned (tomorrow's format
# characters), and line and paragraph separators. Spaces of every kind are kept.
HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` as one line of visible characters: each hidden one written as its escape."""
    if text.isprintable():  # fast path; false for exactly HIDDEN and the non-ASCII spaces
        return text
    return "".join(_escape(c) if unicodedata.category(c) in HIDDEN else c for c in text)


def printable_lines(text: str) -> str:
    """Our own multi-line text: its line breaks kept, everything else as :func:`printable`."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def say(*lines: str, err: bool = False, file: TextIO | None = None) -> None:
    """Write each of ``lines`` as one printable line to stdout (``err``: stderr)."""
    stream = file or (sys.stderr if err else sys.stdout)
    stream.write("".join(printable(line) + "\n" for line in lines))
    stream.flush()
