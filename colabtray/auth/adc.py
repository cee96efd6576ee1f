"""Application Default Credentials (ADC): the file gcloud writes with
``gcloud auth application-default login``, or the one ``GOOGLE_APPLICATION_CREDENTIALS`` names.

google-auth reads and refreshes them (imported only here, when an account uses ADC); the
refresh, a blocking HTTP call, runs in a worker thread, at the ``oauth_token_url`` setting, trusted
like every other endpoint of colabtray's (:mod:`colabtray.system.trust`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from colabtray.auth.errors import CredentialsRefusedError
from colabtray.auth.gcloud import adc_login_command
from colabtray.colab.errors import BackendUnavailableError, ColabError
from colabtray.settings import Settings
from colabtray.system import trust

WELL_KNOWN_FILE = "application_default_credentials.json"


class AdcError(CredentialsRefusedError):
    """The credentials cannot give a token; the sentence says what to run."""


class AdcUnreachableError(BackendUnavailableError):
    """Google's token service did not answer: passing trouble, not a reason to sign in."""

    def __init__(self, message: str) -> None:
        ColabError.__init__(self, message)
        self.what = "renewing the Application Default Credentials"


def adc_file() -> Path | None:
    """Where the ADC are, as google-auth looks: ``GOOGLE_APPLICATION_CREDENTIALS``, else
    gcloud's well-known file; None when neither exists."""
    named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        return Path(named) if Path(named).is_file() else None
    if os.environ.get("CLOUDSDK_CONFIG"):
        folder = Path(os.environ["CLOUDSDK_CONFIG"])
    elif sys.platform == "win32":
        folder = Path(os.environ.get("APPDATA", Path.home())) / "gcloud"
    else:
        folder = Path.home() / ".config" / "gcloud"
    path = folder / WELL_KNOWN_FILE
    return path if path.is_file() else None


def login_hint(settings: Settings) -> str:
    """The command that makes ADC with the scopes colabtray needs."""
    return " ".join(adc_login_command(settings.oauth_scopes))


class AdcCredentials:
    """One ADC file's credentials, refreshed on demand."""

    def __init__(self, settings: Settings, path: Path) -> None:
        self._settings = settings
        self.path = path
        self._credentials: Any = None

    async def fresh_token(self) -> tuple[str, datetime]:
        """A new access token and when it expires; AdcError or BackendUnavailableError."""
        return await asyncio.to_thread(self._refresh)

    def _load(self) -> Any:
        """The file's user credentials. Only the "authorized_user" kind that gcloud writes:
        a service account or another kind cannot use Colab, and reading any kind a file
        names is how a planted file would make colabtray run what it says."""
        import google.oauth2.credentials

        hint = login_hint(self._settings)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AdcError(
                f"The Application Default Credentials in {self.path} are gone; run: {hint}"
            ) from None
        except (OSError, UnicodeDecodeError):
            raise AdcError(f"Cannot read {self.path}; run: {hint}") from None
        try:
            kind = json.loads(text).get("type")
        except (ValueError, AttributeError, RecursionError):
            kind = None
        if kind != "authorized_user":
            raise AdcError(
                f"{self.path} holds no user credentials (type {kind or 'unreadable'}); Colab "
                f"needs a Google account's. Run: {hint}"
            )
        try:
            credentials = google.oauth2.credentials.Credentials.from_authorized_user_file(
                str(self.path), scopes=list(self._settings.oauth_scopes)
            )
        except ValueError as exc:
            missing = str(exc).split(":")[-1].strip()[:120] or "fields missing"
            raise AdcError(
                f"The Application Default Credentials in {self.path} are incomplete "
                f"({missing}); run: {hint}"
            ) from None
        # google-auth renews such files at Google's token endpoint whatever they say; that is
        # colabtray's oauth_token_url setting (Google's, unless pointed at the emulator).
        return credentials.with_token_uri(self._settings.oauth_token_url)

    def _refresh(self) -> tuple[str, datetime]:
        import google.auth.exceptions
        import google.auth.transport.urllib3
        import urllib3

        if self._credentials is None:
            self._credentials = self._load()
        verify = trust.verification(self._settings)
        pool = urllib3.PoolManager(
            ssl_context=verify if not isinstance(verify, bool) else None,
            timeout=urllib3.Timeout(total=self._settings.request_timeout),
            retries=False,
        )
        try:
            self._credentials.refresh(google.auth.transport.urllib3.Request(pool))
        except google.auth.exceptions.RefreshError:
            raise AdcError(
                "Google no longer accepts the Application Default Credentials (expired or "
                f"revoked); run: {login_hint(self._settings)}"
            ) from None
        except google.auth.exceptions.TransportError:
            raise AdcUnreachableError(
                "Google's token service could not be reached to renew the Application Default "
                "Credentials; check the network and try again."
            ) from None
        finally:
            pool.clear()
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise AdcError("The Application Default Credentials gave no access token.")
        expiry = self._credentials.expiry
        expires_at = (
            expiry.replace(tzinfo=UTC)
            if isinstance(expiry, datetime)
            else datetime.now(UTC) + timedelta(minutes=30)
        )
        return token, expires_at
