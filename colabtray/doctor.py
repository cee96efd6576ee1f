"""``colabtray doctor``: what this machine and Google answered, in words, ready to paste.

Each :class:`Check` is one line: ✓ (works), ✗ (broken: the sentence says what to do) or ·
(information). The account, its token and every backend call decide the exit status; the
desktop lines (keyring, tray, notifications) inform only, so ``doctor`` is as useful on a
server. Nothing here changes anything: the backend calls are read-only, and every secret is
masked before a line is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import socket
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2

from colabtray import __version__, hints
from colabtray.auth.client_file import ClientFileError, configured_client
from colabtray.auth.identities import SOURCE_LABELS, ReadyToken, Source
from colabtray.auth.methods import READY_VARIABLE, discover, ways
from colabtray.colab import errors
from colabtray.colab.client import ColabClient, TokenSource
from colabtray.core import display
from colabtray.core.session import Session
from colabtray.errors import describe_os_error
from colabtray.settings import SCOPE_COLAB, SCOPE_EMAIL, Settings
from colabtray.system import trust
from colabtray.system.logs import mask_secrets
from colabtray.system.proxies import environment_proxy, shown

TIMEOUT = 10.0
_MARKS = {True: "✓", False: "✗", None: "·"}


@dataclass
class Check:
    name: str
    ok: bool | None  # None: information, never a failure
    sentence: str
    counts: bool = True  # whether it decides the exit status
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Identity:
    """Who the checks run as: a token source and how to describe it."""

    tokens: TokenSource | None
    email: str | None
    how: str  # "a ready token (COLABTRAY_ACCESS_TOKEN)", "colabtray's Google sign-in", …
    problem: str | None = None


async def run_checks(settings: Settings, identity: Identity) -> list[Check]:
    """Every check, in the order they are shown."""
    checks = [_about(), await _sign_in(settings, identity)]
    token: str | None = None
    if identity.tokens is not None and identity.problem is None:
        token_check, token = await _token(settings, identity.tokens)
        checks.append(token_check)
    uses_gapi = "gapi" in (settings.listing_api, settings.account_api)
    checks.append(await _host("colab host", settings.colab_url, settings, counts=True))
    checks.append(await _host("GAPI host", settings.gapi_url, settings, counts=uses_gapi))
    public = settings.runtime_api == "public"
    checks.append(await _host("public API host", settings.public_api_url, settings, counts=public))
    if token is not None and identity.tokens is not None:
        checks += await _backend_calls(settings, identity.tokens)
    checks += [await _keyring(), await _tray(), await _notifications()]
    return checks


def exit_status(checks: list[Check]) -> int:
    return 1 if any(c.ok is False and c.counts for c in checks) else 0


def as_text(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = _MARKS[check.ok] if check.counts or check.ok is not False else "!"
        lines.append(mask_secrets(f"{mark} {check.name}: {check.sentence}"))
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    return mask_secrets(
        json.dumps(
            {"ok": exit_status(checks) == 0, "checks": [asdict(c) for c in checks]}, indent=2
        )
    )


# ---- the checks ---------------------------------------------------------------------------


def _about() -> Check:
    system = f"{platform.system()} {platform.release()} ({platform.machine()})"
    sentence = f"colabtray {__version__}, Python {platform.python_version()}, {system}"
    return Check("version", None, sentence, details={"version": __version__})


async def _sign_in(settings: Settings, identity: Identity) -> Check:
    if identity.tokens is None:
        found = ways(await discover(settings))
        listed = "; ".join(f"'{command}' ({note})" for command, note in found)
        sentence = f"Not signed in. Run one of: {listed}; or set {READY_VARIABLE}."
        return Check("sign-in", False, sentence, details={"ways": [c for c, _ in found]})
    who = identity.email or "an account colabtray has not named yet"
    if identity.problem:
        return Check("sign-in", False, f"{who} via {identity.how}: {identity.problem}")
    return Check("sign-in", True, f"{who} via {identity.how}", details={"source": identity.how})


async def _token(settings: Settings, tokens: TokenSource) -> tuple[Check, str | None]:
    """What Google's tokeninfo says of the token the app would send."""
    try:
        token = await tokens.access_token()
    except errors.ColabError as exc:
        return Check("token", False, exc.message), None
    try:
        async with httpx2.AsyncClient(
            timeout=TIMEOUT, verify=trust.verification(settings)
        ) as http:  # POST: the token goes in the body, never in a URL
            response = await http.post(settings.tokeninfo_url, data={"access_token": token})
    except httpx2.HTTPError as exc:
        failure = errors.connection_failed("the token check", exc, type(exc).__name__)
        if isinstance(failure, errors.UntrustedCertificateError):
            return Check("token", False, failure.message), token
        host = urlsplit(settings.tokeninfo_url).netloc
        sentence = f"Google's token check ({host}) could not be reached ({type(exc).__name__})."
        return Check("token", False, sentence), token
    try:
        info = response.json()
    except ValueError:
        info = None
    if response.status_code != 200 or not isinstance(info, dict):
        return (
            Check(
                "token", False, "Google does not accept this token (invalid_token): sign in again."
            ),
            token,
        )
    scopes = str(info.get("scope", "")).split()
    minutes = _minutes(info.get("expires_in"))
    short = ", ".join(s.rsplit("/", 1)[-1] for s in scopes) or "none"
    details = {"scopes": scopes, "expires_in_minutes": minutes, "email": info.get("email")}
    left = f"expires in {minutes} min" if minutes is not None else "expiry unknown"
    if SCOPE_EMAIL not in scopes:
        sentence = (
            f"This token lacks userinfo.email (it has: {short}), so Colab will refuse it "
            "(401). Sign in again in a way that grants it (colabtray's own sign-in and "
            f"gcloud do; for ADC run the gcloud command that '{hints.command('signin', '--adc')}'"
            " shows)."
        )
        return Check("token", False, sentence, details=details), token
    if "gapi" in (settings.listing_api, settings.account_api) and SCOPE_COLAB not in scopes:
        sentence = (
            f"This token lacks the colaboratory scope (it has: {short}), which the gapi API "
            "settings need: sign in again, or set listing_api and account_api to colab."
        )
        return Check("token", False, sentence, details=details), token
    return Check("token", True, f"scopes {short}; {left}", details=details), token


