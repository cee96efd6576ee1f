"""colabtray on Colab's public API (v1beta) against the emulator, and ``auto`` choosing it only
where Google lets the OAuth client in (issue 24). Runtimes are real Jupyter servers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from colabtray.auth.identities import ReadyToken
from colabtray.colab import errors
from colabtray.colab.client import ColabClient
from colabtray.colab.models import CPU, GPU, TPU
from colabtray.settings import load_settings
from tests.fixtures.colab import (
    cli_env,
    content_dir,
    headless_app,
    headless_env,  # noqa: F401 - a fixture
    run_cli,
    settings_for,
)
from tests.fixtures.emulator import Emulator, start_emulator
from tests.fixtures.waiting import wait_for

ADA = "ada@example.com"


@pytest.fixture(scope="module")
def allowed() -> Iterator[Emulator]:
    with start_emulator("--public-api", "allowed", "--idle-timeout", "600") as emu:
        yield emu


def client_for(emu: Emulator, tmp_path: Path, **overrides: object) -> ColabClient:
    return ColabClient(settings_for(emu, tmp_path, **overrides), ReadyToken(emu.access_token))


def tun_calls(emu: Emulator, since: int, path: str) -> list[str]:
    return [r["path"] for r in emu.requests(since, host="colab") if r["path"].startswith(path)]


async def test_runtimes_live_and_go_through_the_public_api(
    allowed: Emulator, tmp_path: Path
) -> None:
    mark = allowed.last_seq()
    async with client_for(allowed, tmp_path, runtime_api="public") as client:
        made = await client.assign(GPU, "T4")
        assert (made.variant, made.accelerator) == (GPU, "T4")
        assert made.public_name and made.public_name.startswith("runtimes/")
        listed = await client.list_assignments()
        assert [r.endpoint for r in listed] == [made.endpoint]
        fresh = await client.refresh_proxy_token(made.endpoint)
        async with httpx2.AsyncClient() as http:
            kernels = await http.get(
                fresh.url + "/api/kernels",
                headers={"X-Colab-Runtime-Proxy-Token": fresh.token.get_secret_value()},
            )
        assert kernels.status_code == 200
        await client.keep_alive(made.endpoint)  # keep-alive stays on /tun/m, by endpoint
        eligibility = await client.eligibility()
        assert eligibility.tier == "pro" and eligibility.may_have(GPU, "A100")
        assert not eligibility.may_have(GPU, "H100")
        await client.unassign(made.endpoint)
        assert await client.list_assignments() == []
        with pytest.raises(errors.RuntimeGoneError):
            await client.refresh_proxy_token(made.endpoint)
    assert tun_calls(allowed, mark, "/tun/m/assign") == []
    assert tun_calls(allowed, mark, "/tun/m/unassign") == []
    assert tun_calls(allowed, mark, f"/tun/m/{made.endpoint}/keep-alive/") != []


async def test_the_operations_reasons_are_colabtrays_sentences(
    allowed: Emulator, tmp_path: Path
) -> None:
    async with client_for(allowed, tmp_path, runtime_api="public") as client:
        allowed.admin("POST", f"accounts/{ADA}", {"max_runtimes": 0})
        try:
            with pytest.raises(errors.TooManyRuntimesError):
                await client.assign(CPU)
        finally:
            allowed.admin("POST", f"accounts/{ADA}", {"max_runtimes": None})
        allowed.admin("POST", "unavailable", {"accelerators": ["V5E1"]})
        try:
            with pytest.raises(errors.AcceleratorUnavailableError) as unavailable:
                await client.assign(TPU, "V5E1")
            assert unavailable.value.accelerator == "V5E1"
        finally:
            allowed.admin("POST", "unavailable", {"accelerators": []})
        with pytest.raises(errors.OperationFailedError) as refused:
            await client.assign(GPU, "H100")  # Pro+ only: no reason of Google's to map
        assert refused.value.code == 7 and "operations/" in refused.value.message
        allowed.admin("POST", f"accounts/{ADA}", {"denylisted": True})
        try:
            with pytest.raises(errors.DenylistedError):
                await client.assign(CPU)
        finally:
            allowed.admin("POST", f"accounts/{ADA}", {"denylisted": False})


async def test_auto_uses_the_public_api_where_google_lets_the_client_in(
    allowed: Emulator, tmp_path: Path
) -> None:
    async with client_for(allowed, tmp_path) as client:
        choice = await client.api_choice()
        assert choice.api == "public" and "answers" in choice.why


async def test_auto_keeps_to_tun_where_the_api_refuses_and_asks_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    mark = emulator.last_seq()
    async with client_for(emulator, tmp_path) as client:
        made = await client.assign(CPU)
        assert [r.endpoint for r in await client.list_assignments()] == [made.endpoint]
        choice = await client.api_choice()
        assert choice.api == "tun" and "allowlist" in choice.why
        await client.unassign(made.endpoint)
    public = emulator.requests(mark, host="public")
    assert [(r["path"], r["status"]) for r in public] == [("/public/v1beta/subscription", 403)]
    assert tun_calls(emulator, mark, "/tun/m/assign") != []


def test_the_app_the_cli_the_bridge_and_the_tools_on_the_public_api(
    allowed: Emulator, tmp_path: Path, headless_env: dict[str, str]  # noqa: F811
) -> None:
    env = {
        **headless_env,
        **{k: v for k, v in allowed.env.items() if k != "COLABTRAY_EMULATOR_URL"},
        "COLABTRAY_RUNTIME_API": "public",
    }
    mark = allowed.last_seq()
    with headless_app(env):
        wait_for(lambda: run_cli(env, "status").returncode == 0, 60, interval=0.5)
        made = run_cli(env, "new", "--cpu", "--json")
        assert made.returncode == 0, made.stderr
        runtime = json.loads(made.stdout)
        name = runtime["name"]
        assert runtime["url"], "made by the running app, which serves it to editors at once"
        status = run_cli(env, "status", "--json")
        assert name in status.stdout, status.stderr
        base, _, query = runtime["url"].partition("?")
        kernels = httpx2.get(base.rstrip("/") + "/api/kernels?" + query)
        assert kernels.status_code == 200  # the bridge reached the runtime with its token
        source = tmp_path / "data.csv"
        source.write_text("a,b\n1,2\n")
        copied = run_cli(env, "cp", str(source), f"{name}:")
        assert copied.returncode == 0, copied.stderr
        endpoint = runtime["endpoint"]
        assert (content_dir(allowed, endpoint) / "data.csv").read_text() == "a,b\n1,2\n"
        shell = subprocess.run(
            [sys.executable, "-m", "colabtray", "shell", name],
            input="echo lines=$(wc -l < data.csv)\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert shell.returncode == 0 and "lines=2" in shell.stdout, shell.stderr
        removed = run_cli(env, "remove", name)
        assert removed.returncode == 0, removed.stderr
        wait_for(lambda: not allowed.state()["runtimes"], 30)
    assert tun_calls(allowed, mark, "/tun/m/assign") == []
    assert tun_calls(allowed, mark, "/tun/m/unassign") == []


def _doctor_says(emu: Emulator, tmp_path: Path) -> dict[str, object]:
    result = run_cli(cli_env(emu, tmp_path), "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    return checks["runtime API"]  # type: ignore[no-any-return]


def test_doctor_says_which_api_serves_runtimes_and_why(
    emulator: Emulator, allowed: Emulator, tmp_path: Path
) -> None:
    refused = _doctor_says(emulator, tmp_path / "refused")
    assert refused["details"] == {
        "api": "tun",
        "why": "Colab's public API refused this sign-in (HTTP 403): this OAuth client is not "
        "on Google's allowlist for it.",
    }
    assert str(refused["sentence"]).startswith("/tun/m: Colab's public API refused")
    assert "set runtime_api to public" in str(refused["sentence"])
    in_use = _doctor_says(allowed, tmp_path / "allowed")
    assert in_use["ok"] is True and in_use["details"]["api"] == "public"  # type: ignore[index]
    assert str(in_use["sentence"]).startswith("Colab's public API (v1beta): ")


def test_sign_in_asks_for_the_colaboratory_scope_only_for_the_public_api(tmp_path: Path) -> None:
    scope = "https://www.googleapis.com/auth/colaboratory"
    assert scope in load_settings(runtime_api="public", config_dir=tmp_path).oauth_scopes
    for api in ("auto", "tun"):
        assert scope not in load_settings(runtime_api=api, config_dir=tmp_path).oauth_scopes
