"""Keep-alive policy against the emulator's real runtimes, with every time shrunk.

The emulator reclaims a runtime that gets no keep-alive ping for --idle-timeout seconds, as
Colab does. The prompt here is a presenter that records what it was asked and answers as the
test says (the real notification and window are tested in tests/e2e and tests/ui). The idle
threshold stays an hour, as by default, while the grace of a runtime nobody uses is seconds:
what is asked about within seconds is asked because nothing showed it is used.

At the end, the warning that the compute units will not last the running runtimes an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
import websockets

from colabtray.auth.identities import ReadyToken
from colabtray.colab.client import ColabClient
from colabtray.colab.models import GPU
from colabtray.core.app import Core
from colabtray.core.display import keeping_line
from colabtray.core.keepalive import Choice, KeepAlive, Verdict, Why
from colabtray.core.naming import RuntimeNames
from colabtray.core.notices import Notice, pings_refused_notice
from colabtray.core.questions import Question, Questions
from colabtray.core.registry import RuntimeRegistry
from colabtray.settings import Settings
from tests.fixtures.bridge import bridge_on
from tests.fixtures.colab import cli_env, run_cli, settings_for
from tests.fixtures.emulator import Emulator
from tests.fixtures.jupyter_client import split_url
from tests.fixtures.kernel import execute, execute_request, start_kernel
from tests.fixtures.waiting import hold, until

IDLE_TIMEOUT = 3.0
GRACE = 2.0
HOUR = 3600.0


def short_settings(emulator: Emulator, tmp_path: Path) -> Settings:
    """Ticks and answers in seconds; the idle threshold an hour, the grace seconds."""
    return settings_for(
        emulator,
        tmp_path,
        keepalive_interval=0.5,
        idle_threshold=HOUR,
        idle_grace=GRACE,
        idle_extension=30.0,
        idle_prompt_timeout=1.5,
    )


class RecordingAsker:
    """Shows nothing; remembers questions and withdrawals (by endpoint: keep-alive only asks
    the idle question); answers when told to."""

    def __init__(self) -> None:
        self.shown: list[Question] = []
        self.withdrawn: list[str] = []
        self.answers: dict[str, Callable[[bool], None]] = {}

    def ask(self, question: Question, answer: Callable[[bool], None]) -> None:
        self.shown.append(question)
        self.answers[endpoint_of(question)] = answer

    def withdraw(self, key: str) -> None:
        self.withdrawn.append(key.removeprefix("idle:"))


def endpoint_of(question: Question) -> str:
    assert question.key.startswith("idle:"), question.key
    return question.key.removeprefix("idle:")


def asking(asker: RecordingAsker) -> Questions:
    """What keep-alive asks through (the core's, in the app)."""
    return Questions(asker)


class Rig:
    def __init__(
        self,
        emulator: Emulator,
        registry: RuntimeRegistry,
        keepalive: KeepAlive,
        presenter: RecordingAsker,
    ) -> None:
        self.emulator = emulator
        self.registry = registry
        self.keepalive = keepalive
        self.asker = presenter

    def live(self) -> set[str]:
        return {r["endpoint"] for r in self.emulator.state()["runtimes"]}

    async def new_runtime(self) -> str:
        _, runtime = await self.registry.create("CPU")
        return runtime.endpoint


@contextlib.asynccontextmanager
async def running_rig(emulator: Emulator, settings: Settings, names: Path) -> AsyncIterator[Rig]:
    presenter = RecordingAsker()
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        registry = RuntimeRegistry(client, RuntimeNames(names))
        keepalive = KeepAlive(settings, registry, asking(presenter))
        task = asyncio.create_task(keepalive.run())
        try:
            yield Rig(emulator, registry, keepalive, presenter)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def rig(emulator_factory, tmp_path: Path) -> AsyncIterator[Rig]:
    emulator = emulator_factory("--idle-timeout", str(IDLE_TIMEOUT))
    async with running_rig(
        emulator, short_settings(emulator, tmp_path), tmp_path / "names.json"
    ) as made:
        yield made


@pytest.fixture
async def pinged_rig(emulator_factory, tmp_path: Path) -> AsyncIterator[Rig]:
    """A rig whose new runtimes are pinged every tick for minutes (a long grace) and that
    Colab would reclaim only after minutes without a ping that got through."""
    emulator = emulator_factory("--idle-timeout", "600")
    settings = settings_for(emulator, tmp_path, keepalive_interval=0.3, idle_grace=600.0)
    async with running_rig(emulator, settings, tmp_path / "names.json") as made:
        yield made


async def start_long_cell(rig: Rig, endpoint: str, seconds: int) -> None:
    runtime = await rig.registry.fresh_runtime(endpoint)
    headers = {"X-Colab-Runtime-Proxy-Token": runtime.proxy.token.get_secret_value()}
    kernel = await start_kernel(runtime.proxy.url, headers)
    url = runtime.proxy.url.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps(execute_request(f"import time; time.sleep({seconds})", "s")))
        while True:  # wait until the kernel says it is busy with our cell
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "busy":
                return


