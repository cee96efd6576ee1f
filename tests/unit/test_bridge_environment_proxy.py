"""The bridge reaches runtimes through the proxy the environment names, like the rest of
colabtray (it asks once per runtime address, not per request)."""

from __future__ import annotations

import pytest

from colabtray.system.proxies import environment_proxy

RUNTIME = "https://8080-gpu-t4-s-abc-a.asia-east1-0.prod.colab.dev"


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_no_proxy_named_means_direct() -> None:
    assert environment_proxy(RUNTIME) is None


def test_https_proxy_is_used_for_a_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://other.corp:8080")
    assert environment_proxy(RUNTIME) == "http://proxy.corp:3128"
    assert environment_proxy("http://127.0.0.1:9000/") == "http://other.corp:8080"


def test_all_proxy_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://proxy.corp:3128")
    assert environment_proxy(RUNTIME) == "http://proxy.corp:3128"


def test_no_proxy_exempts_matching_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.prod.colab.dev")
    assert environment_proxy(RUNTIME) is None
    assert environment_proxy("https://colab.research.google.com") == "http://proxy.corp:3128"
