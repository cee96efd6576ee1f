"""The bridge's cookie rules alone, fast: its cookie is found among any others, and a runtime's
Set-Cookie is known for one named like it (the same rules run against a real bridge in
tests/integration/test_bridge_hostile_headers.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from colabtray.bridge import guard

PORT = 41234
SECRET = "s3cr3t-" + "x" * 30
OURS = guard.cookie_name(PORT)
_TEXT = st.text(st.characters(exclude_characters=";"), max_size=30)


def admitted(cookie: str) -> bool:
    return guard.check(
        port=PORT,
        secret=SECRET,
        host=f"127.0.0.1:{PORT}",
        origin=None,
        query_tokens=[],
        authorization=None,
        cookie=cookie,
    ).ok


@given(
    garbage=st.lists(st.one_of(_TEXT, st.tuples(_TEXT, _TEXT).map("=".join)), max_size=8),
    present=st.booleans(),
    position=st.integers(0, 8),
    separator=st.sampled_from(["; ", ";", " ;  "]),
)
def test_accepted_exactly_when_our_exact_value_is_among_the_pairs(
    garbage: list[str], present: bool, position: int, separator: str
) -> None:
    garbage = [g for g in garbage if SECRET not in g]
    pieces = [*garbage, f"{OURS}={SECRET[:-1]}", f"{OURS.upper()}={SECRET}"]
    if present:
        pieces.insert(position, f"{OURS}={SECRET}")
    assert admitted(separator.join(pieces)) is present


def test_a_cookie_that_is_no_rfc_cookie_does_not_hide_ours() -> None:
    assert admitted(f'prefs={{"theme":"dark"}}; {OURS}={SECRET}')
    assert admitted(f'a="open; {OURS}={SECRET}; =; x')
    assert not admitted('prefs={"theme":"dark"}')


@given(
    name=st.sampled_from([OURS, f"{guard.COOKIE_PREFIX}1", OURS.upper(), f" \t{OURS} "]),
    equals=st.booleans(),
    rest=_TEXT,
    attributes=st.text(max_size=40),
)
def test_every_set_cookie_named_like_the_bridges_is_known(
    name: str, equals: bool, rest: str, attributes: str
) -> None:
    value = f"{name}={rest};{attributes}" if equals else f"{name};{attributes}"
    assert guard.is_bridge_cookie(guard.set_cookie_name(value))


def test_an_empty_name_before_the_bridges_counts_as_the_bridges() -> None:
    # '=colabtray-bridge-N=x' sets a cookie some browsers send back as 'colabtray-bridge-N=x'.
    assert guard.is_bridge_cookie(guard.set_cookie_name("=colabtray-bridge-8888=x; Path=/"))


@given(name=_TEXT.filter(lambda n: "=" not in n and n.strip()), rest=st.text(max_size=40))
def test_a_set_cookie_of_another_name_is_not(name: str, rest: str) -> None:
    value = f"{name}={rest}"
    assume_other = not name.strip().lower().startswith(guard.COOKIE_PREFIX)
    assert guard.is_bridge_cookie(guard.set_cookie_name(value)) is not assume_other
