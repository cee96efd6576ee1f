"""What the tray says: icon state, runtime rows, resources, compute units, tooltip."""

from __future__ import annotations

import json

import pytest

from colabtray.colab.models import ComputeUnits, Resources, Runtime
from colabtray.core import display
from colabtray.core.display import TrayState
from colabtray.core.keepalive import Verdict
from colabtray.core.naming import RuntimeNames

GIB = 1024**3


def _runtime(endpoint: str, variant: str, accelerator: str | None, shape: int = 0) -> Runtime:
    return Runtime.model_validate(
        {
            "endpoint": endpoint,
            "variant": variant,
            "accelerator": accelerator or "NONE",
            "machineShape": shape,
        }
    )


@pytest.mark.parametrize(
    ("kwargs", "state"),
    [
        ({"signed_in": False, "must_sign_in": True, "pending": True}, TrayState.SIGNED_OUT),
        ({"must_sign_in": True, "reachable": False}, TrayState.ATTENTION),
        ({"pending": True, "reachable": False}, TrayState.ATTENTION),
        ({"reachable": False, "runtimes": 2}, TrayState.UNREACHABLE),
        ({"runtimes": 2}, TrayState.RUNNING),
        ({}, TrayState.IDLE),
    ],
)
def test_tray_state_priority(kwargs: dict, state: TrayState) -> None:
    base = {
        "signed_in": True,
        "must_sign_in": False,
        "pending": False,
        "reachable": True,
        "runtimes": 0,
    }
    assert display.tray_state(**(base | kwargs)) is state


def test_runtime_row_puts_accelerator_and_variant_first() -> None:
    row = display.runtime_row(
        "T4 GPU",
        _runtime("gpu-t4-s-1", "GPU", "T4"),
        Verdict.ACTIVE,
        pending=False,
        reachable=True,
    )
    assert row.label == "T4 GPU · Standard — in use"
    tpu = display.runtime_row(
        "mine", _runtime("tpu-1", "TPU", "V5E1", 1), Verdict.IDLE, pending=False, reachable=True
    )
    assert tpu.label == "v5e TPU · High-RAM · “mine” — idle"
    cpu = display.runtime_row(
        "CPU (1)", _runtime("m-s-1", "CPU", None), Verdict.UNKNOWN, pending=True, reachable=True
    )
    assert cpu.label == "CPU · Standard · “CPU (1)” — idle: keep running?"
    assert cpu.pending


def test_runtime_state_when_unreachable() -> None:
    assert display.runtime_state(Verdict.ACTIVE, pending=False, reachable=False) == "status unknown"
    assert display.runtime_state(Verdict.UNKNOWN, pending=False, reachable=True) == "running"


