"""Who a Google access token belongs to, from the OAuth userinfo endpoint."""

from __future__ import annotations

import httpx2

from colabtray.colab import errors
from colabtray.settings import Settings
from colabtray.system import trust


async def fetch_email(settings: Settings, access_token: str) -> str:
    """The account's email; SignedOutError if Google refuses the token."""
    what = "the account's email"
    try:
        async with httpx2.AsyncClient(
            timeout=settings.request_timeout, verify=trust.verification(settings)
        ) as http:
            response = await http.get(
                settings.userinfo_url, headers={"Authorization": f"Bearer {access_token}"}
            )
    except httpx2.TimeoutException:
        raise errors.BackendUnavailableError(what, "timed out") from None
    except httpx2.TransportError as exc:
        raise errors.connection_failed(what, exc, "connection failed") from None
    if response.status_code == 401:
        raise errors.SignedOutError()
    if response.status_code >= 500:
        raise errors.BackendUnavailableError(what, f"HTTP {response.status_code}")
    if response.status_code != 200:
        raise errors.RequestRejectedError(what, response.status_code)
    try:
        email = response.json().get("email")
    except (ValueError, AttributeError):
        email = None
    if not isinstance(email, str) or "@" not in email:
        raise errors.MalformedResponseError(what, "no email in the reply")
    return email