async def test_a_busy_runtime_outlives_several_idle_timeouts(rig: Rig):
    endpoint = await rig.new_runtime()
    await start_long_cell(rig, endpoint, 60)
    await hold(4 * IDLE_TIMEOUT, lambda: endpoint in rig.live())
    assert rig.asker.shown == []


async def test_a_recently_used_runtime_is_kept_without_asking(rig: Rig):
    endpoint = await rig.new_runtime()
    runtime = await rig.registry.fresh_runtime(endpoint)
    headers = {"X-Colab-Runtime-Proxy-Token": runtime.proxy.token.get_secret_value()}
    kernel = await start_kernel(runtime.proxy.url, headers)

    async def use_it() -> None:  # a cell every second: last_activity stays recent
        while True:
            await execute(runtime.proxy.url, "1+1", headers=headers, kernel_id=kernel)
            await asyncio.sleep(1)

    user = asyncio.create_task(use_it())
    try:
        await hold(3 * IDLE_TIMEOUT, lambda: endpoint in rig.live())
    finally:
        user.cancel()
    assert rig.asker.shown == []


async def test_an_idle_runtime_is_asked_about_once_and_keep_extends(rig: Rig):
    endpoint = await rig.new_runtime()
    await until(lambda: rig.asker.shown, 10)
    (question,) = rig.asker.shown
    assert endpoint_of(question) == endpoint and "'CPU'" in question.title
    assert question.title == "'CPU' is idle and will be disconnected"
    assert rig.keepalive.pending() == {endpoint}
    rig.asker.answers[endpoint](True)  # Cancel: keep it
    await until(lambda: not rig.keepalive.pending(), 5)
    await hold(3 * IDLE_TIMEOUT, lambda: endpoint in rig.live())
    assert len(rig.asker.shown) == 1, "asked again during the extension"


async def test_disconnect_now_unassigns_at_once(rig: Rig):
    endpoint = await rig.new_runtime()
    await until(lambda: rig.asker.shown, 10)
    rig.keepalive.answer(endpoint, Choice.DISCONNECT)  # as the tray menu does
    await until(lambda: endpoint not in rig.live(), 5)
    await until(lambda: endpoint not in rig.registry.state.runtimes, 5)


async def test_no_answer_lets_colab_reclaim_it(rig: Rig):
    removed: list[object] = []
    rig.registry.subscribe(
        lambda e: removed.append(e) if type(e).__name__ == "RuntimeRemoved" else None
    )
    endpoint = await rig.new_runtime()
    await until(lambda: rig.asker.shown, 10)
    await until(lambda: endpoint not in rig.live(), 4 * IDLE_TIMEOUT)
    await until(lambda: endpoint not in rig.registry.state.runtimes, 5)
    assert len(rig.asker.shown) == 1, "asked again after no answer"
    assert [e.by_user for e in removed] == [False]


async def test_two_idle_runtimes_get_one_prompt_each(rig: Rig):
    first, second = await rig.new_runtime(), await rig.new_runtime()
    await until(lambda: len(rig.asker.shown) == 2, 10)
    await hold(1.0, lambda: len(rig.asker.shown) == 2)
    assert {endpoint_of(q) for q in rig.asker.shown} == {first, second}
    assert {q.title.split("'")[1] for q in rig.asker.shown} == {"CPU", "CPU (1)"}


