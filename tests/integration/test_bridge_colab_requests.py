"""Colab's credentials requests from a real kernel, answered by the bridge.

The emulator's runtimes carry a stand-in for Colab's kernel-side ``google.colab``
(colabtray/emulator/kernel_path) that sends ``colab_request`` and blocks for the reply, and
the emulator's backend plays credentials propagation with its consent page. The "browser" is
the bridge's ``open_browser`` seam: a function that loads the consent page and submits the
person's decision over real HTTP, as a click would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from tests.fixtures.bridge import Bridged
from tests.fixtures.jupyter_client import KernelSession
from tests.fixtures.waiting import hold

pytestmark = pytest.mark.slow


def person(decision: str, clicks: list[str]) -> Callable[[str], bool]:
    """A browser whose user answers the consent page with ``decision`` (allow or deny)."""

    def click(url: str) -> None:
        page = httpx2.get(url, timeout=10)
        assert page.status_code == 200 and 'name="decision"' in page.text, page.text[:200]
        state = parse_qs(urlsplit(url).query)["state"][0]
        action = url.split("?", 1)[0]
        answer = httpx2.post(action, data={"state": state, "decision": decision}, timeout=10)
        assert answer.status_code == 200
        clicks.append(decision)

    def open_browser(url: str) -> bool:
        threading.Thread(target=click, args=(url,), daemon=True).start()
        return True

    return open_browser


CLICKS: list[str] = []


@pytest.fixture
def bridge_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    CLICKS.clear()
    decision = getattr(request, "param", "allow")
    options: dict[str, Any] = {"consent_timeout": 4.0}
    if decision in ("allow", "deny"):
        options["open_browser"] = person(decision, CLICKS)
    elif decision == "no-browser":
        options["open_browser"] = lambda _url: False
    elif decision.startswith("undecided"):  # on Google's page, deciding nothing
        options["consent_timeout"] = 120.0  # what colabtray could wait for (auth_user's cap)
        if decision == "undecided, drive answered in 3 s":  # of drive.mount's 30 s here
            options["drive_reply_within"] = 3.0
    return options


def colab_requests(kernel: KernelSession) -> list[dict[str, Any]]:
    return [m for m in kernel.seen if m["header"]["msg_type"] == "colab_request"]


@pytest.mark.parametrize("bridge_options", ["allow"], indirect=True)
async def test_drive_mount_gets_consent_then_its_reply(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        output, reply = await kernel.execute(
            "from google.colab import drive\ndrive.mount('drive')", seconds=60
        )
        assert reply["status"] == "ok", output
        assert output == "Mounted at drive\n"
        assert CLICKS == ["allow"]
        # Consent is remembered for the runtime: the second mount needs no browser.
        output, reply = await kernel.execute("drive.mount('drive')")
        assert reply["status"] == "ok", output
        assert CLICKS == ["allow"]
        assert colab_requests(kernel) == []  # answered by the bridge, not passed on
        output, _ = await kernel.execute("print(6*7)")
        assert output == "42\n"


@pytest.mark.parametrize("bridge_options", ["allow"], indirect=True)
async def test_user_credentials_over_iopub_and_the_v1_protocol(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url, v1=True) as kernel:
        output, reply = await kernel.execute(
            "from google.colab import auth\n"
            "auth.authenticate_user(channel='iopub')\n"
            "print('authenticated')",
            seconds=60,
        )
        assert reply["status"] == "ok", output
        assert output == "authenticated\n"
        assert CLICKS == ["allow"]
        assert colab_requests(kernel) == []


@pytest.mark.parametrize("bridge_options", ["deny"], indirect=True)
async def test_refused_consent_is_an_error_reply_and_the_kernel_goes_on(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        output, reply = await kernel.execute(
            "from google.colab import drive\ndrive.mount('drive')", seconds=60
        )
        assert reply["status"] == "error"
        assert reply["ename"] == "MessageError"
        assert "[dfs_ephemeral] authorization was not completed" in reply["evalue"]
        assert CLICKS == ["deny"]
        output, reply = await kernel.execute("print(6*7)")
        assert (reply["status"], output) == ("ok", "42\n")


@pytest.mark.parametrize("bridge_options", ["no-browser"], indirect=True)
async def test_no_browser_is_an_error_reply(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        _output, reply = await kernel.execute(
            "from google.colab import drive\ndrive.mount('drive')", seconds=30
        )
        assert reply["status"] == "error"
        assert "no web browser could be opened" in reply["evalue"]
        output, _ = await kernel.execute("print(6*7)")
        assert output == "42\n"


async def test_other_colab_requests_pass_through_untouched(bridged: Bridged) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        _output, reply = await kernel.execute(
            "from google.colab import _message\n"
            "_message.blocking_request('request_auth', {'authType': 'dfs_persistent'}, 1)",
            seconds=30,
        )
        # Not ours to answer: the client sees it, and the kernel's own timeout ends the wait.
        assert reply["status"] == "error" and reply["ename"] == "TimeoutError"
        (seen,) = colab_requests(kernel)
        assert seen["content"]["request"] == {"authType": "dfs_persistent"}
        assert bridged.opened == []


def propagation_calls(bridged: Bridged, since: int) -> list[dict[str, Any]]:
    return [
        r
        for r in bridged.emulator.requests(since, host="colab")
        if r["path"].startswith("/tun/m/credentials-propagation/")
    ]


@pytest.mark.parametrize("bridge_options", ["undecided"], indirect=True)
async def test_colab_is_asked_no_more_once_drive_mounts_own_wait_has_passed(
    bridged: Bridged,
) -> None:
    _endpoint, url = await bridged.runtime()
    mark = bridged.emulator.last_seq()
    async with KernelSession(url) as kernel:
        _output, reply = await kernel.execute(
            "from google.colab import drive\ndrive.mount('drive', timeout_ms=3000)", seconds=30
        )
        # The notebook's own wait (3 s) ended the cell, while the person was on Google's page.
        assert (reply["status"], reply["ename"]) == ("error", "TimeoutError")
        assert len(bridged.opened) == 1
        asked = propagation_calls(bridged, mark)
        assert asked, "colabtray did not check back with Colab while the kernel waited"
        # Checking back every 2-15 s until consent_timeout (120 s) would show here.
        after = bridged.emulator.last_seq()
        await hold(8.0, lambda: not propagation_calls(bridged, after))
        output, reply = await kernel.execute("print(6*7)")
        assert (reply["status"], output) == ("ok", "42\n")


@pytest.mark.parametrize("bridge_options", ["undecided, drive answered in 3 s"], indirect=True)
async def test_drive_is_answered_within_its_wait_with_run_the_cell_again(
    bridged: Bridged,
) -> None:
    _endpoint, url = await bridged.runtime()
    async with KernelSession(url) as kernel:
        _output, reply = await kernel.execute(
            "from google.colab import drive\ndrive.mount('drive', timeout_ms=30000)", seconds=30
        )
        # colabtray's answer, before the kernel's own TimeoutError at 30 s.
        assert (reply["status"], reply["ename"]) == ("error", "MessageError")
        assert "drive.mount waits" in reply["evalue"]
        assert reply["evalue"].endswith("then run the cell again")
        after = bridged.emulator.last_seq()
        await hold(8.0, lambda: not propagation_calls(bridged, after))
