"""Tokens from the Google Cloud CLI (``gcloud``), which many Colab users have signed in already.

colabtray runs ``gcloud auth print-access-token [--account EMAIL]`` when it needs a token
(asynchronously, with a timeout) and never copies gcloud's refresh token: gcloud keeps its own
sign-in, and refreshes it. Whatever gcloud says on stderr becomes one sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import subprocess

from colabtray.auth.errors import CredentialsRefusedError, SignInError

log = logging.getLogger(__name__)

TIMEOUT = 30.0
SIGN_IN_HINT = "run 'gcloud auth login' and try again"

# What gcloud says, and what the user should do about it.
_EXPLANATIONS = (
    (re.compile(r"do not currently have an active account", re.I),
     f"gcloud is signed out: {SIGN_IN_HINT}."),
    (re.compile(r"invalid_grant|expired or revoked|reauthenticat", re.I),
     f"gcloud's sign-in has expired or was revoked: {SIGN_IN_HINT}."),
    (re.compile(r"does not have any valid credentials|No credentialed accounts", re.I),
     f"gcloud has no credentials for that account: {SIGN_IN_HINT}."),
)  # fmt: skip
_ERROR_LINE = re.compile(r"^ERROR: \([^)]*\) (.*)$", re.M)


class GcloudError(SignInError):
    """gcloud could not give a token; the sentence says why and what to do."""


class GcloudSignedOutError(GcloudError, CredentialsRefusedError):
    """gcloud gives no token until the person signs it in again (or installs it)."""


def find_gcloud() -> str | None:
    """The gcloud executable on PATH, if any."""
    return shutil.which("gcloud")


def failure(stderr: str) -> GcloudError:
    """The error for what gcloud wrote on stderr: a sign-in problem, or anything else."""
    for pattern, sentence in _EXPLANATIONS:
        if pattern.search(stderr):
            return GcloudSignedOutError(sentence)
    return GcloudError(explain(stderr))


def explain(stderr: str) -> str:
    """One sentence for what gcloud wrote on stderr."""
    for pattern, sentence in _EXPLANATIONS:
        if pattern.search(stderr):
            return sentence
    match = _ERROR_LINE.search(stderr)
    lines = stderr.strip().splitlines()
    detail = match.group(1).strip() if match else (lines[-1].strip() if lines else "no reason")
    return f"gcloud could not give a token: {detail[:200].rstrip('.')}."


async def run_gcloud(*args: str) -> str:
    """gcloud's stdout for ``gcloud ARGS``; GcloudError with a sentence on any failure."""
    executable = find_gcloud()
    if executable is None:
        raise GcloudSignedOutError(
            "gcloud (the Google Cloud CLI) is not installed or not on PATH; install it, or "
            "sign in another way."
        )
    try:
        process = await asyncio.create_subprocess_exec(
            executable,
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        )
    except OSError as exc:
        raise GcloudError(f"gcloud could not be started ({exc.strerror or exc}).") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise GcloudError(f"gcloud did not answer within {TIMEOUT:.0f} seconds.") from None
    if process.returncode != 0:
        raise failure(err.decode("utf-8", "replace"))
    return out.decode("utf-8", "replace")


async def print_access_token(account: str | None) -> str:
    """A fresh access token of gcloud's account ``account`` (None: gcloud's active one)."""
    args = ["auth", "print-access-token"]
    if account:
        args += ["--account", account]
    token = (await run_gcloud(*args)).strip()
    if not token or any(c.isspace() for c in token):
        raise GcloudError("gcloud printed no access token.")
    return token


async def active_account() -> str | None:
    """The account gcloud uses by default, or None when it has none."""
    try:
        account = (await run_gcloud("config", "get-value", "account")).strip()
    except GcloudError as exc:
        log.info("gcloud's active account is unknown: %s", exc.message)
        return None
    return account if "@" in account else None


def adc_login_command(scopes: tuple[str, ...]) -> list[str]:
    """The gcloud command that makes Application Default Credentials with ``scopes`` (gcloud
    wants cloud-platform in any explicit list, so it is added)."""
    wanted = list(dict.fromkeys((*scopes, "https://www.googleapis.com/auth/cloud-platform")))
    return ["gcloud", "auth", "application-default", "login", f"--scopes={','.join(wanted)}"]