async def test_a_prompt_is_withdrawn_when_its_runtime_gets_busy(rig: Rig):
    endpoint = await rig.new_runtime()
    await until(lambda: rig.asker.shown, 10)
    await start_long_cell(rig, endpoint, 30)
    await until(lambda: endpoint in rig.asker.withdrawn, 5)
    assert not rig.keepalive.pending()
    await hold(2 * IDLE_TIMEOUT, lambda: endpoint in rig.live())


async def test_an_outage_during_a_tick_asks_nothing(rig: Rig):
    await rig.new_runtime()
    rig.emulator.admin("POST", "faults", {"fault_rate": 1.0})
    await hold(4.0, lambda: rig.asker.shown == [])
    assert not rig.registry.state.reachable
    rig.emulator.admin("POST", "faults", {"fault_rate": 0.0})
    await until(lambda: rig.registry.state.reachable, 10)


async def test_the_network_coming_back_runs_a_tick_at_once(emulator_factory, tmp_path: Path):
    emulator = emulator_factory("--idle-timeout", "60")
    settings = settings_for(
        emulator, tmp_path, keepalive_interval=600.0, idle_grace=1.0, retry_attempts=1
    )
    presenter = RecordingAsker()
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        registry = RuntimeRegistry(client, RuntimeNames(tmp_path / "names.json"), poll_interval=0.3)
        keepalive = KeepAlive(settings, registry, asking(presenter))
        await registry.create("CPU")
        tasks = [asyncio.create_task(keepalive.run()), asyncio.create_task(registry.run())]
        try:
            (endpoint,) = registry.state.runtimes
            await until(lambda: keepalive.verdict(endpoint) is Verdict.ACTIVE, 5)
            emulator.admin("POST", "faults", {"fault_rate": 1.0})
            await until(lambda: not registry.state.reachable, 10)
            await asyncio.sleep(1.5)  # past its grace by now; the next tick is 10 min off
            emulator.admin("POST", "faults", {"fault_rate": 0.0})
            await until(lambda: presenter.shown, 10)  # asked right after the backend came back
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("turns", range(4))
async def test_quitting_right_after_a_wake_up_stops_keep_alive(
    emulator_factory, tmp_path: Path, turns: int
):
    """The network comes back (a wake-up) just as the app quits: keep-alive still stops.
    (On Python 3.11 a wait with ``asyncio.wait_for`` lost that cancel and ran on.)"""
    emulator = emulator_factory()
    settings = settings_for(emulator, tmp_path, keepalive_interval=600.0)
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        registry = RuntimeRegistry(client, RuntimeNames(tmp_path / "names.json"))
        keepalive = KeepAlive(settings, registry, asking(RecordingAsker()))
        ticked = asyncio.Event()
        keepalive.subscribe(ticked.set)  # told at the end of a tick: it waits next
        task = asyncio.create_task(keepalive.run())
        await until(ticked.is_set, 30)
        keepalive.poke()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        if not done:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert done, "keep-alive went on after it was cancelled"


# ---- evidence of use: what keeps a runtime without asking ----------------------------------


def live(emulator: Emulator) -> set[str]:
    return {r["endpoint"] for r in emulator.state()["runtimes"]}


def pinged(emulator: Emulator, endpoint: str) -> bool:
    return any(r["path"] == f"/tun/m/{endpoint}/keep-alive/" for r in emulator.requests())


async def test_a_runtime_nobody_uses_is_asked_about_after_the_grace_not_the_hour(rig: Rig):
    endpoint = await rig.new_runtime()
    await hold(GRACE - 0.5, lambda: rig.asker.shown == [])
    assert pinged(rig.emulator, endpoint), "not kept alive through its grace"
    await until(lambda: rig.asker.shown, GRACE + 5)  # the idle threshold is an hour
    (question,) = rig.asker.shown
    assert endpoint_of(question) == endpoint
    assert rig.keepalive.pending() == {endpoint}


