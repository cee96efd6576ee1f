"""Runtimes over HTTPS, as Colab serves them: the emulator's ``--tls`` runtime proxies.

The backend client and the bridge verify the runtime's certificate like any HTTPS client: the
system's certificates, plus those of the ``ca_file`` setting (``COLABTRAY_CA_FILE``, which the
emulator exports). A certificate they cannot verify gets a sentence that names it (the editor
a 502), and the runtime proxy token is never sent: the handshake fails before a request.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from colabtray.auth.errors import SignInError
from colabtray.auth.identities import ReadyToken
from colabtray.auth.oauth import GoogleOAuth
from colabtray.auth.userinfo import fetch_email
from colabtray.colab.client import ColabClient
from colabtray.colab.errors import SignedOutError, UntrustedCertificateError
from colabtray.core.naming import RuntimeNames
from colabtray.core.notices import notice_for
from colabtray.core.registry import BackendLost, Event, RuntimeRegistry
from tests.fixtures.colab import headless_app, run_cli, settings_for
from tests.fixtures.emulator import Emulator, start_emulator
from tests.fixtures.jupyter_client import KernelSession, split_url
from tests.fixtures.waiting import until

pytestmark = pytest.mark.slow

TRUST_VARIABLES = ("COLABTRAY_CA_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR")
UNTRUSTED = "the Colab runtime's TLS certificate is not trusted, so nothing was sent to it"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator whose runtime proxies speak HTTPS (what ``headless_env`` points at)."""
    with start_emulator("--tls", "--idle-timeout", "600") as emu:
        yield emu


