"""The Open-in-Colab link, as Google's CLI builds it (colab-cli-protocol-notes §6.1)."""

from __future__ import annotations

from colabtray.colab.links import open_in_colab


def test_the_link_attaches_colabs_page_to_the_runtime() -> None:
    assert open_in_colab("https://colab.research.google.com", "gpu-t4-s-abc") == (
        "https://colab.research.google.com/notebooks/empty.ipynb"
        "?dbu=%2Ftun%2Fm%2Fgpu-t4-s-abc"
        "#datalabBackendUrl=https://colab.research.google.com/tun/m/gpu-t4-s-abc"
    )


def test_the_host_is_the_setting_and_the_endpoint_is_encoded_anyway() -> None:
    link = open_in_colab("https://127.0.0.1:8443/", "m s/../x#y")
    assert link == (
        "https://127.0.0.1:8443/notebooks/empty.ipynb?dbu=%2Ftun%2Fm%2Fm%2520s%252F..%252Fx%2523y"
        "#datalabBackendUrl=https://127.0.0.1:8443/tun/m/m%20s%2F..%2Fx%23y"
    )