async def test_editor_traffic_keeps_a_runtime_and_the_untouched_one_is_asked(
    emulator_factory, tmp_path: Path
):
    emulator = emulator_factory("--idle-timeout", str(IDLE_TIMEOUT))
    async with bridge_on(emulator, tmp_path) as bridged:
        settings = short_settings(emulator, tmp_path).model_copy(update={"idle_grace": 5.0})
        presenter = RecordingAsker()
        keepalive = KeepAlive(
            settings, bridged.registry, asking(presenter), activity=[bridged.bridge.last_activity]
        )
        tasks = [asyncio.create_task(keepalive.run())]
        try:
            edited, url = await bridged.runtime()
            tasks.append(asyncio.create_task(an_editor_polling(url)))
            untouched, _ = await bridged.runtime()
            await until(lambda: presenter.shown, 5.0 + 10)
            await hold(2 * IDLE_TIMEOUT, lambda: edited in live(emulator))
            assert [endpoint_of(q) for q in presenter.shown] == [untouched]
            assert keepalive.verdict(edited) is Verdict.ACTIVE
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def an_editor_polling(url: str) -> None:
    """What JupyterLab does while open on a runtime: list its kernels every second."""
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=30) as http:
        while True:
            (await http.get("/api/kernels")).raise_for_status()
            await asyncio.sleep(1)


async def test_a_source_the_core_adds_later_counts_and_a_broken_one_harms_nothing(rig: Rig):
    """How a terminal or SSH session will plug in: a source that says "now" while open."""
    open_sessions: set[str] = set()

    def broken(endpoint: str) -> datetime | None:
        raise RuntimeError(f"this source cannot read {endpoint}")

    rig.keepalive.add_activity_source(broken)
    rig.keepalive.add_activity_source(
        lambda endpoint: datetime.now(UTC) if endpoint in open_sessions else None
    )
    used = await rig.new_runtime()
    open_sessions.add(used)
    unused = await rig.new_runtime()
    await until(lambda: rig.asker.shown, GRACE + 10)
    await hold(2 * IDLE_TIMEOUT, lambda: used in rig.live())
    assert [endpoint_of(q) for q in rig.asker.shown] == [unused]


# ---- pings Colab refuses ---------------------------------------------------------------------


def keepalive_pings(emulator: Emulator, since: int) -> int:
    log = emulator.requests(since=since, host="colab")
    return sum(1 for e in log if e["path"].endswith("/keep-alive/"))


@pytest.mark.parametrize(
    ("status", "title", "what_to_do"),
    [
        (401, "CPU is not being kept alive", "Sign in again"),
        (403, "CPU is not being kept alive", "lacks a scope"),
        (404, "CPU is gone from Colab", "make a new runtime"),
    ],
)
async def test_refused_pings_are_told_once_naming_the_runtime_and_what_to_do(
    pinged_rig: Rig, status: int, title: str, what_to_do: str
):
    """Issue 23 (5): Colab refusing keep-alive means it reclaims the runtime within minutes;
    two refusals in a row make one notice (not one per ping), and a ping that gets through
    starts the count again."""
    notices: list[Notice] = []
    pinged_rig.keepalive.subscribe_refusals(lambda r: notices.append(pings_refused_notice(r)))
    pinged_rig.emulator.admin("POST", "faults", {"refuse_keepalive": status})
    endpoint = await pinged_rig.new_runtime()  # within its grace: pinged every tick
    await until(lambda: notices, 10)
    (notice,) = notices
    assert notice.title == title
    assert "CPU" in notice.body and what_to_do in notice.body, notice.body
    if status != 404:
        assert f"HTTP {status}" in notice.body
    mark = pinged_rig.emulator.last_seq()
    await until(lambda: keepalive_pings(pinged_rig.emulator, mark) >= 3, 10)
    assert len(notices) == 1, "told again while the refusals went on"

    pinged_rig.emulator.admin("POST", "faults", {"refuse_keepalive": None})
    mark = pinged_rig.emulator.last_seq()
    await until(lambda: keepalive_pings(pinged_rig.emulator, mark) >= 2, 10)  # one got through
    pinged_rig.emulator.admin("POST", "faults", {"refuse_keepalive": status})
    await until(lambda: len(notices) == 2, 10)  # a new run of refusals is told again
    assert endpoint in pinged_rig.live(), "a refused ping is not a reason to give the runtime back"


