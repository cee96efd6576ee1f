"""The Qt-free core the tray renders, against the emulator: loops follow who is signed in,
notices come once per event or episode, and the icon state follows the backend.

The keyring is the system one under scripts/test.sh (gnome-keyring on the test's bus).
The "browser" follows the emulator's --auto-approve redirect (login_hint picks the account).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
import pytest

from colabtray.colab.models import CPU, GPU
from colabtray.core.app import Core
from colabtray.core.display import TrayState
from colabtray.core.notices import Notice
from tests.fixtures.colab import settings_for
from tests.fixtures.emulator import Emulator
from tests.fixtures.waiting import hold, until

POLL = 0.3


def follow(url: str) -> None:
    """The browser, once the user allowed (the emulator approves at once)."""
    with httpx2.Client(follow_redirects=True, timeout=30) as http:
        http.get(url)


def make_core(emulator: Emulator, tmp_path: Path, **overrides: object) -> Core:
    settings = settings_for(
        emulator,
        tmp_path,
        poll_interval=POLL,
        retry_attempts=1,
        keepalive_interval=600.0,  # keep-alive has its own tests
        **overrides,
    )
    return Core(settings)


def titles(notices: list[Notice], title: str) -> int:
    return sum(1 for n in notices if n.title == title)


async def more_listings(emulator: Emulator, count: int = 2) -> None:
    """Until the core has listed the runtimes ``count`` more times, as the emulator's request
    log shows: "more polls changed nothing" is then said after polls that did happen."""
    mark = emulator.last_seq()

    def listed() -> bool:
        log = emulator.requests(since=mark, host="colab")
        return sum(1 for e in log if e["path"] == "/tun/m/assignments") >= count

    await until(listed, 15, interval=POLL / 2)


async def test_ready_token_runtimes_and_one_notice_per_event(emulator: Emulator, tmp_path: Path):
    core = make_core(emulator, tmp_path)
    notices: list[Notice] = []
    core.subscribe_notices(notices.append)
    assert core.signed_in and core.uses_ready_token
    await core.start()
    try:
        await until(lambda: core.fleet.state.loaded and core.email == "ada@example.com")
        assert core.tray_state() is TrayState.IDLE
        assert core.compute_units_line() == "Compute units: 100.00 · none in use"

        name, runtime = await core.create(GPU, "T4")
        assert name == "T4 GPU" and core.tray_state() is TrayState.RUNNING
        assert [r.label for r in core.rows()] == ["T4 GPU · Standard — running"]
        assert "1 runtime running: T4 GPU" in core.tooltip()
        assert titles(notices, "T4 GPU is ready") == 1
        figures = await core.resources(runtime.endpoint)
        assert figures.gpus and figures.gpus[0].memory_total_bytes > 0

        emulator.admin("POST", f"runtimes/{runtime.endpoint}/reclaim")
        await until(lambda: not core.rows(), 5 * POLL + 5)
        await more_listings(emulator)  # more polls: still one notice
        assert titles(notices, "T4 GPU was disconnected") == 1
        assert core.tray_state() is TrayState.IDLE

        await core.sign_out()  # a ready token is dropped; nobody else is signed in
        assert not core.signed_in and core.tray_state() is TrayState.SIGNED_OUT
        await until(lambda: not core.fleet.state.loaded)
        await asyncio.sleep(POLL)  # a request cancelled in flight may still arrive
        seq = emulator.last_seq()
        # Three poll intervals with no request at all (a signed-in core lists every 2 POLL).
        await hold(3 * POLL, lambda: emulator.requests(since=seq) == [])
    finally:
        await core.stop()


async def test_an_outage_is_one_episode_and_recovers(emulator: Emulator, tmp_path: Path):
    core = make_core(emulator, tmp_path)
    notices: list[Notice] = []
    core.subscribe_notices(notices.append)
    await core.start()
    try:
        await until(lambda: core.fleet.state.loaded)
        emulator.admin("POST", "faults", {"fault_rate": 1.0})
        await until(lambda: core.tray_state() is TrayState.UNREACHABLE)
        assert "Colab could not be reached" in (core.problem() or "")
        await more_listings(emulator)  # failed ones
        assert titles(notices, "Colab is unreachable") == 1
        emulator.admin("POST", "faults", {"fault_rate": 0.0})
        await until(lambda: core.tray_state() is TrayState.IDLE)
        await more_listings(emulator)
        assert titles(notices, "Colab is unreachable") == 1
        assert titles(notices, "Colab is reachable again") == 1
        assert core.problem() is None
    finally:
        await core.stop()


@pytest.fixture
def auto_emulator(emulator_factory) -> Emulator:
    return emulator_factory("--auto-approve")


async def test_each_account_keeps_its_own_plan_and_signing_out_goes_one_by_one(
    auto_emulator: Emulator, tmp_path: Path
):
    core = make_core(auto_emulator, tmp_path, access_token=None)
    changes: list[None] = []
    core.subscribe(lambda: changes.append(None))
    await core.start()
    try:
        assert not core.signed_in and core.tray_state() is TrayState.SIGNED_OUT
        assert await core.sign_in(follow) == "ada@example.com"
        await until(lambda: core.fleet.state.loaded)
        await core.create(CPU, None)
        assert [r.name for r in core.rows()] == ["CPU"]

        assert await core.sign_in(follow, login_hint="free@example.com") == "free@example.com"
        assert core.email == "free@example.com"
        await until(lambda: core.fleet.state.eligibility is not None)  # free's, read once
        assert [r.name for r in core.rows()] == ["CPU"], "ada's runtime is still served"
        assert [a.email for a in core.other_accounts()] == ["ada@example.com"]
        assert core.fleet.state.eligibility is not None
        assert core.fleet.state.eligibility.eligible[GPU] == ("T4",)
        assert core.fleet.state.eligibility.tier is None, "ada's plan was carried over"

        core.switch("ada@example.com")
        assert [r.name for r in core.rows()] == ["CPU"]
        await until(lambda: core.fleet.state.eligibility is not None)
        assert core.fleet.state.eligibility.tier == "pro", "ada's plan, named by her assign"

        await core.sign_out()  # ada goes; free is still signed in and becomes active
        assert core.email == "free@example.com" and core.signed_in
        await core.sign_out()
        assert not core.signed_in and core.tray_state() is TrayState.SIGNED_OUT
        assert changes, "nobody was told"
    finally:
        await core.stop()


async def test_a_waiting_sign_in_can_be_cancelled(emulator: Emulator, tmp_path: Path):
    core = make_core(emulator, tmp_path, access_token=None)
    opened: list[str] = []
    await core.start()
    try:
        waiting = asyncio.create_task(core.sign_in(opened.append))
        await until(lambda: opened and core.signing_in)
        core.cancel_sign_in()
        assert await waiting is None
        assert not core.signing_in and not core.signed_in
    finally:
        await core.stop()


async def test_an_expired_sign_in_needs_attention_once(auto_emulator: Emulator, tmp_path: Path):
    core = make_core(auto_emulator, tmp_path, access_token=None)
    notices: list[Notice] = []
    core.subscribe_notices(notices.append)
    await core.start()
    try:
        await core.sign_in(follow)
        await until(lambda: core.fleet.state.loaded)
        auto_emulator.admin("POST", "tokens/revoke", {"email": "ada@example.com"})
        auto_emulator.admin("POST", "tokens/expire-access", {})
        await until(lambda: core.must_sign_in)
        assert core.tray_state() is TrayState.ATTENTION
        assert "ada@example.com needs to sign in again" in (core.problem() or "")
        # Four poll intervals in which nothing goes to Colab until the person signs in (a
        # signed-in core lists every 2 POLL), and no second notice.
        mark = auto_emulator.last_seq()
        await hold(4 * POLL, lambda: auto_emulator.requests(since=mark, host="colab") == [])
        assert titles(notices, "Sign in to Colab again") == 1

        await core.sign_in(follow, login_hint="ada@example.com")
        await until(lambda: core.fleet.state.loaded and not core.must_sign_in)
        assert core.tray_state() is TrayState.IDLE
    finally:
        await core.stop()