async def test_the_client_reads_a_runtime_it_trusts_and_names_the_one_it_does_not(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "COLABTRAY_CA_FILE" in emulator.env
    token = ReadyToken(emulator.access_token)
    # Only the system's certificates, as on a machine that lacks the CA.
    for name in TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    async with ColabClient(settings_for(emulator, tmp_path, ca_file=None), token) as distrusting:
        runtime = await distrusting.assign()  # the backend itself is plain HTTP
        assert runtime.proxy is not None and runtime.proxy.url.startswith("https://")
        seen = emulator.last_seq()
        with pytest.raises(UntrustedCertificateError) as refused:
            await distrusting.resources(runtime)
    assert "TLS certificate for runtime" in refused.value.message
    assert "ca_file setting" in refused.value.message
    assert [r for r in emulator.requests(since=seen) if r["host"] == "runtime"] == []

    async with ColabClient(settings_for(emulator, tmp_path), token) as trusting:
        resources = await trusting.resources(runtime)
    assert resources.disks


@pytest.fixture
async def https_stand_in(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The base URL of an HTTPS server of the emulator (a runtime's proxy) to play one of
    Google's servers; only the system's certificates are trusted from here on, so it is
    trusted only where ``ca_file`` names the emulator's certificate."""
    for name in TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    token = ReadyToken(emulator.access_token)
    async with ColabClient(settings_for(emulator, tmp_path), token) as client:
        runtime = await client.assign()
    assert runtime.proxy is not None
    return runtime.proxy.url.rstrip("/")


async def test_sign_in_calls_name_an_untrusted_certificate_and_honour_ca_file(
    emulator: Emulator, tmp_path: Path, https_stand_in: str
) -> None:
    """Google's token and userinfo endpoints played by an HTTPS server of the emulator (a
    runtime's proxy, which refuses both requests: it only matters whether they arrive)."""
    endpoints = {
        "oauth_token_url": f"{https_stand_in}/token",
        "userinfo_url": f"{https_stand_in}/userinfo",
    }
    refresh_token = SecretStr("not-a-real-refresh-token")

    distrusting = settings_for(emulator, tmp_path, ca_file=None, **endpoints)
    seen = emulator.last_seq()
    with pytest.raises(UntrustedCertificateError, match="for renewing the sign-in is not trust"):
        await GoogleOAuth(distrusting).refresh(refresh_token)
    with pytest.raises(UntrustedCertificateError, match="for the account's email is not trust"):
        await fetch_email(distrusting, "an-access-token")
    assert [r for r in emulator.requests(since=seen) if r["host"] == "runtime"] == []

    trusting = settings_for(emulator, tmp_path, **endpoints)
    with pytest.raises(SignInError, match="unreadable"):  # the handshake passed; a 401 came
        await GoogleOAuth(trusting).refresh(refresh_token)
    with pytest.raises(SignedOutError):
        await fetch_email(trusting, "an-access-token")
    reached = [r["path"] for r in emulator.requests(since=seen) if r["host"] == "runtime"]
    assert reached == ["/token", "/userinfo"]


async def test_an_untrusted_colab_is_announced_as_such_not_as_an_outage(
    emulator: Emulator, tmp_path: Path, https_stand_in: str
) -> None:
    """Colab behind TLS inspection, played by a runtime's HTTPS proxy in place of the backend:
    the notice names the certificate and the fix, rather than "Colab is unreachable"."""
    inspected = settings_for(
        emulator, tmp_path, ca_file=None, colab_url=https_stand_in, gapi_url=https_stand_in
    )
    seen = emulator.last_seq()
    async with ColabClient(inspected, ReadyToken(emulator.access_token)) as distrusting:
        registry = RuntimeRegistry(distrusting, RuntimeNames(tmp_path / "names.json"))
        events: list[Event] = []
        registry.subscribe(events.append)
        await registry.refresh()
    (lost,) = [e for e in events if isinstance(e, BackendLost)]
    notice = notice_for(lost)
    assert notice is not None and notice.title == "Colab's certificate is not trusted"
    assert "ca_file setting, then restart colabtray" in notice.body
    assert registry.state.problem == lost.message  # what the menu shows
    assert [r for r in emulator.requests(since=seen) if r["host"] == "runtime"] == []


def _url_of(env: dict[str, str], name: str) -> subprocess.CompletedProcess | None:
    answer = run_cli(env, "url", name)
    return answer if answer.returncode == 0 else None


async def test_a_runtime_over_https_works_through_the_bridge(
    emulator: Emulator, headless_env: dict[str, str]
) -> None:
    assert "COLABTRAY_CA_FILE" in headless_env  # the emulator's export: trust its certificate
    made = run_cli(headless_env, "new", "--cpu", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["endpoint"]
    assert emulator.state()["runtimes"][0]["url"].startswith("https://127.0.0.1:")

    with headless_app(headless_env):
        url = (await until(lambda: _url_of(headless_env, "cpu"), 60, interval=0.5)).stdout.strip()
        assert url.startswith("http://127.0.0.1:")  # the editor's side stays plain loopback
        async with KernelSession(url) as kernel:
            output, _ = await kernel.execute("print(6*7)")
            assert output == "42\n"
            written = await kernel.execute("open('x.bin', 'wb').write(bytes(range(256)) * 8192)")
            assert written[1]["status"] == "ok"
            base, token = split_url(url)
            async with httpx2.AsyncClient(base_url=base, params={"token": token}) as http:
                body = (await http.get("/files/x.bin")).content
            assert body == bytes(range(256)) * 8192


async def test_an_untrusted_runtime_certificate_is_refused_and_gets_no_token(
    emulator: Emulator, headless_env: dict[str, str]
) -> None:
    made = run_cli(headless_env, "new", "--cpu", "--json")
    assert made.returncode == 0, made.stderr
    distrusting = {k: v for k, v in headless_env.items() if k not in TRUST_VARIABLES}
    seen = emulator.last_seq()

    with headless_app(distrusting):
        url = (await until(lambda: _url_of(distrusting, "cpu"), 60, interval=0.5)).stdout
        base, token = split_url(url.strip())
        async with httpx2.AsyncClient(base_url=base, params={"token": token}) as http:
            answer = await http.get("/api/status")
        assert answer.status_code == 502
        assert UNTRUSTED in answer.text
    reached = [r for r in emulator.requests(since=seen) if r["host"] == "runtime"]
    assert reached == []
