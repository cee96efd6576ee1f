"""The backend client against the emulator over real HTTP: two readings of the protocol meet.

The emulator shares no code with colabtray.colab; where they agree, both read the documents
the same way. Runtimes here are real Jupyter servers with real kernels.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from colabtray.auth.identities import ReadyToken
from colabtray.colab import errors
from colabtray.colab.client import ColabClient
from colabtray.colab.models import CPU, GPU, HIGH_MEM, STANDARD, TPU
from tests.fixtures.colab import settings_for
from tests.fixtures.emulator import Emulator
from tests.fixtures.kernel import execute


async def test_a_runtime_made_by_the_client_runs_code_only_with_its_token(
    emu_client: ColabClient,
):
    runtime = await emu_client.assign(GPU, "T4")
    assert (runtime.variant, runtime.accelerator) == (GPU, "T4")
    assert runtime.proxy.url.startswith("http://127.0.0.1:")
    token = runtime.proxy.token.get_secret_value()

    out = await execute(
        runtime.proxy.url, "print(6*7)", headers={"X-Colab-Runtime-Proxy-Token": token}
    )
    assert out.strip() == "42"

    async with httpx2.AsyncClient() as http:
        refused = await http.get(runtime.proxy.url + "/api/kernels")
        wrong = await http.get(
            runtime.proxy.url + "/api/kernels", headers={"X-Colab-Runtime-Proxy-Token": "nope"}
        )
    assert refused.status_code == 401 and wrong.status_code == 401

    (kernel,) = await emu_client.kernels(runtime)
    assert kernel.execution_state in ("idle", "busy")
    assert await emu_client.sessions(runtime) == []


async def test_listing_refresh_keepalive_resources_and_unassign(emu_client: ColabClient):
    cpu = await emu_client.assign()
    tpu = await emu_client.assign(TPU, "V5E1", high_mem=True)
    listed = {r.endpoint: r for r in await emu_client.list_assignments()}
    assert set(listed) == {cpu.endpoint, tpu.endpoint}
    assert (listed[cpu.endpoint].variant, listed[cpu.endpoint].shape) == (CPU, STANDARD)
    assert (listed[tpu.endpoint].variant, listed[tpu.endpoint].shape) == (TPU, HIGH_MEM)

    fresh = await emu_client.refresh_proxy_token(cpu.endpoint)
    assert fresh.token.get_secret_value() != cpu.proxy.token.get_secret_value()

    await emu_client.keep_alive(cpu.endpoint)
    resources = await emu_client.resources(tpu)
    assert resources.memory.total_bytes > 0 and resources.disks
    assert resources.disks[0].filesystem.total_bytes > 0
    assert resources.gpus == [] or resources.gpus[0].memory_total_bytes > 0

    await emu_client.unassign(cpu.endpoint)
    assert [r.endpoint for r in await emu_client.list_assignments()] == [tpu.endpoint]
    with pytest.raises(errors.RuntimeGoneError):
        await emu_client.keep_alive(cpu.endpoint)
    with pytest.raises(errors.RuntimeGoneError):
        await emu_client.refresh_proxy_token(cpu.endpoint)
    with pytest.raises(errors.RuntimeGoneError):
        await emu_client.unassign(cpu.endpoint)


async def test_the_gapi_forms_read_the_same(emulator: Emulator, tmp_path: Path):
    settings = settings_for(emulator, tmp_path, listing_api="gapi", account_api="gapi")
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        runtime = await client.assign(GPU, "A100", high_mem=True)
        (listed,) = await client.list_assignments()
        assert (listed.endpoint, listed.accelerator, listed.shape) == (
            runtime.endpoint,
            "A100",
            HIGH_MEM,
        )
        assert listed.notebook_id_hash
        fresh = await client.refresh_proxy_token(runtime.endpoint)
        assert fresh.ttl_seconds > 0
        eligibility = await client.eligibility()
        units = await client.compute_units()
    assert eligibility.tier == "pro" and eligibility.may_have(GPU, "A100")
    assert not eligibility.may_have(GPU, "H100")
    assert units.rate_per_hour and units.rate_per_hour > 0 and units.balance


async def test_account_info_on_the_colab_host(emu_client: ColabClient):
    eligibility = await emu_client.eligibility()
    assert eligibility.may_have(GPU, "T4") and "H100" in eligibility.ineligible[GPU]
    units = await emu_client.compute_units()
    assert units.balance is not None and units.balance > 0


async def test_typed_errors_from_the_backend(emulator: Emulator, emu_client: ColabClient):
    emulator.admin("POST", "unavailable", {"accelerators": ["L4"]})
    with pytest.raises(errors.AcceleratorUnavailableError, match="No L4 is free"):
        await emu_client.assign(GPU, "L4")

    emulator.admin("POST", "accounts/ada@example.com", {"quota_outcome": 2})
    with pytest.raises(errors.QuotaExceededError):
        await emu_client.assign(GPU, "T4")
    emulator.admin("POST", "accounts/ada@example.com", {"quota_outcome": None})

    emulator.admin("POST", "accounts/ada@example.com", {"denylisted": True})
    with pytest.raises(errors.DenylistedError):
        await emu_client.assign()
    emulator.admin("POST", "accounts/ada@example.com", {"denylisted": False})

    emulator.admin("POST", "accounts/ada@example.com", {"max_runtimes": 1})
    await emu_client.assign()
    with pytest.raises(errors.TooManyRuntimesError):
        await emu_client.assign()


async def test_a_revoked_token_means_signed_out(emulator: Emulator, tmp_path: Path):
    settings = settings_for(emulator, tmp_path)
    async with ColabClient(settings, ReadyToken("not-a-token")) as client:
        with pytest.raises(errors.SignedOutError):
            await client.list_assignments()


async def test_an_outage_is_backend_unavailable_and_passes(emulator: Emulator, tmp_path: Path):
    settings = settings_for(emulator, tmp_path, retry_attempts=2)
    async with ColabClient(settings, ReadyToken(emulator.access_token)) as client:
        emulator.admin("POST", "faults", {"fault_rate": 1.0})
        with pytest.raises(errors.BackendUnavailableError):
            await client.list_assignments()
        emulator.admin("POST", "faults", {"fault_rate": 0.0})
        assert await client.list_assignments() == []


async def test_the_wire_carries_what_google_expects(emulator: Emulator, emu_client: ColabClient):
    emulator.admin("DELETE", "requests")
    runtime = await emu_client.assign(GPU, "T4")
    await emu_client.keep_alive(runtime.endpoint)
    await emu_client.list_assignments()
    logged = emulator.admin("GET", "requests")["requests"]
    assert logged, "the emulator logged no request"
    for entry in logged:
        text = repr(entry)
        assert runtime.proxy.token.get_secret_value() not in text
        assert emulator.access_token not in text
    paths = [entry["path"] for entry in logged]
    assert f"/tun/m/{runtime.endpoint}/keep-alive/" in paths


async def test_an_accelerator_colab_refuses_is_said_as_colab_means_it(emu_client: ColabClient):
    """A paying account asking for an accelerator its plan lacks gets HTTP 400 on the assign
    POST (live: an account without A100 quota); that is Colab's "not for you", named so."""
    with pytest.raises(errors.AcceleratorRefusedError) as refused:
        await emu_client.assign(GPU, "H100")
    assert str(refused.value) == (
        "Colab refused an H100 GPU for this account: it may lack the quota or the plan for it."
    )
