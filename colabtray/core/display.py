"""The words and numbers the tray shows, computed from core state (no Qt).

Kept here, not in ``ui/``, so that what a user reads is decided in one place and tested
without a display: the tray, the fallback window and ``--headless`` logs all say the same.
A runtime's label and the tooltip's lines are :func:`colabtray.text.printable`: names and
problems may come from a runtime or from Colab.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from colabtray.colab.kinds import plan_line as plan_line  # its home; imported from here too
from colabtray.colab.models import ComputeUnits, Resources, Runtime
from colabtray.core.keepalive import Keeping, Verdict, Why
from colabtray.core.naming import kind_label, shape_label
from colabtray.text import printable

GIB = 1024**3


class TrayState(StrEnum):
    """What the icon shows; the order of the checks in :func:`tray_state` is the priority."""

    SIGNED_OUT = "signed-out"
    IDLE = "idle"  # signed in, no runtime
    RUNNING = "running"
    ATTENTION = "attention"  # an idle prompt waits, or the account must sign in again
    UNREACHABLE = "unreachable"


def tray_state(
    *, signed_in: bool, must_sign_in: bool, pending: bool, reachable: bool, runtimes: int
) -> TrayState:
    if not signed_in:
        return TrayState.SIGNED_OUT
    if must_sign_in or pending:
        return TrayState.ATTENTION
    if not reachable:
        return TrayState.UNREACHABLE
    return TrayState.RUNNING if runtimes else TrayState.IDLE


@dataclass(frozen=True)
class RuntimeRow:
    """One runtime as the menu lists it."""

    endpoint: str
    name: str
    kind: str  # "T4 GPU", "v5e TPU", "CPU"
    shape: str  # "Standard", "High-RAM"
    state: str  # "in use", "idle", "asks: keep running?"…
    pending: bool  # an idle prompt waits for an answer
    keeping: str = ""  # why keep-alive pings it, or not (keeping_line)
    account: str | None = None  # the email of its account (None: not known yet)

    @property
    def label(self) -> str:
        """Accelerator and variant first, then shape, the name if it says more, and state."""
        parts = [self.kind, self.shape]
        if self.name != self.kind:
            parts.append(f"“{self.name}”")
        return printable(f"{' · '.join(parts)} — {self.state}")


def runtime_state(
    verdict: Verdict, *, pending: bool, reachable: bool, needs_sign_in: bool = False
) -> str:
    if pending:
        return "idle: keep running?"
    if needs_sign_in:
        return "its account must sign in again"
    if not reachable:
        return "status unknown"
    return {Verdict.ACTIVE: "in use", Verdict.IDLE: "idle"}.get(verdict, "running")


def runtime_row(
    name: str,
    runtime: Runtime,
    verdict: Verdict,
    *,
    pending: bool,
    reachable: bool,
    needs_sign_in: bool = False,
    keeping: Keeping | None = None,
    account: str | None = None,
) -> RuntimeRow:
    return RuntimeRow(
        endpoint=runtime.endpoint,
        name=name,
        kind=kind_label(runtime.variant, runtime.accelerator),
        shape=shape_label(runtime.shape),
        state=runtime_state(
            verdict, pending=pending, reachable=reachable, needs_sign_in=needs_sign_in
        ),
        pending=pending,
        keeping=keeping_line(keeping, pending=pending),
        account=account,
    )


_KEPT_FOR = {
    Why.KERNEL: "a kernel ran recently",
    Why.EDITOR: "editor traffic",
    Why.TOOL: "colabtray's shell, ssh or cp",
    Why.USE: "it is in use",
    Why.GRACE: "it was just made",
    Why.KEEP: "you chose Keep",
}
_NOT_KEPT_FOR = {
    Why.IDLE: "nothing uses it",
    Why.LET_GO: "the idle question went unanswered, so Colab will reclaim it unless it is used",
    Why.UNKNOWN: "its kernels could not be read, and it is not pinged on a guess",
}


def keeping_line(keeping: Keeping | None, *, pending: bool) -> str:
    """Why keep-alive pings the runtime now and when the idle question comes, or why not:
    "Kept alive: editor traffic; asks after 14:05 if unused"."""
    if pending:
        return "Not kept alive: idle; asking now whether to keep it running"
    if keeping is None:
        return "Keep-alive: not looked at yet"
    if not keeping.pinged:
        return f"Not kept alive: {_NOT_KEPT_FOR[keeping.why]}"
    if keeping.why is Why.KERNEL and keeping.until is None:
        return "Kept alive: a kernel is busy"
    line = f"Kept alive: {_KEPT_FOR[keeping.why]}"
    if keeping.until is None:
        return line
    return f"{line}; asks after {_clock(keeping.until)} if unused"


def keeping_json(keeping: Keeping | None, *, pending: bool) -> dict[str, object] | None:
    """The same for ``status --json`` (None: keep-alive has not looked at it)."""
    if keeping is None:
        return None
    return {
        "kept": keeping.pinged and not pending,
        "why": "asking" if pending else str(keeping.why),
        "asks_after": keeping.until.isoformat() if keeping.until else None,
        "says": keeping_line(keeping, pending=pending),
    }


def _clock(when: datetime) -> str:
    """The local time of day, "14:05"."""
    return when.astimezone().strftime("%H:%M")


def _gb(count: int) -> str:
    return f"{count / GIB:.2f}"


def resource_lines(resources: Resources) -> list[str]:
    """RAM, GPU RAM and one line per disk, as Colab's own extension words them
    (docs/protocol.md §10)."""
    memory = resources.memory
    lines = [
        f"System RAM: {_gb(memory.total_bytes - memory.free_bytes)} / {_gb(memory.total_bytes)} GB"
    ]
    if resources.gpus:
        used = sum(g.memory_used_bytes for g in resources.gpus)
        total = sum(g.memory_total_bytes for g in resources.gpus)
        lines.append(f"GPU RAM: {_gb(used)} / {_gb(total)} GB")
    for disk in resources.disks:
        fs = disk.filesystem
        label = fs.label.rstrip("/").rsplit("/", 1)[-1]
        where = f" [ {label} ]" if label and label != "kernel" else ""
        lines.append(f"Disk{where}: {_gb(fs.used_bytes)} / {_gb(fs.total_bytes)} GB")
    return lines


def duration(hours: float) -> str:
    """ "about 51 h", "about 1 h 20 min", "about 25 min", "less than a minute"."""
    minutes = int(hours * 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"about {minutes} min"
    if hours >= 10:
        return f"about {hours:.0f} h"
    whole, rest = divmod(minutes, 60)
    return f"about {whole} h {rest} min" if rest else f"about {whole} h"


def running_low(units: ComputeUnits | None) -> bool:
    """Whether what is left would not last the running runtimes an hour (balance < rate/h).

    What is left is the paid balance plus the free allowance Colab reports once the paid units
    are gone: a free account's zero paid balance is not "low" while its allowance lasts.
    """
    if units is None or (units.balance is None and units.free_remaining is None):
        return False
    return units.hours_left is not None and units.hours_left < 1.0


def compute_units_line(units: ComputeUnits | None) -> str | None:
    """ "Compute units: 99.98 · 1.96/h · about 51 h left", or None if nothing is known; with
    "— running low" at the end while :func:`running_low`, so the menu itself warns."""
    if units is None or (units.balance is None and units.free_remaining is None):
        return None
    if units.balance is not None and units.balance > 0:
        parts = [f"Compute units: {units.balance:.2f}"]
    elif units.free_remaining:
        parts = [f"Compute units: none paid, {units.free_remaining:.2f} free"]
    else:
        parts = ["Compute units: none left"]
    if units.rate_per_hour and units.rate_per_hour > 0:
        parts.append(f"{units.rate_per_hour:.2f}/h")
        if units.hours_left is not None:
            parts.append(f"{duration(units.hours_left)} left")
    else:
        parts.append("none in use")
    line = " · ".join(parts)
    return f"{line} — running low" if running_low(units) else line


def tooltip(
    state: TrayState,
    *,
    email: str | None,
    rows: list[RuntimeRow],
    problem: str | None,
    units_line: str | None,
) -> str:
    """The icon's tooltip: who, how many runtimes (the count lives here), what is wrong."""
    if state is TrayState.SIGNED_OUT:
        return "colabtray: signed out"
    lines = [f"colabtray: {email}" if email else "colabtray"]
    if rows:
        count = f"{len(rows)} runtime{'s' if len(rows) != 1 else ''} running"
        lines.append(f"{count}: {', '.join(r.name for r in rows)}")
    else:
        lines.append("No runtime")
    waiting = [r.name for r in rows if r.pending]
    if waiting:
        lines.append(f"Needs attention: {', '.join(waiting)} idle")
    if problem and state in (TrayState.ATTENTION, TrayState.UNREACHABLE):
        lines.append(problem)
    if units_line:
        lines.append(units_line)
    return "\n".join(printable(line) for line in lines)
