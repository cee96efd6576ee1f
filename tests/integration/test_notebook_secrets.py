"""Notebook secrets (``google.colab.userdata.get``) from a real kernel, through the bridge of
a running ``colabtray --headless``, answered as a person would from a terminal
(``colabtray secret allow|deny``); and asking before Google's consent page. Real processes,
the real keyring of the test session, real kernels."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.bridge import Bridged
from tests.fixtures.colab import run_cli
from tests.fixtures.emulator import Emulator
from tests.fixtures.jupyter_client import KernelSession
from tests.integration.test_one_truth import Lines

pytestmark = pytest.mark.slow

VALUE = "hf_s3cr3t-value-" + os.urandom(6).hex()
READ = (
    "from google.colab import userdata\ntry:\n    print(userdata.get({name!r}))\n"
    "except Exception as exc:\n    print(type(exc).__name__)"
)


def set_secret(env: dict[str, str], name: str, value: str, *flags: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "colabtray", "secret", "set", name, *flags],
        env=env,
        input=value + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert value not in done.stdout + done.stderr


@pytest.fixture
def app(headless_env: dict[str, str]) -> Iterator[tuple[dict[str, str], Lines]]:
    yield from running_app(headless_env, question_time=4)


@pytest.fixture
def patient_app(headless_env: dict[str, str]) -> Iterator[tuple[dict[str, str], Lines]]:
    """Questions stay open longer than google.colab's 10 s wait for a reply."""
    yield from running_app(headless_env, question_time=120)


