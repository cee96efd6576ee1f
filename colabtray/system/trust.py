"""Which TLS certificates colabtray trusts: the system's (or ``SSL_CERT_FILE``'s), plus the
authorities in the ``ca_file`` setting when one is set.

Every HTTP client of the app (sign-in, the Colab client, the editor bridge) asks here, so a
network that inspects TLS, or the demo's HTTPS runtimes, need one setting and not four.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl
    from pathlib import Path

    from colabtray.settings import Settings


def verification(settings: Settings) -> ssl.SSLContext | bool:
    """What to pass as httpx2's ``verify=`` or aiohttp's ``ssl=``: ``True`` (the library's
    own default context, nothing extra loaded) unless ``ca_file`` adds authorities."""
    if settings.ca_file is None:
        return True
    return _with_extra_authorities(settings.ca_file.resolve())


@functools.cache
def _with_extra_authorities(ca_file: Path) -> ssl.SSLContext:
    # One context per file for the whole process: loading the system's store costs ~2 MB.
    import ssl

    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context