def test_a_first_ping_refused_for_scope_gives_the_new_runtime_back(
    emulator: Emulator, tmp_path: Path
):
    """As Google's CLI does: a new runtime whose first ping Colab refuses for a missing scope
    would be reclaimed within minutes while it spends units, so it is given back at once and
    the person is told why; any other refusal is left to keep-alive."""
    env = cli_env(emulator, tmp_path)
    emulator.admin("POST", "faults", {"refuse_keepalive": 403})
    made = run_cli(env, "new", "--cpu")
    assert made.returncode == 1, made.stdout
    assert made.stderr.strip() == (
        "colabtray: Colab refused to keep CPU alive (HTTP 403): this sign-in lacks a scope "
        "Colab wants, so the runtime would be reclaimed within minutes; colabtray gave it "
        "back. Sign in again with colabtray signin, then make a new runtime."
    )
    assert emulator.state()["runtimes"] == []

    emulator.admin("POST", "faults", {"refuse_keepalive": 404})
    kept = run_cli(env, "new", "--cpu")
    assert kept.returncode == 0, kept.stderr
    assert len(emulator.state()["runtimes"]) == 1


# ---- compute units that will not last the hour ---------------------------------------------

POLL = 0.3
LOW = "Compute units running low"


async def test_low_compute_units_are_told_once_per_episode_and_the_line_warns(
    emulator: Emulator, tmp_path: Path
):
    settings = settings_for(
        emulator, tmp_path, poll_interval=POLL, retry_attempts=1, keepalive_interval=600.0
    )
    core = Core(settings)
    notices: list[Notice] = []
    core.subscribe_notices(notices.append)
    (account,) = [a["email"] for a in emulator.state()["accounts"] if a["default"]]

    def told() -> int:
        return sum(1 for n in notices if n.title == LOW)

    def balance(units: float) -> None:
        emulator.admin("POST", f"accounts/{account}", {"paid_balance": units})

    def warns() -> bool:
        return (core.compute_units_line() or "").endswith("— running low")

    await core.start()
    try:
        await until(lambda: core.fleet.state.loaded, 10)
        await core.create(GPU, "T4")  # burns 1.96 an hour
        await until(lambda: "1.96/h" in (core.compute_units_line() or ""), 10)
        assert told() == 0 and not warns()

        balance(0.8)
        await until(lambda: told() == 1, 10)
        line = core.compute_units_line() or ""
        assert line.startswith("Compute units: 0.8") and "1.96/h" in line and warns(), line
        (notice,) = [n for n in notices if n.title == LOW]
        assert "1.96 an hour" in notice.body
        await hold(10 * POLL, lambda: told() == 1)  # still low at every poll: no new notice

        balance(50.0)
        await until(lambda: not warns(), 10)
        assert told() == 1
        balance(0.5)
        await until(lambda: told() == 2, 10)  # a new fall, a new episode
        assert warns()
    finally:
        await core.stop()


async def test_each_runtime_says_why_it_is_kept_or_that_it_is_asked(
    emulator_factory, tmp_path: Path
):
    """Issue 23 (8): the words come from what keep-alive decided, reason by reason."""
    emulator = emulator_factory("--idle-timeout", str(IDLE_TIMEOUT))
    async with bridge_on(emulator, tmp_path) as bridged:
        settings = short_settings(emulator, tmp_path).model_copy(update={"idle_grace": 5.0})
        presenter = RecordingAsker()
        keepalive = KeepAlive(
            settings,
            bridged.registry,
            asking(presenter),
            activity=[(Why.EDITOR, bridged.bridge.last_activity)],
        )

        def says(endpoint: str) -> str:
            pending = endpoint in keepalive.pending()
            return keeping_line(keepalive.keeping(endpoint), pending=pending)

        tasks = [asyncio.create_task(keepalive.run())]
        try:
            edited, url = await bridged.runtime()
            untouched, _ = await bridged.runtime()
            await until(lambda: keepalive.keeping(untouched), 10)
            assert says(untouched).startswith("Kept alive: it was just made; asks after ")
            tasks.append(asyncio.create_task(an_editor_polling(url)))
            await until(lambda: presenter.shown, 5.0 + 10)
            assert says(untouched) == "Not kept alive: idle; asking now whether to keep it running"
            await until(lambda: "editor traffic" in says(edited), 10)
            assert says(edited).startswith("Kept alive: editor traffic; asks after ")
            keepalive.answer(untouched, Choice.KEEP)
            await until(lambda: "you chose Keep" in says(untouched), 10)
            assert keepalive.keeping(untouched).pinged
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# ---- a flaky Colab: pings tried again, tokens renewed together (issue 28, 2) ---------------


