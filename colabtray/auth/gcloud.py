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
from collections.abc import Sequence
from functools import partial

from colabtray.auth.errors import CredentialsRefusedError, SignInError
from colabtray.errors import describe_os_error

log = logging.getLogger(__name__)

TIMEOUT = 30.0
SIGN_IN_HINT = "run 'gcloud auth login' and try again"

# What gcloud says, and what the user should do about it.
_EXPLANATIONS = (
    (
        re.compile(r"do not currently have an active account", re.I),
        f"gcloud is signed out: {SIGN_IN_HINT}.",
    ),
    (
        re.compile(r"invalid_grant|expired or revoked|reauthenticat", re.I),
        f"gcloud's sign-in has expired or was revoked: {SIGN_IN_HINT}.",
    ),
    (
        re.compile(r"does not have any valid credentials|No credentialed accounts", re.I),
        f"gcloud has no credentials for that account: {SIGN_IN_HINT}.",
    ),
)
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
    status, out, err = await _run(args, TIMEOUT, keep_stdout=True)
    if status != 0:
        raise failure(err)
    return out


async def make_adc(scopes: tuple[str, ...], within: float) -> None:
    """Run gcloud's Application Default Credentials login (gcloud opens the browser itself)
    and wait up to ``within`` seconds for the person to finish; GcloudError if gcloud cannot
    be run, takes too long, or ends without success (the caller then looks for the file)."""
    command = adc_login_command(scopes)
    status, _out, err = await _run(command[1:], within, keep_stdout=False)
    last = err.strip().splitlines()[-1:]
    log.info("gcloud's ADC login ended with %s: %s", status, " ".join(last))
    if status != 0:
        raise adc_not_made(command, status)


def adc_not_made(command: list[str], status: int = 0) -> GcloudError:
    """gcloud's ADC login ended without a file: with its status, or (0) fine but no file."""
    how = f"it ended with status {status}" if status else "it ended, but made no file"
    return GcloudError(
        f"gcloud did not make Application Default Credentials ({how}); run "
        f"{' '.join(command)} in a terminal to see why."
    )


async def _run(args: Sequence[str], within: float, *, keep_stdout: bool) -> tuple[int, str, str]:
    """``gcloud ARGS`` with its prompts off: (exit status, stdout, stderr). On a timeout, or
    when the caller is cancelled, gcloud is killed: gcloud itself, not its process group,
    where a browser it started may live, which is the person's."""
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
            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        )
    except OSError as exc:
        raise GcloudError(f"gcloud could not be started ({describe_os_error(exc)}).") from None
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, TimeoutError):
            raise GcloudError(f"gcloud did not finish within {within:.0f} seconds.") from None
        raise
    decode = partial(bytes.decode, encoding="utf-8", errors="replace")
    return process.returncode or 0, decode(out or b""), decode(err or b"")


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
