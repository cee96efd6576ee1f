"""Signing in with gcloud, Application Default Credentials and an OAuth client file, and
`colabtray doctor`, as a person runs them: real processes against the emulator, gcloud played
by tests/fixtures/gcloud.py (the real one is not assumed), google-auth for real on ADC."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from tests.fixtures.colab import cli_env, run_cli
from tests.fixtures.credentials import TOKEN_SHAPES
from tests.fixtures.emulator import Emulator
from tests.fixtures.gcloud import Gcloud


def env_with(emulator: Emulator, tmp_path: Path, gcloud: Gcloud | None = None) -> dict[str, str]:
    """A person with no OAuth client configured and no ready token (and gcloud, if given)."""
    env = cli_env(emulator, tmp_path, with_token=False)
    env.pop("COLABTRAY_CLIENT_ID", None)
    env.pop("COLABTRAY_CLIENT_SECRET", None)
    env["HOME"] = str(tmp_path / "home")  # no ADC of the machine's own
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env["CLOUDSDK_CONFIG"] = str(tmp_path / "no-gcloud-config")
    if gcloud is not None:
        env.update(gcloud.env)
    return env


def accounts_file(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "config" / "accounts.json").read_text())


def no_secret_in_files(tmp_path: Path) -> None:
    for directory in ("config", "state", "log"):
        for path in (tmp_path / directory).rglob("*"):
            if path.is_file() and path.name != "oauth-client.json":
                found = TOKEN_SHAPES.search(path.read_text(errors="ignore"))
                assert found is None, f"{path} holds {found.group(0)[:8]}…"


def test_nothing_set_up_lists_the_ways_and_exits_2(emulator: Emulator, tmp_path: Path) -> None:
    result = run_cli(env_with(emulator, tmp_path), "signin")
    assert result.returncode == 2
    assert "Waiting for you" not in result.stderr  # no browser flow was started
    assert result.stderr.startswith("How to sign in (choose one):")
    for way in ("signin --gcloud", "signin --adc", "signin --client-file PATH"):
        assert way in result.stderr


def test_gcloud_signs_in_refreshes_and_signs_out_leaving_gcloud_alone(
    emulator: Emulator, tmp_path: Path, gcloud: Gcloud
) -> None:
    env = env_with(emulator, tmp_path, gcloud)
    refused = run_cli(env, "signin", "--gcloud")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "colabtray: gcloud is signed out: run 'gcloud auth login' and try again."
    )

    gcloud.login("ada@example.com")
    signed = run_cli(env, "signin", "--gcloud")
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith("Signed in as ada@example.com with gcloud")
    assert accounts_file(tmp_path)["accounts"] == [
        {"email": "ada@example.com", "source": "gcloud", "gcloud_account": "ada@example.com"}
    ]
    made = run_cli(env, "new", "--cpu", "--json")  # a new process asks gcloud for a token
    assert made.returncode == 0, made.stderr
    status = json.loads(run_cli(env, "status", "--json").stdout)
    assert status["account"] == {"email": "ada@example.com"}
    assert [r["endpoint"] for r in status["runtimes"]] == [json.loads(made.stdout)["endpoint"]]

    gone = run_cli(env, "signout")
    assert gone.stdout.strip() == (
        "Signed out ada@example.com. gcloud's own sign-in of ada@example.com is left as it is."
    )
    assert gcloud.run("auth", "print-access-token").returncode == 0  # gcloud still signed in
    no_secret_in_files(tmp_path)


def test_a_revoked_gcloud_sign_in_says_what_to_run(
    emulator: Emulator, tmp_path: Path, gcloud: Gcloud
) -> None:
    env = env_with(emulator, tmp_path, gcloud)
    gcloud.login("ada@example.com")
    assert run_cli(env, "signin", "--gcloud").returncode == 0
    gcloud.revoke()
    status = run_cli(env, "status")
    assert status.returncode == 1
    assert "gcloud's sign-in has expired or was revoked: run 'gcloud auth login'" in status.stderr
    assert "Traceback" not in status.stderr


def test_adc_made_by_gcloud_sign_in_through_google_auth(
    emulator: Emulator, tmp_path: Path, gcloud: Gcloud
) -> None:
    env = env_with(emulator, tmp_path, gcloud)
    missing = run_cli(env, "signin", "--adc")  # no TTY: says the command instead of asking
    assert missing.returncode == 2
    assert "make them with: gcloud auth application-default login --scopes=openid," in (
        missing.stderr
    )
    adc = gcloud.adc_login()
    assert stat.S_IMODE(adc.stat().st_mode) == 0o600
    signed = run_cli(env, "signin", "--adc")
    assert signed.returncode == 0, signed.stderr
    assert f"Application Default Credentials in {adc}" in signed.stdout
    assert accounts_file(tmp_path)["accounts"][0]["source"] == "adc"
    assert run_cli(env, "new", "--cpu").returncode == 0  # google-auth refreshed at the emulator
    token_calls = [e for e in emulator.requests(host="oauth") if e["path"] == "/token"]
    assert token_calls, "google-auth did not renew at the file's token_uri"
    gone = run_cli(env, "signout")
    assert "are left as they are" in gone.stdout and adc.exists()
    no_secret_in_files(tmp_path)


def test_a_client_file_is_kept_private_and_signs_in(emulator: Emulator, tmp_path: Path) -> None:
    env = env_with(emulator, tmp_path)
    web = tmp_path / "web.json"
    web.write_text(json.dumps({"web": {"client_id": "x", "client_secret": "y"}}))
    refused = run_cli(env, "signin", "--client-file", str(web))
    assert refused.returncode == 1 and 'is a "Web application" client' in refused.stderr

    downloaded = tmp_path / "client_secret_123.json"
    downloaded.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": emulator.env["COLABTRAY_CLIENT_ID"],
                    "client_secret": emulator.env["COLABTRAY_CLIENT_SECRET"],
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": "https://oauth2.googleapis.com/token",
                }
            }
        )
    )
    browser = tmp_path / "allow.py"  # what a person does in the browser: Allow, as ada
    browser.write_text(
        "import sys, httpx2\n"
        "page = httpx2.get(sys.argv[1], timeout=30)\n"
        "request = page.text.split('name=\"request\" value=\"')[1].split('\"')[0]\n"
        "base = sys.argv[1].split('/o/oauth2')[0]\n"
        "done = httpx2.post(base + '/o/oauth2/approval', timeout=30,\n"
        "    data={'request': request, 'account': 'ada@example.com', 'decision': 'allow'})\n"
        "httpx2.get(done.headers['location'], timeout=30)\n"
    )
    env["BROWSER"] = f"{sys.executable} {browser} %s"
    signed = run_cli(env, "signin", "--client-file", str(downloaded))
    assert signed.returncode == 0, signed.stderr
    assert "Waiting for you to sign in" in signed.stderr
    assert "Signed in as ada@example.com" in signed.stdout
    kept = tmp_path / "config" / "oauth-client.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # From then on a plain signin uses the kept client (the emulator's endpoints come from
    # the settings, which win over the file's Google URLs).
    again = run_cli(env, "signin")
    assert again.returncode == 0, again.stderr
    no_secret_in_files(tmp_path)


# ---- colabtray doctor ----------------------------------------------------------------------


def doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict]]:
    result = run_cli(env, "doctor", "--json", *args)
    data = json.loads(result.stdout)
    assert data["ok"] is (result.returncode == 0)
    return result.returncode, {check["name"]: check for check in data["checks"]}


def test_doctor_with_a_good_token(emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(emulator, tmp_path)
    status, checks = doctor(env)
    assert status == 0, checks
    assert checks["token"]["ok"] is True
    assert "userinfo.email" in checks["token"]["sentence"]
    assert checks["token"]["details"]["email"] == "ada@example.com"
    assert checks["listing runtimes"]["sentence"] == "0 runtimes assigned"
    assert checks["colab host"]["ok"] is True and checks["account information"]["ok"] is True
    text = run_cli(env, "doctor")
    assert emulator.access_token not in text.stdout + text.stderr
    assert text.stdout.splitlines()[0].startswith("· version: colabtray")


def test_doctor_names_a_token_without_userinfo_email(emulator_factory, tmp_path: Path) -> None:
    emulator = emulator_factory("--token-scopes", "openid")
    status, checks = doctor(cli_env(emulator, tmp_path))
    assert status == 1
    assert checks["token"]["ok"] is False
    assert "lacks userinfo.email" in checks["token"]["sentence"]
    assert checks["listing runtimes"]["sentence"].startswith("HTTP 401: Colab refused the token")


def test_doctor_reports_faults_and_a_stopped_colab(emulator_factory, tmp_path: Path) -> None:
    emulator = emulator_factory()
    env = cli_env(emulator, tmp_path)
    emulator.admin("POST", "faults", {"fault_rate": 1.0})
    status, checks = doctor(env)
    assert status == 1 and checks["listing runtimes"]["ok"] is False
    assert "could not be reached" in checks["listing runtimes"]["sentence"]
    emulator.stop()
    status, checks = doctor(env)
    assert status == 1 and checks["colab host"]["ok"] is False
    assert "cannot be reached" in checks["colab host"]["sentence"]
    assert checks["keyring"]["counts"] is False  # the desktop lines only inform


def test_doctor_names_an_untrusted_certificate(emulator_factory, tmp_path: Path) -> None:
    """The runtime proxy speaks HTTPS with the emulator's own certificate: as Colab's host,
    without that certificate trusted, it must get the ca_file hint."""
    emulator = emulator_factory("--tls")
    env = cli_env(emulator, tmp_path)
    made = run_cli(env, "new", "--cpu", "--json")
    runtime = next(r for r in emulator.state()["runtimes"])
    del made
    env["COLABTRAY_COLAB_URL"] = runtime["url"]
    env.pop("COLABTRAY_CA_FILE", None)
    status, checks = doctor(env)
    assert status == 1
    assert "is not trusted" in checks["colab host"]["sentence"]
    assert "ca_file" in checks["colab host"]["sentence"]