def colab_calls(emulator: Emulator, since: int, suffix: str) -> list[dict]:
    return [e for e in emulator.requests(since=since, host="colab") if e["path"].endswith(suffix)]


async def test_a_failed_ping_is_tried_again_within_the_tick_and_a_refused_one_is_not(
    emulator_factory, tmp_path: Path
):
    """At a 30 % fault rate every runtime's ping gets through in every tick (a single try per
    tick leaves some unpinged: 0.7 ** 21 that none is); a refused ping is sent once."""
    emulator = emulator_factory("--idle-timeout", "600")
    settings = settings_for(emulator, tmp_path, idle_grace=600.0, retry_attempts=10)
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        registry = RuntimeRegistry(client, RuntimeNames(tmp_path / "names.json"))
        keepalive = KeepAlive(settings, registry, asking(RecordingAsker()))
        endpoints = {(await registry.create("CPU"))[1].endpoint for _ in range(3)}
        paths = {f"/tun/m/{endpoint}/keep-alive/" for endpoint in endpoints}
        emulator.admin("POST", "faults", {"fault_rate": 0.3})
        failed = 0
        for _ in range(7):
            mark = emulator.last_seq()
            await keepalive.tick()
            pings = colab_calls(emulator, mark, "/keep-alive/")
            through = {e["path"] for e in pings if e["status"] == 200}
            assert through == paths, [(e["path"], e["status"]) for e in pings]
            failed += sum(1 for e in pings if e["status"] >= 500)
        assert failed > 0, "no ping met a fault: nothing was tried again"

        emulator.admin("POST", "faults", {"fault_rate": 0.0, "refuse_keepalive": 403})
        mark = emulator.last_seq()
        await keepalive.tick()
        assert sorted(e["path"] for e in colab_calls(emulator, mark, "/keep-alive/")) == sorted(
            paths
        )


LISTING = "/tun/m/assignments"


async def test_short_proxy_tokens_of_many_runtimes_are_renewed_by_one_listing(
    emulator_factory, tmp_path: Path
):
    """Every /tun/m listing mints a token for every runtime: renewals due at once share one
    listing, and it renews every runtime, so a keep-alive tick lists twice (its own look and
    one renewal), not once per runtime."""
    emulator = emulator_factory("--proxy-token-ttl", "30", "--idle-timeout", "600")
    settings = settings_for(emulator, tmp_path, idle_grace=600.0)
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        registry = RuntimeRegistry(client, RuntimeNames(tmp_path / "names.json"))
        keepalive = KeepAlive(settings, registry, asking(RecordingAsker()))
        endpoints = [(await registry.create("CPU"))[1].endpoint for _ in range(4)]

        mark = emulator.last_seq()
        renewed = await asyncio.gather(*(registry.fresh_runtime(ep) for ep in endpoints))
        assert len(colab_calls(emulator, mark, LISTING)) == 1
        assert [rt.endpoint for rt in renewed] == endpoints

        mark = emulator.last_seq()
        await keepalive.tick()
        assert len(colab_calls(emulator, mark, LISTING)) == 2
        assert len(colab_calls(emulator, mark, "/keep-alive/")) == len(endpoints)


async def test_bridged_runtimes_with_short_tokens_share_their_renewals(
    emulator_factory, tmp_path: Path
):
    """Four bridged runtimes whose 8 s tokens the bridge renews 2 s before expiry: about one
    listing per token life for all of them, not one per runtime."""
    emulator = emulator_factory("--proxy-token-ttl", "8", "--idle-timeout", "600")
    async with bridge_on(emulator, tmp_path) as bridged:
        urls = [(await bridged.runtime())[1] for _ in range(4)]
        for url in urls:  # an editor on each: the bridge serves them and renews their tokens
            base, token = split_url(url)
            async with httpx2.AsyncClient(base_url=base, params={"token": token}) as http:
                (await http.get("/api/kernels")).raise_for_status()
        mark = emulator.last_seq()
        await asyncio.sleep(24)  # three token lives: what is counted is the renewals in it
        listings = len(colab_calls(emulator, mark, LISTING))
        assert 2 <= listings <= 5, listings