def running_app(
    headless_env: dict[str, str], *, question_time: float
) -> Iterator[tuple[dict[str, str], Lines]]:
    env = {**headless_env, "COLABTRAY_IDLE_PROMPT_TIMEOUT": str(question_time)}
    process = subprocess.Popen(
        [sys.executable, "-m", "colabtray", "--headless"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        lines = Lines(process)
        lines.next_with("Signed in as")
        yield env, lines
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
        assert process.stdout is not None
        process.stdout.close()


async def read_in_kernel(kernel: KernelSession, name: str) -> str:
    output, reply = await kernel.execute(READ.format(name=name), seconds=60)
    assert reply["status"] == "ok", output
    return output.strip()


async def test_a_secret_is_read_once_allowed_and_never_leaks(
    emulator: Emulator, app: tuple[dict[str, str], Lines], tmp_path: Path
) -> None:
    env, lines = app
    set_secret(env, "HF_TOKEN", VALUE)
    set_secret(env, "OPEN_ONE", VALUE + "-open", "--no-ask")
    listed = run_cli(env, "secret", "list")
    assert listed.stdout.splitlines() == ["HF_TOKEN", "OPEN_ONE  (no question asked)"]
    runtime = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
    async with KernelSession(runtime["url"]) as kernel:
        # A name with no secret: refused at once, nobody asked.
        assert await read_in_kernel(kernel, "NOPE") == "SecretNotFoundError"
        # --no-ask: read without a question.
        assert await read_in_kernel(kernel, "OPEN_ONE") == VALUE + "-open"

        reading = asyncio.create_task(read_in_kernel(kernel, "HF_TOKEN"))
        asked = await asyncio.to_thread(lines.next_with, "asks for the secret HF_TOKEN")
        assert "answer with colabtray secret allow HF_TOKEN CPU (then" in asked
        allowed = run_cli(env, "secret", "allow", "HF_TOKEN", "CPU")
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.strip() == "CPU may read the secret HF_TOKEN."
        assert await reading == VALUE
        # Allowed for the runtime's life: no second question.
        assert await read_in_kernel(kernel, "HF_TOKEN") == VALUE
    assert not any("HF_TOKEN" in line for line in lines.seen[lines.seen.index(asked) + 1 :])

    haystacks = [json.dumps(emulator.requests()), emulator.stderr_text(), "\n".join(lines.seen)]
    for directory in ("config", "state", "log"):
        for path in (tmp_path / directory).rglob("*"):
            if path.is_file():
                haystacks.append(path.read_text(errors="ignore"))
    for text in haystacks:
        assert VALUE not in text

    gone = run_cli(env, "secret", "rm", "HF_TOKEN")
    assert gone.returncode == 0 and "Forgot the secret HF_TOKEN." in gone.stdout


ASK_AGAIN = (
    "import time\nfrom google.colab import userdata\nrefused = []\nstart = time.monotonic()\n"
    "for _ in range(10):\n    try:\n        userdata.get({name!r})\n"
    "    except Exception as exc:\n        refused.append(type(exc).__name__)\n"
    "print(sorted(set(refused)), len(refused), round(time.monotonic() - start, 1))"
)


async def test_a_denied_secret_stays_denied_until_allowed(
    app: tuple[dict[str, str], Lines],
) -> None:
    """Deny holds for the runtime: asking again (ten times, as a notebook that hopes the
    person gives in would) is answered "no access" at once, with no new question, until the
    person reverses it with ``colabtray secret allow``."""
    env, lines = app
    set_secret(env, "API_KEY", VALUE)
    set_secret(env, "SENTINEL", VALUE + "-other")
    runtime = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
    async with KernelSession(runtime["url"]) as kernel:
        reading = asyncio.create_task(read_in_kernel(kernel, "API_KEY"))
        asked = await asyncio.to_thread(lines.next_with, "asks for the secret API_KEY")
        denied = run_cli(env, "secret", "deny", "API_KEY", "CPU")
        assert denied.stdout.strip() == "CPU may not read the secret API_KEY."
        assert await reading == "NotebookAccessError"

        output, reply = await kernel.execute(ASK_AGAIN.format(name="API_KEY"), seconds=60)
        assert reply["status"] == "ok", output
        kinds, count, seconds = output.rsplit(" ", 2)
        assert (kinds, count) == ("['NotebookAccessError']", "10")
        # A question would wait 4 s for its answer; ten refusals came sooner than one.
        assert float(seconds) < 3.0

        # No new question: a question about another name comes out next on stdout.
        other = asyncio.create_task(read_in_kernel(kernel, "SENTINEL"))
        await asyncio.to_thread(lines.next_with, "asks for the secret SENTINEL")
        since = lines.seen[lines.seen.index(asked) + 1 :]
        assert not any("API_KEY" in line for line in since), since
        assert await other == "NotebookAccessError"  # unanswered

        allowed = run_cli(env, "secret", "allow", "API_KEY", "CPU")
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.strip() == "CPU may read the secret API_KEY."
        assert await read_in_kernel(kernel, "API_KEY") == VALUE
        # And back: deny again is reversed the other way, still without a question.
        assert run_cli(env, "secret", "deny", "API_KEY", "CPU").returncode == 0
        assert await read_in_kernel(kernel, "API_KEY") == "NotebookAccessError"


async def test_an_unanswered_secret_is_not_read_and_not_remembered(
    app: tuple[dict[str, str], Lines],
) -> None:
    env, lines = app
    set_secret(env, "API_KEY", VALUE)
    runtime = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
    async with KernelSession(runtime["url"]) as kernel:
        reading = asyncio.create_task(read_in_kernel(kernel, "API_KEY"))
        await asyncio.to_thread(lines.next_with, "asks for the secret API_KEY")
        assert await reading == "NotebookAccessError"  # no answer: 4 s, then no
        late = run_cli(env, "secret", "allow", "API_KEY", "CPU")
        assert late.returncode == 1 and "not waiting for an answer about API_KEY" in late.stderr
        # Nobody said no: the next request asks again.
        again = asyncio.create_task(read_in_kernel(kernel, "API_KEY"))
        await asyncio.to_thread(lines.next_with, "asks for the secret API_KEY")
        assert run_cli(env, "secret", "allow", "API_KEY", "CPU").returncode == 0
        assert await again == VALUE


async def test_the_notebook_is_answered_within_its_wait_and_a_later_allow_serves_the_next(
    patient_app: tuple[dict[str, str], Lines],
) -> None:
    """google.colab's userdata.get waits 10 s, then raises TimeoutException: colabtray answers
    "no access" in time while the question stays open, and an Allow given after that serves
    the cell run again."""
    env, lines = patient_app
    set_secret(env, "SLOW_KEY", VALUE)
    runtime = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
    async with KernelSession(runtime["url"]) as kernel:
        output, reply = await kernel.execute(
            "from google.colab import userdata\nfor key in ('', 'A B', 'A\\tB', 'A\\n'):\n"
            "    try:\n        userdata.get(key)\n    except ValueError:\n        print('V')"
        )
        assert (reply["status"], output) == ("ok", "V\nV\nV\nV\n")  # refused before asking

        reading = asyncio.create_task(read_in_kernel(kernel, "SLOW_KEY"))
        asked = await asyncio.to_thread(lines.next_with, "asks for the secret SLOW_KEY")
        assert "(then run the cell again)" in asked
        assert await reading == "NotebookAccessError"  # in time: not TimeoutException
        allowed = run_cli(env, "secret", "allow", "SLOW_KEY", "CPU")  # still open
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.strip() == "CPU may read the secret SLOW_KEY."
        assert await read_in_kernel(kernel, "SLOW_KEY") == VALUE
    assert [line for line in lines.seen if "asks for the secret" in line] == [asked]


# ---- asking before Google's consent page ----------------------------------------------------


class ScriptedPerson:
    """Stands in for the person at the notification (the only part not run for real here):
    answers each question as told, and records what was asked."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def notebook_secret(self, endpoint: str, name: str) -> dict[str, object]:
        return {"exists": False, "access": False, "payload": ""}

    async def may_open_consent(self, endpoint: str, auth_type: str) -> bool:
        self.asked.append(auth_type)
        return self.answer

    question_time = 10.0


PERSON = ScriptedPerson(False)
OPENED: list[str] = []


@pytest.fixture
def bridge_options() -> dict[str, Any]:
    PERSON.asked.clear()
    OPENED.clear()
    return {"asks": PERSON, "open_browser": lambda url: OPENED.append(url) or True}


async def test_drive_mount_declined_in_colabtray_opens_no_page(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        output, reply = await kernel.execute(
            "from google.colab import drive\ndrive.mount('drive')", seconds=60
        )
    assert reply["status"] == "error"
    assert "you declined in colabtray; nothing was shared" in output + json.dumps(reply)
    assert PERSON.asked == ["dfs_ephemeral"]
    assert OPENED == []  # the consent page was never opened
    dry_runs = [
        e
        for e in bridged.emulator.requests()
        if e["path"].startswith("/tun/m/credentials-propagation/")
    ]
    assert len(dry_runs) <= 2  # one dry run (its GET and POST), no polling
