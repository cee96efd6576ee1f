"""The OAuth client colabtray signs in with: a Google "Desktop app" client.

Google issues tokens only to a registered client. A user makes one in the Google Cloud console
and downloads its JSON file (``{"installed": {"client_id", "client_secret", "auth_uri",
"token_uri", …}}``); ``colabtray signin --client-file PATH`` checks it and keeps a private copy
in the config directory, used from then on. Which client is used, first to last:
``COLABTRAY_CLIENT_ID`` (with ``COLABTRAY_CLIENT_SECRET``), the copy in the config directory,
a file a packager put in the package's resources, or none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import SecretStr

from colabtray.auth.errors import SignInError
from colabtray.errors import describe_os_error
from colabtray.settings import Settings
from colabtray.system.jsonfile import write_atomically

FILE_NAME = "oauth-client.json"
CONSOLE_URL = "https://console.cloud.google.com/apis/credentials"
HOW_TO = (
    "In the Google Cloud console (APIs & Services → Credentials), create an OAuth client "
    'of type "Desktop app" and download its JSON file'
)


class ClientFileError(SignInError):
    """A client file that cannot be used; the sentence says what to make instead."""


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: SecretStr | None
    auth_uri: str | None = None  # from the file; None: the settings' endpoints
    token_uri: str | None = None
    origin: str = ""  # where it came from, for `doctor` ("COLABTRAY_CLIENT_ID", a path)


def read_client_file(path: Path) -> OAuthClient:
    """The Desktop-app client in ``path``; ClientFileError with a sentence otherwise."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClientFileError(f"There is no file {shown}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else "not text"
        raise ClientFileError(f"Cannot read {shown} ({reason}).") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ClientFileError(
            f"{shown} is not an OAuth client file (not JSON). {HOW_TO}."
        ) from None
    if not isinstance(data, dict):
        raise ClientFileError(f"{shown} is not an OAuth client file. {HOW_TO}.")
    if "web" in data and "installed" not in data:
        raise ClientFileError(
            f'{shown} is a "Web application" client, which cannot sign in through this '
            f"computer's loopback address. {HOW_TO}."
        )
    client = data.get("installed")
    if not isinstance(client, dict):
        raise ClientFileError(
            f'{shown} is not a Desktop-app OAuth client file (no "installed" section). {HOW_TO}.'
        )
    missing = [
        key for key in ("client_id", "client_secret") if not isinstance(client.get(key), str)
    ]
    if not missing and not client["client_id"]:
        missing = ["client_id"]
    if missing:
        raise ClientFileError(
            f"{shown} has no {' or '.join(missing)}; download the client's JSON file again "
            "from the Google Cloud console."
        )
    return OAuthClient(
        client_id=client["client_id"],
        client_secret=SecretStr(client["client_secret"]) if client["client_secret"] else None,
        auth_uri=_uri(client.get("auth_uri")),
        token_uri=_uri(client.get("token_uri")),
        origin=shown,
    )


def _uri(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith("https://") else None


def install_client_file(source: Path, config_dir: Path) -> OAuthClient:
    """Check ``source`` and keep a private copy (0600) in ``config_dir`` for later runs."""
    client = read_client_file(source)
    target = config_dir / FILE_NAME
    write_atomically(target, source.read_text(encoding="utf-8"))
    return OAuthClient(
        client.client_id, client.client_secret, client.auth_uri, client.token_uri, str(target)
    )


def configured_client(settings: Settings) -> OAuthClient | None:
    """The client to sign in with, in the order of the module docstring; None if there is
    none. A broken copy in the config directory raises its ClientFileError."""
    if settings.client_id:
        return OAuthClient(settings.client_id, settings.client_secret, origin="COLABTRAY_CLIENT_ID")
    kept = settings.config_dir / FILE_NAME
    if kept.exists():
        return read_client_file(kept)
    packaged = resources.files("colabtray.resources") / FILE_NAME
    if packaged.is_file():
        with resources.as_file(packaged) as path:
            return read_client_file(path)
    return None