def _minutes(value: object) -> int | None:
    try:
        return int(float(str(value)) // 60)
    except ValueError:
        return None


async def _host(name: str, url: str, settings: Settings, *, counts: bool) -> Check:
    """DNS, TCP and TLS (with the CAs colabtray trusts) to ``url``'s host, or one request
    through the proxy the environment names for it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = environment_proxy(url)
    details: dict[str, Any] = {"url": url, "proxy": shown(proxy) if proxy else None}
    if proxy:
        try:
            async with httpx2.AsyncClient(
                timeout=TIMEOUT, verify=trust.verification(settings), proxy=proxy
            ) as http:
                response = await http.get(url)
        except httpx2.HTTPError as exc:
            failure = errors.connection_failed(url, exc, type(exc).__name__)
            return Check(name, False, f"through {shown(proxy)}: {failure.message}", counts, details)
        return Check(
            name,
            True,
            f"{host} answers through the proxy {shown(proxy)} (HTTP {response.status_code})",
            counts,
            details,
        )
    found = await _resolve(host, port)
    if isinstance(found, str):
        problem = f"{host} cannot be resolved (DNS: {found})"
        return Check(name, False, _cannot_reach(problem), counts, details)
    details["addresses"] = found
    context = None
    if parts.scheme == "https":
        verify = trust.verification(settings)
        context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
    unreachable = await _connect(host, port, context)
    if unreachable is not None:
        return Check(name, False, unreachable, counts, details)
    how = "TLS verified" if context else "plain HTTP"
    return Check(name, True, f"{host}:{port} reachable ({how}, no proxy)", counts, details)


async def _resolve(host: str, port: int) -> list[str] | str:
    """The host's addresses, or why there are none."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        return _why(exc)
    return sorted({str(entry[4][0]) for entry in found})


async def _connect(host: str, port: int, context: ssl.SSLContext | None) -> str | None:
    """Open a TCP (and TLS) connection and close it; why it failed, or None."""
    try:
        async with asyncio.timeout(TIMEOUT):
            _reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host if context else None
            )
    except ssl.SSLCertVerificationError:
        return errors.UntrustedCertificateError(host).message
    except (OSError, TimeoutError) as exc:
        return _cannot_reach(f"{host}:{port} cannot be reached ({_why(exc)})")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def _cannot_reach(problem: str) -> str:
    """What a person does when a host does not answer at all: it is the network's doing."""
    return (
        f"This machine cannot reach Google: {problem}; check the network connection, and the "
        "proxy if this network needs one (set HTTPS_PROXY to it)."
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer in {TIMEOUT:.0f} s"
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)  # asyncio's own text is "Connect call failed (…)"
    return describe_os_error(exc) if isinstance(exc, OSError) else type(exc).__name__


async def _backend_calls(settings: Settings, tokens: TokenSource) -> list[Check]:
    """The read-only calls the app makes: the runtime list, and the account's plan."""
    calls: list[tuple[str, Callable[[ColabClient], Awaitable[str]]]] = [
        ("listing runtimes", _listing),
        ("account information", _account),
    ]
    results = []
    async with ColabClient(settings.model_copy(update={"retry_attempts": 1}), tokens) as client:
        results.append(await _runtime_api(client, settings))
        for name, call in calls:
            try:
                results.append(Check(name, True, await call(client)))
            except errors.ColabError as exc:
                results.append(Check(name, False, _meaning(exc)))
    return results


