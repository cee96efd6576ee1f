"""What gcloud says on stderr, as one sentence a person can act on (texts as gcloud 528 prints
them; a stand-in gcloud exercises the process side in tests/integration)."""

from __future__ import annotations

import pytest

from colabtray.auth.gcloud import GcloudSignedOutError, adc_login_command, explain, failure

NO_ACCOUNT = """ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.
Please run:

  $ gcloud auth login

to obtain new credentials.
"""  # noqa: E501
NO_CREDENTIALS = """ERROR: (gcloud.auth.print-access-token) Your current active account [nobody@example.com] does not have any valid credentials
Please run:

  $ gcloud auth login
"""  # noqa: E501
REVOKED = """ERROR: (gcloud.auth.print-access-token) There was a problem refreshing your current auth tokens: ('invalid_grant: Token has been expired or revoked.', {'error': 'invalid_grant', 'error_description': 'Token has been expired or revoked.'})
Please run:

  $ gcloud auth login
"""  # noqa: E501


@pytest.mark.parametrize(
    ("stderr", "sentence"),
    [
        (NO_ACCOUNT, "gcloud is signed out: run 'gcloud auth login' and try again."),
        (NO_CREDENTIALS, "gcloud has no credentials for that account: run 'gcloud auth login'"),
        (REVOKED, "gcloud's sign-in has expired or was revoked: run 'gcloud auth login'"),
    ],
)
def test_sign_in_problems_say_what_to_run(stderr: str, sentence: str) -> None:
    assert explain(stderr).startswith(sentence)
    assert isinstance(failure(stderr), GcloudSignedOutError)


def test_anything_else_is_gclouds_own_first_error_line() -> None:
    stderr = "WARNING: something\nERROR: (gcloud.auth.print-access-token) Network is down.\n"
    error = failure(stderr)
    assert not isinstance(error, GcloudSignedOutError)  # not a reason to ask for a sign-in
    assert error.message == "gcloud could not give a token: Network is down."
    assert explain("") == "gcloud could not give a token: no reason."


def test_the_adc_command_asks_for_the_scopes_colabtray_needs_and_what_gcloud_demands() -> None:
    command = adc_login_command(("openid", "https://www.googleapis.com/auth/userinfo.email"))
    assert command[:4] == ["gcloud", "auth", "application-default", "login"]
    assert command[4] == (
        "--scopes=openid,https://www.googleapis.com/auth/userinfo.email,"
        "https://www.googleapis.com/auth/cloud-platform"
    )
