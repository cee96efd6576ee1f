"""Every signed-in account served at once, against the emulator with two accounts signed in
(its consent page signs in the ``login_hint`` account): both accounts' runtimes listed,
bridged and kept alive together; a switch changes only which account ``new`` uses; signing
one out ends its runtimes' service with a true sentence and leaves the other's untouched.

The keyring is the system one under scripts/test.sh (gnome-keyring on the test's bus); the
"browser" follows the emulator's --auto-approve redirect.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from colabtray.bridge import bridge_registry
from colabtray.colab import errors
from colabtray.colab.models import CPU, Runtime
from colabtray.core.app import Core
from colabtray.core.commands import Commands
from tests.fixtures.colab import (
    headless_app,
    headless_env,  # noqa: F401 - a fixture
    run_cli,
    settings_for,
)
from tests.fixtures.emulator import Emulator
from tests.fixtures.gcloud import Gcloud
from tests.fixtures.jupyter_client import split_url
from tests.fixtures.waiting import until, wait_for

ADA, FREE = "ada@example.com", "free@example.com"


def follow(url: str) -> None:
    """The browser, once the user allowed (the emulator approves at once)."""
    with httpx2.Client(follow_redirects=True, timeout=30) as http:
        http.get(url)


@pytest.fixture
def auto_emulator(emulator_factory) -> Emulator:
    return emulator_factory("--auto-approve")


@pytest.fixture
async def core(auto_emulator: Emulator, tmp_path: Path) -> AsyncIterator[Core]:
    """A started core with its editor bridge, nobody signed in yet."""
    settings = settings_for(
        auto_emulator,
        tmp_path,
        access_token=None,
        poll_interval=0.3,
        retry_attempts=1,
        keepalive_interval=600.0,  # ticks are driven by the tests
    )
    made = Core(settings)
    made.attach_bridge(
        bridge_registry(settings, made.fleet, on_change=made.bridge_changed, asks=made)
    )
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


async def kernels_status(url: str) -> tuple[int, str]:
    """What an editor gets for ``GET /api/kernels`` at a runtime's connection URL."""
    base, token = split_url(url)
    async with httpx2.AsyncClient(base_url=base, params={"token": token}, timeout=30) as http:
        response = await http.get("/api/kernels")
        return response.status_code, response.text


async def connection_url(core: Core, endpoint: str) -> str:
    await until(lambda: core.connection_url(endpoint) is not None, 15)
    url = core.connection_url(endpoint)
    assert url is not None
    return url


async def both_signed_in(core: Core, free_runtimes: int = 1) -> tuple[Runtime, list[Runtime]]:
    """ada signed in with a CPU runtime, then free (active from then on) with its own."""
    assert await core.sign_in(follow) == ADA
    _, ada_runtime = await core.create(CPU, None)
    assert await core.sign_in(follow, login_hint=FREE) == FREE
    return ada_runtime, [(await core.create(CPU, None))[1] for _ in range(free_runtimes)]


async def test_two_accounts_are_listed_bridged_and_pinged_together(
    core: Core, auto_emulator: Emulator
) -> None:
    ada_runtime, (free_runtime,) = await both_signed_in(core)
    assert core.email == FREE, "the account signed in last is the one new runtimes go to"
    ada_ep, free_ep = ada_runtime.endpoint, free_runtime.endpoint

    await until(lambda: core.endpoints() == {ada_ep, free_ep}, 15)
    rows = {row.endpoint: row for row in core.rows()}
    assert rows[ada_ep].account == ADA and rows[free_ep].account == FREE
    assert {rows[ada_ep].name, rows[free_ep].name} == {"CPU", "CPU (1)"}, "names not unique"
    assert [row.account for row in core.rows()] == [FREE, ADA], "the active account first"

    for endpoint in (ada_ep, free_ep):  # each through the bridge, with its own account's token
        assert (await kernels_status(await connection_url(core, endpoint)))[0] == 200

    status = await Commands(core).status({})
    assert {(r["endpoint"], r["account"]) for r in status["runtimes"]} == {
        (ada_ep, ADA),
        (free_ep, FREE),
    }
    assert status["account"] == {"email": FREE}

    # Keep-alive pings both, each with its own account (the emulator refuses another's).
    mark = auto_emulator.last_seq()
    for endpoint in (ada_ep, free_ep):
        core.note_activity(endpoint)  # in use: pinged at this tick
    await core.keepalive.tick()
    pings = [
        e
        for e in auto_emulator.requests(since=mark, host="colab")
        if e["path"].endswith("/keep-alive/")
    ]
    assert {(e["path"].split("/")[3], e["status"]) for e in pings} == {
        (ada_ep, 200),
        (free_ep, 200),
    }


async def test_a_switch_changes_only_the_account_new_uses(core: Core) -> None:
    await core.sign_in(follow)
    await core.sign_in(follow, login_hint=FREE)
    _, free_runtime = await core.create(CPU, None)
    url = await connection_url(core, free_runtime.endpoint)

    core.switch(ADA)
    assert core.email == ADA
    assert [a.email for a in core.other_accounts()] == [FREE]
    made = await core.create_checked(CPU, None)
    assert core.account_of(made.runtime.endpoint) == ADA
    assert free_runtime.endpoint in core.endpoints(), "the other account's runtime was dropped"
    assert (await kernels_status(url))[0] == 200, "the switch ended the other's bridge"

    other = await Commands(core).new({"variant": CPU, "account": FREE})
    assert other["account"] == FREE and core.email == ADA, "--account changed the active one"
    with pytest.raises(
        errors.ColabError, match=r"nobody@example\.com is not signed in to colabtray"
    ):
        await core.create_checked(CPU, None, account="nobody@example.com")


