"""The stand-in gcloud (tests/fixtures/gcloud.py) as a person sees it, against a real emulator:
what it prints, what it stores, and that its tokens are what the emulator's tokeninfo says."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from colabtray.emulator.tokens import ACCESS_PREFIX
from tests.fixtures.credentials import TOKEN_SHAPES
from tests.fixtures.emulator import Emulator
from tests.fixtures.gcloud import ADC_SCOPES, LOGIN_SCOPES, REPO, Gcloud

COLAB = "https://www.googleapis.com/auth/colaboratory"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"

SIGNED_OUT = """\
ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.
Please run:

  $ gcloud auth login

to obtain new credentials.

If you have already logged in with a different account, run:

  $ gcloud config set account ACCOUNT

to select an already authenticated account to use.
"""
REVOKED = """\
ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current auth \
tokens: ('invalid_grant: Token has been expired or revoked.', {'error': 'invalid_grant', \
'error_description': 'Token has been expired or revoked.'})
Please run:

  $ gcloud auth login

to obtain new credentials.

If you have already logged in with a different account, run:

  $ gcloud config set account ACCOUNT

to select an already authenticated account to use.
"""


def access_token(gcloud: Gcloud, *args: str) -> str:
    """``gcloud auth print-access-token ARGS``: exactly one line, the token, and no stderr."""
    done = gcloud.run("auth", "print-access-token", *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    token, newline, rest = done.stdout.partition("\n")
    assert newline and rest == "" and token.startswith(ACCESS_PREFIX), "not one token line"
    return token


def tokeninfo(emulator: Emulator, token: str) -> dict[str, Any]:
    answer = emulator.http.get(
        emulator.env["COLABTRAY_TOKENINFO_URL"], params={"access_token": token}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def accounts(gcloud: Gcloud) -> list[dict[str, str]]:
    done = gcloud.run("auth", "list", "--format=json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def active_account(gcloud: Gcloud) -> tuple[str, str]:
    """``gcloud config get-value account``: (stdout, stderr)."""
    done = gcloud.run("config", "get-value", "account")
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_it_runs_with_the_standard_library_only(gcloud: Gcloud) -> None:
    # -S: no site-packages at all, so importing pytest (or anything else) would fail.
    done = subprocess.run(
        [sys.executable, "-S", "-P", "-m", "tests.fixtures.gcloud", "--version"],
        env={**os.environ, **gcloud.env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"Google Cloud SDK 5\d\d\.0\.0\n", done.stdout)
    on_path = gcloud.run("--version")  # the wrapper the fixture put first on PATH
    assert on_path.returncode == 0 and on_path.stdout == done.stdout


def test_login_gives_tokens_that_tokeninfo_accepts_with_the_login_scopes(
    emulator: Emulator, gcloud: Gcloud
) -> None:
    assert accounts(gcloud) == []
    gcloud.login("ada@example.com")
    assert accounts(gcloud) == [{"account": "ada@example.com", "status": "ACTIVE"}]
    assert active_account(gcloud) == ("ada@example.com\n", "")

    first = access_token(gcloud)
    info = tokeninfo(emulator, first)
    assert info["email"] == "ada@example.com"
    assert set(info["scope"].split()) == set(LOGIN_SCOPES)
    assert info["aud"] == emulator.env["COLABTRAY_CLIENT_ID"]
    assert info["access_type"] == "offline"
    assert access_token(gcloud) != first  # a fresh token each time, from the refresh token

    # What Colab makes of gcloud's token: listing works, GAPI wants colaboratory.
    headers = {"Authorization": f"Bearer {first}"}
    listing = emulator.http.get("/tun/m/assignments", params={"authuser": "0"}, headers=headers)
    assert listing.status_code == 200, listing.text
    gapi = emulator.http.get("/gapi/v1/assignments", headers=headers)
    assert gapi.status_code == 403
    assert gapi.json()["error"]["details"][0]["reason"] == "SCOPE_NOT_PERMITTED"


def test_account_flag_picks_a_signed_in_account(emulator: Emulator, gcloud: Gcloud) -> None:
    gcloud.login("ada@example.com")
    gcloud.login("free@example.com")  # the latest sign-in becomes the active account
    assert accounts(gcloud) == [
        {"account": "ada@example.com", "status": ""},
        {"account": "free@example.com", "status": "ACTIVE"},
    ]
    assert tokeninfo(emulator, access_token(gcloud))["email"] == "free@example.com"
    chosen = access_token(gcloud, "--account", "ada@example.com")
    assert tokeninfo(emulator, chosen)["email"] == "ada@example.com"
    assert tokeninfo(emulator, access_token(gcloud, "--account=ada@example.com"))["email"] == (
        "ada@example.com"
    )
    stranger = gcloud.run("auth", "print-access-token", "--account", "plus@example.com")
    assert stranger.returncode == 1 and stranger.stdout == ""
    assert stranger.stderr.startswith(
        "ERROR: (gcloud.auth.print-access-token) Your current active account "
        "[plus@example.com] does not have any valid credentials\nPlease run:\n\n"
        "  $ gcloud auth login\n"
    )


def test_signed_out_says_so_as_gcloud_does(emulator: Emulator, gcloud: Gcloud) -> None:
    never = gcloud.run("auth", "print-access-token")
    assert (never.returncode, never.stdout, never.stderr) == (1, "", SIGNED_OUT)
    assert active_account(gcloud) == ("\n", "(unset)\n")

    gcloud.login("ada@example.com")
    gcloud.sign_out()
    after = gcloud.run("auth", "print-access-token")
    assert (after.returncode, after.stdout, after.stderr) == (1, "", SIGNED_OUT)
    assert active_account(gcloud) == ("\n", "(unset)\n")
    # The credentials stay: the account is listed, not active, and can be chosen again.
    assert accounts(gcloud) == [{"account": "ada@example.com", "status": ""}]
    assert gcloud.run("config", "set", "account", "ada@example.com").returncode == 0
    assert tokeninfo(emulator, access_token(gcloud))["email"] == "ada@example.com"


def test_a_revoked_sign_in_gets_invalid_grant(emulator: Emulator, gcloud: Gcloud) -> None:
    gcloud.login("ada@example.com")
    issued = access_token(gcloud)
    gcloud.revoke()  # behind gcloud's back
    refused = gcloud.run("auth", "print-access-token")
    assert (refused.returncode, refused.stdout, refused.stderr) == (1, "", REVOKED)
    # Revoking the refresh token took the access tokens made from it along.
    dead = emulator.http.get(
        emulator.env["COLABTRAY_TOKENINFO_URL"], params={"access_token": issued}
    )
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_token"
    assert accounts(gcloud) == [{"account": "ada@example.com", "status": "ACTIVE"}]


def test_auth_revoke_signs_out_at_google_and_forgets(emulator: Emulator, gcloud: Gcloud) -> None:
    gcloud.login("ada@example.com")
    gcloud.login("plus@example.com")
    issued = access_token(gcloud, "--account", "ada@example.com")
    done = gcloud.run("auth", "revoke", "ada@example.com")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "Revoked credentials:\n - ada@example.com\n"
    assert accounts(gcloud) == [{"account": "plus@example.com", "status": "ACTIVE"}]
    dead = emulator.http.get(
        emulator.env["COLABTRAY_TOKENINFO_URL"], params={"access_token": issued}
    )
    assert dead.status_code == 400
    everything = gcloud.run("auth", "revoke", "--all")
    assert everything.returncode == 0 and "plus@example.com" in everything.stderr
    assert accounts(gcloud) == []
    assert active_account(gcloud) == ("\n", "(unset)\n")
    again = gcloud.run("auth", "revoke")
    assert again.returncode == 1
    assert again.stderr == "ERROR: (gcloud.auth.revoke) No credentials available to revoke.\n"


def test_application_default_login_writes_googles_authorized_user_file(
    emulator: Emulator, gcloud: Gcloud
) -> None:
    no_cloud_platform = gcloud.run(
        "auth", "application-default", "login", f"--scopes=openid,{EMAIL},{COLAB}"
    )
    assert no_cloud_platform.returncode == 1
    assert no_cloud_platform.stderr == (
        "ERROR: (gcloud.auth.application-default.login) Invalid value for [--scopes]: "
        f"{CLOUD_PLATFORM} scope is required but not requested. Please include it in the "
        "--scopes flag.\n"
    )
    assert not gcloud.adc_file.exists()

    scopes = ("openid", EMAIL, CLOUD_PLATFORM, COLAB)
    done = gcloud.run("auth", "application-default", "login", f"--scopes={','.join(scopes)}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"Credentials saved to file: [{gcloud.adc_file}]" in done.stderr
    assert stat.S_IMODE(gcloud.adc_file.stat().st_mode) == 0o600
    adc = json.loads(gcloud.adc_file.read_text())
    assert adc == {
        "type": "authorized_user",
        "client_id": emulator.env["COLABTRAY_CLIENT_ID"],
        "client_secret": emulator.env["COLABTRAY_CLIENT_SECRET"],
        "refresh_token": adc["refresh_token"],
        "token_uri": emulator.env["COLABTRAY_OAUTH_TOKEN_URL"],
        "account": "",
    }
    assert adc["refresh_token"].startswith("1//")
    assert accounts(gcloud) == []  # ADC are not one of gcloud's own sign-ins

    default = gcloud.adc_login()  # the helper, with gcloud's default ADC scopes
    assert default == gcloud.adc_file
    renewed = emulator.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": json.loads(default.read_text())["refresh_token"],
            "client_id": emulator.env["COLABTRAY_CLIENT_ID"],
            "client_secret": emulator.env["COLABTRAY_CLIENT_SECRET"],
        },
    )
    assert set(renewed.json()["scope"].split()) == set(ADC_SCOPES)


def test_google_auth_refreshes_the_adc_file_at_the_emulator(
    emulator: Emulator, gcloud: Gcloud
) -> None:
    credentials_module = pytest.importorskip("google.oauth2.credentials")
    transport = pytest.importorskip("google.auth.transport.urllib3")
    urllib3 = pytest.importorskip("urllib3")
    path = gcloud.adc_login(("openid", EMAIL, CLOUD_PLATFORM, COLAB))
    credentials = credentials_module.Credentials.from_authorized_user_file(str(path))
    assert credentials.refresh_token and not credentials.valid
    # google-auth (2.63) renews at Google's endpoint whatever the file says; a program that
    # honours the file's token_uri says so, as colabtray does.
    credentials = credentials.with_token_uri(json.loads(path.read_text())["token_uri"])
    credentials.refresh(transport.Request(urllib3.PoolManager()))
    assert credentials.valid
    info = tokeninfo(emulator, credentials.token)
    assert info["email"] == "ada@example.com"
    assert set(info["scope"].split()) == {"openid", EMAIL, CLOUD_PLATFORM, COLAB}
    gapi = emulator.http.get(
        "/gapi/v1/user-info", headers={"Authorization": f"Bearer {credentials.token}"}
    )
    assert gapi.status_code == 200, gapi.text


def test_login_without_a_consent_page_and_a_mismatched_account(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory("--auto-approve")
    gcloud = Gcloud(emulator, tmp_path)
    gcloud.login("free@example.com")  # the emulator signs in the login_hint account at once
    assert tokeninfo(emulator, access_token(gcloud))["email"] == "free@example.com"
    # An account the emulator does not have: it signs in its default account instead.
    mixed = gcloud.run("auth", "login", "nobody@example.com")
    assert mixed.returncode == 1
    assert mixed.stderr == (
        "ERROR: (gcloud.auth.login) You attempted to log in as account [nobody@example.com] "
        "but the received credentials were for account [ada@example.com].\n"
    )
    assert accounts(gcloud) == [{"account": "free@example.com", "status": "ACTIVE"}]


def test_an_unreachable_or_failing_token_endpoint_is_not_a_sign_in_problem(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = emulator_factory()
    gcloud = Gcloud(emulator, tmp_path)
    gcloud.login("ada@example.com")
    emulator.admin("POST", "faults", {"fault_rate": 1.0})
    failing = gcloud.run("auth", "print-access-token")
    assert failing.returncode == 1 and failing.stdout == ""
    assert failing.stderr.startswith(
        "ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current "
        "auth tokens: "
    )
    assert "invalid_grant" not in failing.stderr and "Traceback" not in failing.stderr
    emulator.stop()
    gone = gcloud.run("auth", "print-access-token")
    assert gone.returncode == 1 and gone.stdout == ""
    assert gone.stderr.startswith(
        "ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current "
        "auth tokens: 127.0.0.1:"
    )
    assert "gcloud auth login" not in gone.stderr  # signing in again would not help
    assert "Traceback" not in gone.stderr


def test_no_token_or_secret_is_printed_or_left_readable(emulator: Emulator, gcloud: Gcloud) -> None:
    outputs = []
    for args in (
        ("auth", "login", "ada@example.com"),
        ("auth", "login", "plus@example.com"),
        ("auth", "list"),
        ("auth", "list", "--format=json"),
        ("config", "get-value", "account"),
        ("auth", "application-default", "login"),
        ("auth", "revoke", "plus@example.com"),
        ("--version",),
    ):
        done = gcloud.run(*args)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append(done.stdout + done.stderr)
    found = TOKEN_SHAPES.search("".join(outputs))
    assert found is None, f"gcloud printed {found.group(0)[:8]}…"
    assert emulator.env["COLABTRAY_CLIENT_SECRET"] not in "".join(outputs)
    for path in gcloud.config_dir.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(gcloud.config_dir.stat().st_mode) == 0o700
