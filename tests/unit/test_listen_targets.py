"""Request targets: only a path and a query come from a client, and no target can move the
host an upstream URL names (the class of the bridge's "@host" vulnerability)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from colabtray.listen import targets

BASES = [
    URL("https://127.0.0.1:5555"),
    URL("http://127.0.0.1:8888"),
    URL("https://8080-m-s-abc123.prod.colab.dev"),
    URL("http://[::1]:9999"),
    URL("https://runtime.example/proxy/"),
]

# Pieces an attacker would combine to steer a URL, among arbitrary text.
_STEERING = st.sampled_from(
    [
        "@",
        "@evil.example:1234",
        "//evil.example",
        "http://evil.example:80",
        "evil.example:443",
        "*",
        "\\\\evil",
        "%40evil",
        "..",
        "%2e%2e",
        "%2E.",
        ".",
        "?",
        "#",
        ":",
        "/",
        "%",
        "%ff",
        "%0a",
        "%00",
        "\r\n",
        " ",
        "\t",
        "é",
        "\u2028",
        "[::1]",
        ";",
        "&token=x",
    ]
)
raw_targets = st.lists(st.one_of(_STEERING, st.text(max_size=12)), max_size=8).map("".join)


@settings(max_examples=3000)
@given(raw=raw_targets, base=st.sampled_from(BASES))
def test_no_target_moves_the_upstream_host(raw: str, base: URL) -> None:
    target = targets.parse(raw)
    if target is None:
        return
    url = targets.upstream_url(base, target.path, target.query)
    assert (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
    assert url.user is None and url.password is None
    assert url.raw_path.startswith(base.raw_path.rstrip("/") + "/")


@settings(max_examples=3000)
@given(raw=raw_targets)
def test_an_admitted_target_is_a_clean_path(raw: str) -> None:
    target = targets.parse(raw)
    if target is None:
        return
    assert raw.startswith("/")
    assert target.path.startswith("/") and not target.path.startswith("//")
    segments = target.path.split("/")
    assert not {".", ".."} & {s.replace("%2e", ".").replace("%2E", ".") for s in segments}
    assert all(0x21 <= ord(c) <= 0x7E for c in target.path + target.query)
    assert "#" not in target.query
    assert targets.normalise(target.path) == target.path  # normalising is idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "@evil.example:1234/x",  # the case the attack pass found
        "evil.example:443",  # authority-form (CONNECT)
        "http://evil.example/x",  # absolute-form
        "*",  # asterisk-form
        "",
        "x",
        "/a b",
        "/caf\u00e9",
        "/a%0d%0aX-Injected: 1",
        "/%ff",
        "/nul%00",
    ],
)
def test_what_is_not_a_clean_path_is_refused(raw: str) -> None:
    assert targets.parse(raw) is None


@pytest.mark.parametrize(
    ("raw", "path", "query"),
    [
        ("/", "/", ""),
        ("/api/kernels?session_id=1&token=x", "/api/kernels", "session_id=1&token=x"),
        ("/a/../../b", "/b", ""),
        ("/%2e%2e/x", "/x", ""),
        ("/a/./b/.", "/a/b/", ""),
        ("/a/b/..", "/a/", ""),
        ("//evil.example/x", "/evil.example/x", ""),
        ("/files/a%20b.ipynb?content=1#frag", "/files/a%20b.ipynb", "content=1"),
        ("/api/contents/a%2Fb%40c", "/api/contents/a%2Fb%40c", ""),
    ],
)
def test_paths_are_normalised_and_kept_encoded(raw: str, path: str, query: str) -> None:
    assert targets.parse(raw) == targets.Target(path, query)
