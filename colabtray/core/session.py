"""Who is signed in, how, which account is active, and each account's access tokens.

Accounts are listed in ``accounts.json`` in the config directory: each email with the way it
was signed in (:class:`~colabtray.auth.identities.Source`), and which one is active; nothing
secret. Tokens come from the account's identity (colabtray's own sign-in with its refresh
token in the OS keyring, gcloud, or Application Default Credentials); access tokens live in
memory only and are refreshed shortly before they expire, once for all callers. An account
whose identity stops giving tokens (``invalid_grant``, gcloud signed out, a refresh token
gone from the keyring) is marked "sign in again" with the reason; the others are untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colabtray.auth.errors import (
    CredentialsRefusedError,
    NotSignedInError,
    SignInAgainError,
    SignInTimeoutError,
)
from colabtray.auth.identities import (
    AdcIdentity,
    GcloudIdentity,
    Identity,
    OAuthIdentity,
    Source,
    Token,
)
from colabtray.auth.state import AccountState as AccountState  # its home
from colabtray.auth.tokens import SecretStore
from colabtray.auth.userinfo import fetch_email
from colabtray.core.listeners import Listeners
from colabtray.core.plans import KEY as PLANS_KEY
from colabtray.core.plans import Plans
from colabtray.settings import Settings
from colabtray.system.jsonfile import read_json, write_json

if TYPE_CHECKING:  # imported when first needed: aiohttp and Authlib weigh ~25 MB resident
    from colabtray.auth.oauth import GoogleOAuth

log = logging.getLogger(__name__)

# Refresh an access token this long before it expires (Google's own clients use 5 minutes).
REFRESH_AHEAD_SECONDS = 300


@dataclass(frozen=True)
class Account:
    email: str
    state: AccountState
    active: bool
    source: Source = Source.OAUTH
    problem: str | None = None  # why it needs a sign-in, when it does


@dataclass(frozen=True)
class _Entry:
    """What accounts.json keeps of an account (never a secret)."""

    email: str
    source: Source
    gcloud_account: str | None = None  # the account gcloud is asked for
    adc_file: str | None = None  # where the ADC file was at sign-in

    def to_json(self) -> dict[str, str]:
        data = {"email": self.email, "source": str(self.source)}
        if self.gcloud_account:
            data["gcloud_account"] = self.gcloud_account
        if self.adc_file:
            data["adc_file"] = self.adc_file
        return data


class Session:
    """The accounts, the active one, and a ``TokenSource`` for each (:meth:`tokens_for`)."""

    def __init__(
        self, settings: Settings, store: SecretStore, oauth: GoogleOAuth | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        self._oauth = oauth
        self._path = settings.config_dir / "accounts.json"
        self.plans = Plans(self._path)  # each account's plan, as Colab last named it
        self._entries, self._active = self._load()
        self._identities: dict[str, Identity] = {}
        self._tokens: dict[str, Token] = {}
        self._refreshing: dict[str, asyncio.Future[Token]] = {}
        self._problems: dict[str, str] = {}  # email → why it needs a sign-in
        self._listeners = Listeners("the session")

    # ---- what the rest of the app reads ---------------------------------------------------

    @property
    def active_email(self) -> str | None:
        return self._active

    @property
    def keyring_warning(self) -> str | None:
        return self._store.warning

    def accounts(self) -> list[Account]:
        return [
            Account(
                entry.email,
                AccountState.NEEDS_SIGN_IN
                if entry.email in self._problems
                else AccountState.SIGNED_IN,
                entry.email == self._active,
                entry.source,
                self._problems.get(entry.email),
            )
            for entry in self._entries.values()
        ]

    def source_of(self, email: str) -> Source | None:
        entry = self._entries.get(email)
        return entry.source if entry is not None else None

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of accounts or their state."""
        self._listeners.add(listener)

    async def check_stored(self) -> None:
        """Mark colabtray-signed-in accounts whose refresh token left the keyring."""
        changed = False
        for entry in self._entries.values():
            if entry.source is not Source.OAUTH or entry.email in self._problems:
                continue
            if await self._store.aget(entry.email) is None:
                self._problems[entry.email] = SignInAgainError(entry.email).message
                changed = True
        if changed:
            self._changed()

    # ---- signing in and out ---------------------------------------------------------------

    async def sign_in(
        self,
        open_url: Callable[[str], object],
        *,
        login_hint: str | None = None,
        wait_seconds: float = 300.0,
        on_waiting: Callable[[], object] | None = None,
    ) -> str:
        """Run the loopback flow to the end; returns the email that is now active.

        ``on_waiting`` is called once the browser was sent to Google. Cancelling the task
        that awaits this closes the port at once.
        """
        oauth = self._require_oauth()
        from colabtray.auth.loopback import LoopbackReceiver

        receiver = LoopbackReceiver()
        try:
            redirect_uri = await receiver.start()
            request = oauth.authorization_request(redirect_uri, login_hint=login_hint)
            receiver.expect(request.state)
            await asyncio.to_thread(open_url, request.url)
            if on_waiting is not None:
                on_waiting()
            try:
                async with asyncio.timeout(wait_seconds):
                    code = await receiver.wait()
            except TimeoutError:
                raise SignInTimeoutError(wait_seconds) from None
        finally:
            await receiver.close()
        grant = await oauth.exchange_code(request, code)
        email = await fetch_email(self._settings, grant.access_token.get_secret_value())
        assert grant.refresh_token is not None  # exchange_code guarantees it
        await self._store.aset(email, grant.refresh_token)
        entry = _Entry(email, Source.OAUTH)
        self._add(entry, self._make_identity(entry), Token(grant.access_token, grant.expires_at))
        return email

    async def sign_in_gcloud(self, account: str | None = None) -> str:
        """Use gcloud's sign-in of ``account`` (None: gcloud's active account); returns the
        email now active. GcloudError with a sentence if gcloud gives no token."""
        token = await GcloudIdentity(account).fresh_token()
        email = await fetch_email(self._settings, token.value.get_secret_value())
        # From now on gcloud is asked for this account, whichever is active in gcloud.
        identity = GcloudIdentity(account or email)
        self._add(_Entry(email, Source.GCLOUD, gcloud_account=identity.account), identity, token)
        return email

    async def sign_in_adc(self, path: Path) -> str:
        """Use the Application Default Credentials in ``path``; returns the email now active."""
        from colabtray.auth.adc import AdcCredentials

        identity = AdcIdentity(AdcCredentials(self._settings, path))
        token = await identity.fresh_token()
        email = await fetch_email(self._settings, token.value.get_secret_value())
        self._add(_Entry(email, Source.ADC, adc_file=str(path)), identity, token)
        return email

    async def retry(self, email: str) -> None:
        """Ask a gcloud or ADC account's source again (after the person fixed it there)."""
        self._problems.pop(email, None)
        self._tokens.pop(email, None)
        try:
            await self._refresh(email)
        finally:
            self._changed()

    def reload(self) -> None:
        """Read accounts.json again (another colabtray process changed it)."""
        self._entries, self._active = self._load()
        # A sign-in there may have replaced a sign-in here: ask every identity afresh.
        self._identities.clear()
        self._tokens.clear()
        self._problems.clear()
        self._changed()

    def switch(self, email: str) -> None:
        """Make another listed account the active one."""
        if email not in self._entries:
            raise NotSignedInError()
        self._active = email
        self._save()
        self._changed()

    async def sign_out(
        self, email: str | None = None, *, everyone: bool = False
    ) -> list[tuple[str, str | None]]:
        """Forget one account, or all (colabtray's own sign-ins are revoked, best effort);
        returns each email signed out with a sentence about what was left alone, if any."""
        targets = list(self._entries) if everyone else [email or self._active or ""]
        gone: list[tuple[str, str | None]] = []
        for target in [t for t in targets if t in self._entries]:
            note = await self._identity(target).forget()
            self._tokens.pop(target, None)
            self._identities.pop(target, None)
            self._problems.pop(target, None)
            del self._entries[target]
            gone.append((target, note))
        if self._active not in self._entries:
            self._active = next(iter(self._entries), None)
        self._save()
        self.plans.forget([email for email, _ in gone])
        self._changed()
        return gone

    # ---- TokenSource ----------------------------------------------------------------------

    def tokens_for(self, email: str) -> AccountTokens:
        """A ``TokenSource`` for one account (each served account's Colab client has one)."""
        return AccountTokens(self, email)

    async def access_token(self) -> str:
        """The active account's access token (``colabtray doctor``)."""
        if self._active is None:
            raise NotSignedInError()
        return await self.access_token_of(self._active)

    async def token_rejected(self, token: str) -> str | None:
        return await self.token_rejected_of(self._active, token) if self._active else None

    async def access_token_of(self, email: str) -> str:
        if email not in self._entries:
            raise NotSignedInError()
        if email in self._problems:
            raise SignInAgainError(email, self._problems[email])
        token = self._tokens.get(email)
        if token is None or token.expires_within(REFRESH_AHEAD_SECONDS):
            token = await self._refresh(email)
        return token.value.get_secret_value()

    async def token_rejected_of(self, email: str, token: str) -> str | None:
        if email not in self._entries:
            return None
        current = self._tokens.get(email)
        if current is not None and current.value.get_secret_value() != token:
            return current.value.get_secret_value()  # someone refreshed meanwhile
        self._tokens.pop(email, None)
        try:
            return (await self._refresh(email)).value.get_secret_value()
        except CredentialsRefusedError:
            raise SignInAgainError(email, self._problems.get(email)) from None

    async def _refresh(self, email: str) -> Token:
        """One refresh per account at a time; concurrent callers share its result."""
        pending = self._refreshing.get(email)
        if pending is None:
            pending = asyncio.ensure_future(self._do_refresh(email))
            self._refreshing[email] = pending
            pending.add_done_callback(lambda _: self._refreshing.pop(email, None))
        return await asyncio.shield(pending)

    async def _do_refresh(self, email: str) -> Token:
        try:
            token = await self._identity(email).fresh_token()
        except (CredentialsRefusedError, SignInAgainError) as exc:
            self._mark_needs_sign_in(email, exc.message)
            raise
        self._tokens[email] = token
        return token

    # ---- plumbing -------------------------------------------------------------------------

    def _identity(self, email: str) -> Identity:
        identity = self._identities.get(email)
        if identity is None:
            identity = self._identities[email] = self._make_identity(self._entries[email])
        return identity

    def _make_identity(self, entry: _Entry) -> Identity:
        if entry.source is Source.GCLOUD:
            return GcloudIdentity(entry.gcloud_account or entry.email)
        if entry.source is Source.ADC:
            from colabtray.auth.adc import AdcCredentials, adc_file

            path = Path(entry.adc_file) if entry.adc_file else adc_file()
            return AdcIdentity(AdcCredentials(self._settings, path or Path("(none)")))
        return OAuthIdentity(entry.email, self._store, self._require_oauth)

    def _require_oauth(self) -> GoogleOAuth:
        if self._oauth is None:
            from colabtray.auth.oauth import GoogleOAuth

            self._oauth = GoogleOAuth(self._settings)
        return self._oauth

    def _add(self, entry: _Entry, identity: Identity, token: Token) -> None:
        """A new or renewed sign-in: listed, active, with its first token."""
        self._entries[entry.email] = entry
        self._identities[entry.email] = identity
        self._tokens[entry.email] = token
        self._problems.pop(entry.email, None)
        self._active = entry.email
        self._save()
        self._changed()

    def _mark_needs_sign_in(self, email: str, reason: str) -> None:
        self._tokens.pop(email, None)
        if self.source_of(email) is Source.OAUTH:
            sentence = SignInAgainError(email).message  # the remedy is always the same
        else:
            sentence = f"{email}: {reason}"  # gcloud's or ADC's own remedy
        if self._problems.get(email) != sentence:
            log.info("an account needs to sign in again: %s", sentence)
            self._problems[email] = sentence
            self._changed()

    def _changed(self) -> None:
        self._listeners.tell()

    def _load(self) -> tuple[dict[str, _Entry], str | None]:
        data = read_json(self._path)
        if not isinstance(data, dict):
            return {}, None
        entries: dict[str, _Entry] = {}
        for item in data.get("accounts", []):
            entry = _entry(item)
            if entry is not None:
                entries[entry.email] = entry
        active = data.get("active")
        return entries, active if active in entries else next(iter(entries), None)

    def _save(self) -> None:
        data: dict[str, Any] = {
            "accounts": [e.to_json() for e in self._entries.values()],
            "active": self._active,
        }
        old = read_json(self._path)
        if isinstance(old, dict) and isinstance(old.get(PLANS_KEY), dict):
            data[PLANS_KEY] = old[PLANS_KEY]  # kept by self.plans in the same file
        write_json(self._path, data)


class AccountTokens:
    """The access tokens of one account, as a Colab client asks for them (``TokenSource``)."""

    def __init__(self, session: Session, email: str) -> None:
        self._session = session
        self.email = email

    async def access_token(self) -> str:
        return await self._session.access_token_of(self.email)

    async def token_rejected(self, token: str) -> str | None:
        return await self._session.token_rejected_of(self.email, token)


def _entry(item: Any) -> _Entry | None:
    """An account of accounts.json: an email (the first format), or an object."""
    if isinstance(item, str):
        return _Entry(item, Source.OAUTH) if "@" in item else None
    if not isinstance(item, dict) or not isinstance(item.get("email"), str):
        return None
    email = item["email"]
    try:
        source = Source(item.get("source", Source.OAUTH))
    except ValueError:
        return None
    if "@" not in email:
        return None
    text = {k: v for k, v in item.items() if isinstance(v, str)}
    return _Entry(email, source, text.get("gcloud_account"), text.get("adc_file"))