async def _runtime_api(client: ColabClient, settings: Settings) -> Check:
    """Which API serves runtimes for this account, why, and how to choose another."""
    try:
        choice = await client.api_choice()
    except errors.ColabError as exc:
        return Check("runtime API", False, _meaning(exc))
    where = "Colab's public API (v1beta)" if choice.api == "public" else "/tun/m"
    switch = (
        "set runtime_api to tun to skip the public API"
        if choice.api == "public"
        else "set runtime_api to public (colabtray then asks for the colaboratory scope) "
        "if Google has let your OAuth client in"
    )
    sentence = f"{where}: {choice.why.rstrip('.')}; {switch}."
    return Check("runtime API", True, sentence, details={"api": choice.api, "why": choice.why})


async def _listing(client: ColabClient) -> str:
    runtimes = await client.list_assignments()
    return f"{len(runtimes)} runtime{'s' if len(runtimes) != 1 else ''} assigned"


async def _account(client: ColabClient) -> str:
    units = await client.compute_units()
    line = display.compute_units_line(units) or "no compute-unit figures"
    return f"plan {units.tier or 'not named'}; {line}"


def _meaning(exc: errors.ColabError) -> str:
    if isinstance(exc, errors.SignedOutError):
        return (
            "HTTP 401: Colab refused the token. If the token line shows no userinfo.email, "
            "sign in again in a way that grants it; otherwise the sign-in was revoked: sign in "
            "again."
        )
    status = getattr(exc, "status", None)
    return f"HTTP {status}: {exc.message}" if status else exc.message


async def _keyring() -> Check:
    from colabtray.auth.vault import ChildVault, KeyringUnavailable

    try:
        name = await asyncio.to_thread(ChildVault(timeout=30).backend)
    except KeyringUnavailable as exc:
        return Check(
            "keyring", False, f"no secure keyring ({exc}): sign-ins last one run", counts=False
        )
    return Check("keyring", True, f"{name}", counts=False)


async def _tray() -> Check:
    if sys.platform != "linux":
        return Check("tray", None, "the system's menu bar / notification area", counts=False)
    watcher = await _dbus_name_has_owner("org.kde.StatusNotifierWatcher")
    code = (
        "from PySide6.QtWidgets import QApplication, QSystemTrayIcon\n"
        "app = QApplication([])\nprint(QSystemTrayIcon.isSystemTrayAvailable())"
    )
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        qt_tray = done.stdout.strip() == "True"
    except (OSError, subprocess.TimeoutExpired):
        qt_tray = False
    found = []
    if watcher:
        found.append("a StatusNotifierItem watcher")
    if qt_tray:
        found.append("a system tray Qt can use")
    if not found:
        return Check(
            "tray",
            False,
            "no system tray found: colabtray shows a small window instead (on GNOME, install "
            "the AppIndicator extension)",
            counts=False,
        )
    return Check("tray", True, " and ".join(found), counts=False)


async def _dbus_name_has_owner(name: str) -> bool:
    try:
        from dbus_fast import Message
        from dbus_fast.aio import MessageBus

        async with asyncio.timeout(TIMEOUT):
            bus = await MessageBus().connect()
    except Exception:  # no session bus, no dbus-fast: nothing owns anything
        return False
    try:
        question = Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member="NameHasOwner",
            signature="s",
            body=[name],
        )
        async with asyncio.timeout(TIMEOUT):
            reply = await bus.call(question)
        return bool(reply is not None and reply.body and reply.body[0])
    except Exception:
        return False
    finally:
        bus.disconnect()


async def _notifications() -> Check:
    from colabtray.system.notifications import Notifier

    notifier = Notifier()
    try:
        async with asyncio.timeout(TIMEOUT):
            capabilities = await notifier.capabilities()
    except TimeoutError:
        capabilities = frozenset()
    finally:
        notifier.close()
    names = sorted(c.name.lower() for c in capabilities)
    if not capabilities:
        sentence = "no notification service: colabtray asks in a small window instead"
        return Check("notifications", False, sentence, counts=False)
    buttons = "with buttons" if any(n == "buttons" for n in names) else "without buttons"
    return Check(
        "notifications",
        True,
        f"a notification service {buttons}",
        counts=False,
        details={"capabilities": names},
    )


async def diagnostics(settings: Settings, session: Session, ready: ReadyToken | None) -> str:
    """What ``colabtray doctor`` prints for a running app's sign-in (the About box copies it
    for a bug report)."""
    return as_text(await run_checks(settings, identity_of(settings, session, ready)))


def identity_of(
    settings: Settings,
    session: Session,
    ready: ReadyToken | None = None,
) -> Identity:
    """Who the app would act as: the ready token if one is set, else the active account."""
    if ready is not None:
        return Identity(ready, ready.email, ready.how)
    account = next((a for a in session.accounts() if a.active), None)
    if account is None:
        return Identity(None, None, "")
    how = SOURCE_LABELS[account.source]
    if account.source is Source.OAUTH:
        try:
            client = configured_client(settings)
        except ClientFileError as exc:
            return Identity(session, account.email, how, exc.message)
        how += f" (OAuth client from {client.origin})" if client else " (no OAuth client)"
    return Identity(session, account.email, how, account.problem)