def test_resource_lines_follow_colab_wording() -> None:
    resources = Resources.model_validate(
        {
            "memory": {"totalBytes": 13 * GIB, "freeBytes": 11 * GIB},
            "disks": [
                {"filesystem": {"label": "kernel", "totalBytes": 100 * GIB, "usedBytes": 30 * GIB}},
                {"filesystem": {"label": "/content/drive", "totalBytes": GIB, "usedBytes": 0}},
                {},
            ],
            "gpus": [
                {"memoryUsedBytes": GIB // 2, "memoryTotalBytes": 15 * GIB},
                {"memoryUsedBytes": GIB // 2, "memoryTotalBytes": 15 * GIB},
            ],
        }
    )
    assert display.resource_lines(resources) == [
        "System RAM: 2.00 / 13.00 GB",
        "GPU RAM: 1.00 / 30.00 GB",
        "Disk: 30.00 / 100.00 GB",
        "Disk [ drive ]: 0.00 / 1.00 GB",
        "Disk: 0.00 / 0.00 GB",
    ]
    cpu_only = Resources.model_validate({"disks": []})
    assert display.resource_lines(cpu_only) == ["System RAM: 0.00 / 0.00 GB"]


@pytest.mark.parametrize(
    ("units", "line"),
    [
        (None, None),
        (ComputeUnits(), None),
        (
            ComputeUnits(balance=99.98, rate_per_hour=1.96),
            "Compute units: 99.98 · 1.96/h · about 51 h left",
        ),
        (ComputeUnits(balance=100.0, rate_per_hour=0.0), "Compute units: 100.00 · none in use"),
        (
            ComputeUnits(balance=0.0, free_remaining=5.96, rate_per_hour=0.07),
            "Compute units: none paid, 5.96 free · 0.07/h · about 85 h left",
        ),
        (
            ComputeUnits(balance=2.0, rate_per_hour=1.5),
            "Compute units: 2.00 · 1.50/h · about 1 h 20 min left",
        ),
        (
            ComputeUnits(balance=0.0, rate_per_hour=1.0),
            "Compute units: none left · 1.00/h · less than a minute left — running low",
        ),
        (
            ComputeUnits(balance=0.8, rate_per_hour=1.96),
            "Compute units: 0.80 · 1.96/h · about 24 min left — running low",
        ),
    ],
)
def test_compute_units_line(units: ComputeUnits | None, line: str | None) -> None:
    assert display.compute_units_line(units) == line


@pytest.mark.parametrize(
    ("units", "low"),
    [
        (None, False),
        (ComputeUnits(), False),
        (ComputeUnits(balance=0.5), False),  # nothing burns
        (ComputeUnits(balance=0.5, rate_per_hour=0.0), False),
        (ComputeUnits(balance=0.8, rate_per_hour=1.96), True),
        (ComputeUnits(balance=1.96, rate_per_hour=1.96), False),  # exactly an hour left
        (ComputeUnits(balance=1.95, rate_per_hour=1.96), True),
        (ComputeUnits(balance=0.0, rate_per_hour=0.07), True),  # none left, none free
        (ComputeUnits(balance=0.0, free_remaining=5.96, rate_per_hour=0.07), False),
        (ComputeUnits(balance=0.0, free_remaining=0.05, rate_per_hour=0.07), True),
        (ComputeUnits(rate_per_hour=1.96), False),  # the balance unknown: no alarm
    ],
)
def test_running_low_means_less_than_an_hour_of_the_current_burn(
    units: ComputeUnits | None, low: bool
) -> None:
    assert display.running_low(units) is low


def test_duration() -> None:
    assert display.duration(0.25) == "about 15 min"
    assert display.duration(1.0) == "about 1 h"
    assert display.duration(9.5) == "about 9 h 30 min"
    assert display.duration(0.001) == "less than a minute"


def test_tooltip_counts_runtimes_and_says_what_is_wrong() -> None:
    rows = [
        display.runtime_row(
            "T4 GPU", _runtime("a", "GPU", "T4"), Verdict.IDLE, pending=True, reachable=True
        ),
        display.runtime_row(
            "CPU", _runtime("b", "CPU", None), Verdict.ACTIVE, pending=False, reachable=True
        ),
    ]
    text = display.tooltip(
        TrayState.ATTENTION,
        email="ada@example.com",
        rows=rows,
        problem=None,
        units_line="Compute units: 1.00 · none in use",
    )
    assert text.splitlines() == [
        "colabtray: ada@example.com",
        "2 runtimes running: T4 GPU, CPU",
        "Needs attention: T4 GPU idle",
        "Compute units: 1.00 · none in use",
    ]
    down = display.tooltip(
        TrayState.UNREACHABLE,
        email=None,
        rows=[],
        problem="Colab could not be reached.",
        units_line=None,
    )
    assert down.splitlines() == ["colabtray", "No runtime", "Colab could not be reached."]
    out = display.tooltip(TrayState.SIGNED_OUT, email=None, rows=[], problem="x", units_line="y")
    assert out == "colabtray: signed out"


def test_a_name_file_with_a_line_break_in_a_name_gets_the_name_anew(tmp_path) -> None:
    """The names file is the user's to edit; a name that would break a line of ssh's config
    or a terminal's output is replaced, the others stay."""
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"gpu-a": "My GPU", "gpu-b": "T4 GPU\nHost *", "m-c": "\x1b[2J"}))
    runtimes = [_runtime("gpu-a", "GPU", "T4"), _runtime("gpu-b", "GPU", "T4")]
    runtimes.append(_runtime("m-c", "CPU", None))
    names = RuntimeNames(path).sync(runtimes)
    assert names == {"gpu-a": "My GPU", "gpu-b": "T4 GPU", "m-c": "CPU"}


def test_names_are_unique_across_accounts_and_each_listing_releases_only_its_own(
    tmp_path,
) -> None:
    """Every account's runtimes are named from one file: a second account's T4 is "T4 GPU (1)",
    an account's listing without the other's runtimes leaves their names alone, and a name
    released by its own account (the runtime went) is given again."""
    path = tmp_path / "names.json"
    ada_t4, bob_t4 = _runtime("gpu-ada", "GPU", "T4"), _runtime("gpu-bob", "GPU", "T4")
    names = RuntimeNames(path)
    assert names.sync([ada_t4], "ada@example.com") == {"gpu-ada": "T4 GPU"}
    assert names.sync([bob_t4], "bob@example.com") == {"gpu-bob": "T4 GPU (1)"}
    assert names.sync([ada_t4], "ada@example.com") == {"gpu-ada": "T4 GPU"}

    again = RuntimeNames(path)  # another run reads whose each name is
    assert again.sync([bob_t4], "bob@example.com") == {"gpu-bob": "T4 GPU (1)"}
    assert again.sync([], "ada@example.com") == {}
    new_t4 = _runtime("gpu-new", "GPU", "T4")
    assert again.sync([new_t4], "ada@example.com") == {"gpu-new": "T4 GPU"}
    assert again.sync([bob_t4], "bob@example.com") == {"gpu-bob": "T4 GPU (1)"}
