"""Links to Colab's own web pages."""

from __future__ import annotations

from urllib.parse import quote


def open_in_colab(colab_url: str, endpoint: str) -> str:
    """Colab's web page with a blank notebook attached to the runtime ``endpoint``, built as
    Google's CLI builds it (``colab url``): ``dbu`` is the runtime's path under Colab's host,
    all percent-encoded; the fragment repeats it as a whole URL, not encoded, because the page
    reads ``location.hash`` as it is. Attaching is best-effort: Colab may open a notebook of
    its own instead (docs: colab-cli-protocol-notes §6.1)."""
    host = colab_url.rstrip("/")
    path = f"/tun/m/{quote(endpoint, safe='')}"
    return f"{host}/notebooks/empty.ipynb?dbu={quote(path, safe='')}#datalabBackendUrl={host}{path}"
