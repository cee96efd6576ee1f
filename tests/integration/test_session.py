"""Accounts, tokens and their failures against the emulator's OAuth server.

The "browser" here is an HTTP client that follows the emulator's --auto-approve redirect
into our loopback receiver (the page itself is clicked in tests/e2e/test_signin.py). The
keyring is the in-memory fallback so these run anywhere; tests/e2e covers the real one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
import pytest
from keyring.backends import fail

from colabtray.auth.errors import InvalidGrantError, SignInAgainError, SignInError
from colabtray.auth.loopback import LoopbackReceiver
from colabtray.auth.oauth import GoogleOAuth
from colabtray.auth.tokens import SecretStore
from colabtray.colab.client import ColabClient
from colabtray.core.naming import RuntimeNames
from colabtray.core.registry import RuntimeRegistry, SignInNeeded
from colabtray.core.session import AccountState, Session
from tests.fixtures.colab import settings_for
from tests.fixtures.emulator import Emulator


@pytest.fixture
def auto_emulator(emulator_factory) -> Emulator:
    return emulator_factory("--auto-approve")


def follow(url: str) -> None:
    """A browser that does what Google's page would do after the user allowed."""
    with httpx2.Client(follow_redirects=True, timeout=30) as http:
        http.get(url)


def memory_store() -> SecretStore:
    return SecretStore(fail.Keyring())


async def test_sign_in_switch_and_sign_out_of_several_accounts(emulator: Emulator, tmp_path):
    settings = settings_for(emulator, tmp_path, access_token=None)
    session = Session(settings, memory_store())

    def choose(email: str):
        def browser(url: str) -> None:
            with httpx2.Client(timeout=30) as http:
                page = http.get(url)
                request_id = page.text.split('name="request" value="')[1].split('"')[0]
                approval = http.post(
                    emulator.url + "/o/oauth2/approval",
                    data={"request": request_id, "account": email, "decision": "allow"},
                )
                http.get(approval.headers["location"])

        return browser

    assert await session.sign_in(choose("ada@example.com")) == "ada@example.com"
    assert await session.sign_in(choose("free@example.com")) == "free@example.com"
    assert [(a.email, a.active) for a in session.accounts()] == [
        ("ada@example.com", False),
        ("free@example.com", True),
    ]
    session.switch("ada@example.com")
    restarted = Session(settings, memory_store())  # the accounts file survives a restart
    assert restarted.active_email == "ada@example.com"
    assert await session.sign_out(everyone=True) == [
        ("ada@example.com", None),
        ("free@example.com", None),
    ]
    assert session.accounts() == [] and session.active_email is None


async def test_concurrent_callers_share_one_refresh(auto_emulator: Emulator, tmp_path):
    settings = settings_for(auto_emulator, tmp_path, access_token=None)
    session = Session(settings, memory_store())
    await session.sign_in(follow)
    auto_emulator.admin("DELETE", "requests")
    auto_emulator.admin("POST", "tokens/expire-access", {})
    session._tokens.clear()  # as after a restart: no access token in memory

    tokens = await asyncio.gather(*(session.access_token() for _ in range(20)))
    assert len(set(tokens)) == 1
    token_calls = [
        r for r in auto_emulator.admin("GET", "requests")["requests"] if r["path"] == "/token"
    ]
    assert len(token_calls) == 1


async def test_a_revoked_grant_asks_to_sign_in_again_and_keeps_the_runtimes(
    auto_emulator: Emulator, tmp_path
):
    settings = settings_for(auto_emulator, tmp_path, access_token=None)
    session = Session(settings, memory_store())
    await session.sign_in(follow)
    async with ColabClient(settings, session) as client:
        await client.assign()
        registry = RuntimeRegistry(client, RuntimeNames(tmp_path / "names.json"))
        events: list[object] = []
        registry.subscribe(events.append)
        await registry.refresh()
        assert len(registry.runtimes()) == 1

        auto_emulator.admin("POST", "tokens/revoke", {"email": "ada@example.com"})
        auto_emulator.admin("POST", "tokens/expire-access", {})
        await registry.refresh()
        await registry.refresh()  # no retry loop, no second notice

        notices = [e.message for e in events if isinstance(e, SignInNeeded)]
        assert len(notices) == 1 and "ada@example.com needs to sign in again" in notices[0]
        assert session.accounts()[0].state is AccountState.NEEDS_SIGN_IN
        assert len(registry.runtimes()) == 1, "the runtime list was lost"
        with pytest.raises(SignInAgainError):
            await session.access_token()

        await session.sign_in(follow)
        await registry.refresh()
        assert not registry.state.signed_out and len(registry.runtimes()) == 1


async def test_replayed_and_expired_codes_are_refused(auto_emulator: Emulator, tmp_path):
    settings = settings_for(auto_emulator, tmp_path, access_token=None)
    oauth = GoogleOAuth(settings)
    receiver = LoopbackReceiver()
    redirect_uri = await receiver.start()
    try:
        for replay in (True, False):
            request = oauth.authorization_request(redirect_uri)
            async with httpx2.AsyncClient() as http:
                location = (await http.get(request.url)).headers["location"]
            code = httpx2.URL(location).params["code"]
            if replay:
                await oauth.exchange_code(request, code)
            else:
                auto_emulator.admin("POST", "tokens/expire-codes")
            with pytest.raises(SignInError, match="already used or expired"):
                await oauth.exchange_code(request, code)
    finally:
        await receiver.close()


async def test_a_wrong_verifier_is_refused(auto_emulator: Emulator, tmp_path):
    settings = settings_for(auto_emulator, tmp_path, access_token=None)
    oauth = GoogleOAuth(settings)
    request = oauth.authorization_request("http://127.0.0.1:1/")
    async with httpx2.AsyncClient() as http:
        location = (await http.get(request.url)).headers["location"]
    forged = type(request)(request.url, request.state, "x" * 64, request.redirect_uri)
    with pytest.raises(SignInError):
        await oauth.exchange_code(forged, httpx2.URL(location).params["code"])


async def test_refreshing_a_revoked_token_is_invalid_grant(auto_emulator: Emulator, tmp_path):
    settings = settings_for(auto_emulator, tmp_path, access_token=None)
    session = Session(settings, memory_store())
    await session.sign_in(follow)
    auto_emulator.admin("POST", "tokens/revoke", {"email": "ada@example.com"})
    refresh_token = session._store.get("ada@example.com")
    assert refresh_token is not None
    with pytest.raises(InvalidGrantError):
        await GoogleOAuth(settings).refresh(refresh_token)


def test_without_a_keyring_nothing_reaches_a_file(tmp_path: Path):
    store = memory_store()
    store.set("ada@example.com", __import__("pydantic").SecretStr("secret-refresh"))
    assert store.get("ada@example.com").get_secret_value() == "secret-refresh"
    assert list(tmp_path.iterdir()) == []
