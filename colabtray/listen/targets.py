"""Request targets: from a client only ever a path and a query (RFC 9112 "origin-form").

A proxy that glues the client's request target onto its upstream's base URL lets the client
move the upstream's host: ``@evil:1234`` after ``https://runtime:443`` names another server.
:func:`parse` admits only ``/path?query`` made of printable ASCII, and :func:`upstream_url`
builds the URL from the upstream's own scheme and authority plus those two parts, so no
request can change where it goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from yarl import URL

# Printable ASCII without space: what a well-formed client sends (it percent-encodes the rest).
_PRINTABLE = re.compile(r"[\x21-\x7e]*\Z")
# A decoded path may not hold control characters (a NUL or a line break in a path is an
# attack on whatever reads it next, never a file name an editor uses).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Target:
    """An origin-form request target, normalised."""

    path: str  # still percent-encoded; one leading "/", no "." or ".." segments
    query: str  # still percent-encoded, without the "?"; may be empty

    @property
    def decoded_path(self) -> str:
        return unquote(self.path)


def parse(raw: str) -> Target | None:
    """The target ``raw`` as a path and a query, or None when it is not origin-form.

    Refused: anything not starting with ``/`` (absolute-form ``http://…``, authority-form
    ``host:port``, asterisk-form ``*``, ``@host``), characters outside printable ASCII, and
    paths whose percent-escapes do not decode to UTF-8 text without control characters.
    A fragment (``#…``), which clients never send, is dropped.
    """
    if not raw.startswith("/") or not _PRINTABLE.match(raw):
        return None
    path, _, query = raw.partition("#")[0].partition("?")
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if _CONTROL.search(decoded):
        return None
    return Target(normalise(path), query)


def normalise(path: str) -> str:
    """``path`` (starting with "/") without dot segments (RFC 3986 §5.2.4, ``%2e`` counting as
    a dot) and with one leading slash, so it cannot climb above the root or read as
    ``//host``."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        plain = segment.replace("%2e", ".").replace("%2E", ".")
        if plain in (".", ".."):
            if plain == ".." and kept:
                kept.pop()
            if index == last:
                kept.append("")  # "/a/b/.." is the directory "/a/"
        else:
            kept.append(segment)
    return "/" + "/".join(kept).lstrip("/")


def upstream_url(base: URL, path: str, query: str) -> URL:
    """``base``'s scheme and authority with ``path`` (under ``base``'s own path) and ``query``.

    Built from parts: the host and port are always ``base``'s, whatever ``path`` and
    ``query`` hold (both are sent as they are, already percent-encoded).
    """
    return URL.build(
        scheme=base.scheme,
        authority=base.raw_authority,
        path=base.raw_path.rstrip("/") + path,
        query_string=query,
        encoded=True,
    )
