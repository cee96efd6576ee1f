"""Who may use a bridge port: the checks every request passes before anything is forwarded.

Pure functions over header and query values, so they can be tested (and fuzzed) alone.
A request is admitted only if all of these hold, in this order:

1. ``Host`` names the loopback address (or ``localhost``) and the bridge's own port, so a web
   page whose domain was rebound to 127.0.0.1 cannot reach the runtime;
2. an ``Origin`` header, if present, is the bridge's own origin (browsers send one on
   cross-origin requests and on every WebSocket handshake);
3. the bridge secret comes as ``?token=``, as ``Authorization: token …`` (or ``bearer``), or in
   the cookie a browser got on its first visit with ``?token=`` (read leniently: other local
   apps' cookies, well-formed or not, sit beside it in the same header);
4. a request that has only the cookie to show is not a cross-site one: browsers send the
   (``SameSite=Strict``) cookie to every port of 127.0.0.1, so a page of another local app
   could otherwise use it where no ``Origin`` is sent (an ``<img>`` or ``<script>`` tag).
   ``Sec-Fetch-Site`` tells, where browsers send it: only ``same-origin`` and ``none`` (the
   user typed the address) pass.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
TOKEN_PARAM = "token"
# Sec-Fetch-Site values of a request the user's own page (or the user) made.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # one line, safe to send back and to log (never holds a secret)
    by_query: bool = False  # the secret came in ?token= (a browser's first visit)


COOKIE_PREFIX = "colabtray-bridge-"


def cookie_name(port: int) -> str:
    """Per port: browsers share cookies between ports of one host."""
    return f"{COOKIE_PREFIX}{port}"


def is_bridge_cookie(name: str) -> bool:
    """Whether a cookie of this name could be taken for a bridge's (of any port, any case)."""
    return name.strip().lower().startswith(COOKIE_PREFIX)


def set_cookie_name(value: str) -> str:
    """The name of the cookie a ``Set-Cookie: value`` header sets, as browsers read it: the
    text before the first ``=`` of its first ``;`` piece (a piece without ``=`` is a value
    with an empty name, and that value is what browsers send back, so it counts as the name;
    so does the rest of ``=colabtray-bridge-N=x``, which some browsers send back as it is)."""
    pair = value.split(";", 1)[0]
    name, equals, rest = pair.partition("=")
    if not equals:
        return pair.strip()
    return name.strip() or set_cookie_name(rest)


def cookie_pairs(header: str) -> Iterator[tuple[str, str]]:
    """The ``name=value`` pairs of a ``Cookie`` header, read as browsers write it (pairs
    joined by ``;``). Lenient on purpose: a pair that is not RFC 6265 (``prefs={"a":1}``,
    one without ``=``) is passed over, never the end of the header."""
    for piece in header.split(";"):
        name, equals, value = piece.partition("=")
        if equals:
            yield name.strip(), value.strip()


@functools.cache
def own_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{name}:{port}" for name in LOOPBACK_NAMES)


@functools.cache
def _own_hosts(port: int) -> frozenset[str]:
    return frozenset(f"{name}:{port}" for name in LOOPBACK_NAMES)


def host_ok(host: str | None, port: int) -> bool:
    if not host:
        return False
    return host.strip().lower() in _own_hosts(port)


def same_secret(given: str, secret: str) -> bool:
    """Constant-time comparison that tolerates any text (surrogates included)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass")
    )


def token_from_authorization(value: str | None) -> str | None:
    """The credential of ``Authorization: token X`` or ``bearer X`` (what Jupyter accepts)."""
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and credential.strip():
        return credential.strip()
    return None


def tokens_from_cookie(value: str | None, port: int) -> list[str]:
    """Every value the header gives the bridge's cookie (a browser may send two of one name,
    such as one another page set with a longer path, placed first)."""
    if not value:
        return []
    name = cookie_name(port)
    return [given for key, given in cookie_pairs(value) if key == name]


def check(
    *,
    port: int,
    secret: str,
    host: str | None,
    origin: str | None,
    query_tokens: list[str],
    authorization: str | None,
    cookie: str | None,
    fetch_site: str | None = None,
) -> Verdict:
    """Admit or refuse one request; see the module docstring for the rules."""
    if not host_ok(host, port):
        return Verdict(False, f"the Host header must be 127.0.0.1:{port}")
    if origin is not None and origin.strip().lower() not in own_origins(port):
        return Verdict(False, "cross-origin requests are refused")
    offered = False
    for given in query_tokens:
        offered = True
        if same_secret(given, secret):
            return Verdict(True, by_query=True)
    from_header = token_from_authorization(authorization)
    if from_header is not None:
        offered = True
        if same_secret(from_header, secret):
            return Verdict(True)
    cookies = tokens_from_cookie(cookie, port)
    if cookies:
        offered = True
        if any(same_secret(given, secret) for given in cookies):
            if fetch_site is not None and fetch_site.strip().lower() not in _OWN_FETCH_SITES:
                return Verdict(False, "cross-site requests are refused")
            return Verdict(True)
    if offered:
        return Verdict(False, "the bridge token is wrong")
    return Verdict(False, "the bridge token is missing (add ?token=… from colabtray)")
