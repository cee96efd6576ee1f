"""Which HTTP proxy the environment names for a URL (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, ``NO_PROXY``), as every HTTP client of colabtray honours them."""

from __future__ import annotations

from urllib.parse import urlsplit
from urllib.request import (  # type: ignore[attr-defined]  # in CPython, not in typeshed
    getproxies_environment,
    proxy_bypass_environment,
)


def environment_proxy(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, unless
    ``NO_PROXY`` exempts its host, as the rest of colabtray honours them.

    Asked once per runtime address rather than by aiohttp on every request (its
    ``trust_env`` looks up the environment and netrc in a worker thread each time, which
    cost the small REST call about half a millisecond).
    """
    parts = urlsplit(url)
    proxies = getproxies_environment()
    if not parts.hostname or proxy_bypass_environment(parts.hostname, proxies):
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None


def shown(proxy: str) -> str:
    """``proxy`` fit to print: a password in it is replaced by stars."""
    parts = urlsplit(proxy)
    if parts.password is None:
        return proxy
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