async def test_signing_one_account_out_leaves_the_other_untouched(
    core: Core, auto_emulator: Emulator
) -> None:
    ada_runtime, free_runtimes = await both_signed_in(core, free_runtimes=2)
    ada_url = await connection_url(core, ada_runtime.endpoint)
    free_urls = [await connection_url(core, r.endpoint) for r in free_runtimes]

    await core.sign_out_of(FREE)
    assert core.email == ADA and core.signed_in
    assert core.endpoints() == {ada_runtime.endpoint}
    for free_url in free_urls:  # each of them, not only the first one told
        status, text = await kernels_status(free_url)
        assert status == 502 and "account was signed out of colabtray" in text, text
        assert "disconnected" not in text, "a signed-out account's runtime is still assigned"
    assert (await kernels_status(ada_url))[0] == 200
    listed = {r["endpoint"] for r in auto_emulator.state()["runtimes"]}
    assert {r.endpoint for r in free_runtimes} <= listed, "signing out gave a runtime back"

    # ada's account still polls; free's runtimes do not come back.
    mark = auto_emulator.last_seq()
    await until(
        lambda: any(e["path"] == "/tun/m/assignments" for e in auto_emulator.requests(since=mark)),
        15,
    )
    assert core.endpoints() == {ada_runtime.endpoint}

    # The signed-out account's names are given again ("CPU (1)" was one of free's).
    name, _ = await core.create(CPU, None)
    assert name == "CPU (1)", name


async def test_a_refused_sign_in_marks_only_that_accounts_runtimes(
    core: Core, auto_emulator: Emulator
) -> None:
    ada_runtime, (free_runtime,) = await both_signed_in(core)

    auto_emulator.admin("POST", "tokens/revoke", {"email": ADA})
    auto_emulator.admin("POST", "tokens/expire-access", {})

    def rows() -> dict[str, str]:
        return {row.endpoint: row.state for row in core.rows()}

    await until(lambda: rows().get(ada_runtime.endpoint) == "its account must sign in again", 15)
    assert rows()[free_runtime.endpoint] != "its account must sign in again"
    assert core.email == FREE and not core.must_sign_in, "the active account is fine"
    assert any(a.email == ADA and a.problem for a in core.other_accounts())
    free_url = await connection_url(core, free_runtime.endpoint)
    assert (await kernels_status(free_url))[0] == 200


def test_the_cli_and_the_running_app_serve_both_accounts(
    emulator: Emulator,
    tmp_path: Path,
    headless_env: dict[str, str],  # noqa: F811 - a fixture
    gcloud: Gcloud,
) -> None:
    """As a person runs it: the app started with a ready token (ada), gcloud signs free in
    beside it; `new` goes to free, `new --account` to ada, every command takes either's
    runtime, and signing free out leaves ada's served."""
    env = {**headless_env, **gcloud.env}
    said = tmp_path / "headless.out"
    with headless_app(env, said):
        wait_for(lambda: run_cli(env, "status").returncode == 0, 60, interval=0.5)
        gcloud.login(FREE)
        signed = run_cli(env, "signin", "--gcloud")
        assert signed.returncode == 0, signed.stderr
        mine = json.loads(run_cli(env, "new", "--cpu", "--json").stdout)
        made = run_cli(env, "new", "--cpu", "--account", ADA, "--json")
        assert made.returncode == 0, made.stderr
        hers = json.loads(made.stdout)
        assert (mine["account"], hers["account"]) == (FREE, ADA)
        assert {mine["name"], hers["name"]} == {"CPU", "CPU (1)"}

        status = json.loads(run_cli(env, "status", "--json").stdout)
        assert status["account"] == {"email": FREE}
        assert {(r["name"], r["account"]) for r in status["runtimes"]} == {
            (mine["name"], FREE),
            (hers["name"], ADA),
        }
        text = run_cli(env, "status").stdout
        assert f"{FREE}:" in text and f"{ADA}:" in text, text
        for runtime in (mine, hers):
            url = run_cli(env, "url", runtime["name"])
            assert url.returncode == 0 and url.stdout.startswith("http://127.0.0.1:"), url.stderr

        gone = run_cli(env, "signout", "--account", FREE)
        assert gone.returncode == 0, gone.stderr
        status = json.loads(run_cli(env, "status", "--json").stdout)
        assert status["account"] == {"email": ADA}
        assert [r["name"] for r in status["runtimes"]] == [hers["name"]]
        assert run_cli(env, "url", hers["name"]).returncode == 0
        lines = said.read_text()
        assert f"Active account: {FREE} (new runtimes go to it); also served: {ADA}." in lines
        wait_for(
            lambda: (
                f"{mine['name']} is no longer served: its account was signed out."
                in said.read_text()
            ),
            10,
        )
