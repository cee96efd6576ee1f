"""What every way of getting a runtime shares: whether Colab says no, and starting one.

The colab host's ``/tun/m/assign`` and the public API's CreateRuntime answer the same
questions in different words; the reasons and their order live here once.
"""

from __future__ import annotations

import logging
import secrets
from typing import Literal

from colabtray.emulator.catalog import CPU, TIER_INFO, Accelerator
from colabtray.emulator.runtimes import RuntimeManager, RuntimeStartError
from colabtray.emulator.state import Account, EmulatorState, Runtime

log = logging.getLogger("colabtray.emulator.assigning")

Refusal = Literal[
    "denylisted", "quota_denied", "quota_exceeded", "ineligible", "too_many", "unavailable"
]

_ENDPOINT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class StartFailed(Exception):
    """The runtime's Jupyter did not come up (the emulator's log says why)."""


def refusal(state: EmulatorState, account: Account, accelerator: Accelerator) -> Refusal | None:
    """Why Colab would not give ``account`` this runtime now, in Google's order of checks."""
    state.settle(account.email)
    if account.denylisted:
        return "denylisted"
    if account.quota_outcome == 1:
        return "quota_denied"
    if account.quota_outcome == 2 or (account.paid_units <= 0 and account.free_milli <= 0):
        return "quota_exceeded"
    if accelerator.name != CPU and accelerator.name not in TIER_INFO[account.tier].eligible:
        return "ineligible"
    if len(state.runtimes_of(account.email)) >= state.max_runtimes(account):
        return "too_many"
    if accelerator.name in state.unavailable:
        return "unavailable"
    return None


def machine_shape(account: Account, accelerator: Accelerator, high_mem: bool) -> int:
    """0 standard, 1 high-memory: L4 and TPUs exist only as high-memory machines, and
    High-RAM is honoured only on a plan that has it."""
    if accelerator.high_mem_only:
        return 1
    return 1 if high_mem and TIER_INFO[account.tier].high_mem else 0


def new_endpoint(state: EmulatorState, accelerator: Accelerator) -> str:
    """A fresh endpoint shaped like Colab's (``m-s-…``, ``gpu-t4-s-…``)."""
    while True:
        suffix = "".join(secrets.choice(_ENDPOINT_ALPHABET) for _ in range(12))
        endpoint = f"{accelerator.endpoint_prefix}{suffix}"
        if endpoint not in state.runtimes:
            return endpoint


async def start_runtime(
    state: EmulatorState,
    manager: RuntimeManager,
    account: Account,
    accelerator: Accelerator,
    *,
    high_mem: bool,
    nbh: str,
    version: str | None,
) -> Runtime:
    """Start a runtime for ``account`` and return it ready; it holds its slot while starting."""
    runtime = Runtime(
        endpoint=new_endpoint(state, accelerator),
        email=account.email,
        accelerator=accelerator,
        machine_shape=machine_shape(account, accelerator, high_mem),
        nbh=nbh,
        version_label=version,
        root_dir=state.temp_dir / "runtimes" / secrets.token_hex(6),
    )
    state.runtimes[runtime.endpoint] = runtime
    try:
        await manager.start(runtime)
    except (RuntimeStartError, OSError) as exc:
        state.runtimes.pop(runtime.endpoint, None)
        log.error("assign failed: %s", exc)
        raise StartFailed(str(exc)) from None
    except BaseException:
        state.runtimes.pop(runtime.endpoint, None)
        raise
    state.settle(account.email)  # charge at the old rate up to now
    runtime.ready = True
    runtime.touch()
    return runtime
