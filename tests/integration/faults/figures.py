"""How big a fault scenario runs and the figures it records.

Sizes. ``CASECLOCK_FAULT_SCALE`` (default 1) multiplies the counted sizes of the scenarios
(bad messages, the big case's events, faults per run); 1 is what CI runs, about six minutes on
a 2-core machine. Rates stay as they are: a bigger load rate measures the machine, not faults.

Figures. Each scenario records what it saw (alerts expected and delivered, repeats, catch-ups,
lateness, time to serve again, watchdog restarts) with :func:`write_figures`: into the JSON
file named by ``CASECLOCK_FAULT_REPORT`` (a dict keyed by scenario, merged when the file
exists; bench/faults.py sets it), else into the test's temporary directory. Nothing here
asserts a duration: the machines are shared, timings are figures, correctness is asserted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.integration.times import US, now_us

SCALE_ENV = "CASECLOCK_FAULT_SCALE"
REPORT_ENV = "CASECLOCK_FAULT_REPORT"


def scale() -> float:
    raw = os.environ.get(SCALE_ENV, "").strip()
    value = float(raw) if raw else 1.0
    if value <= 0:
        raise ValueError(f"{SCALE_ENV}={raw!r}: must be a positive number")
    return value


def scaled(n: int) -> int:
    """`n` times CASECLOCK_FAULT_SCALE, at least 1."""
    return max(1, round(n * scale()))


def elapsed_s(since_us: int, until_us: int | None = None) -> float:
    return round(((now_us() if until_us is None else until_us) - since_us) / US, 3)


def run_checks(figures: Figures, *checks: Callable[[], None]) -> None:
    """Run every check, so that one failing does not hide the others; record which failed
    (`checks_failed`) and fail with all their messages."""
    failed = []
    for check in checks:
        try:
            check()
        except AssertionError as e:
            failed.append(f"{check.__name__}: {e}")
    figures.update(checks_failed=[f.split(":", 1)[0] for f in failed])
    assert not failed, "\n\n".join(failed)


@dataclass
class Figures:
    """One scenario's figures, written by :func:`write_figures` when the scenario ends."""

    scenario: str
    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def update(self, **values: Any) -> None:
        self.values.update(values)

    def write(self, outcome: str) -> None:
        self.values["runtime_s"] = round(time.monotonic() - self.started, 1)
        self.values["outcome"] = outcome
        self.values["scale"] = scale()
        write_figures(self.path, self.scenario, self.values)


def write_figures(path: Path, scenario: str, figures: Mapping[str, Any]) -> None:
    """Merge one scenario's figures into the JSON report at `path` (a dict by scenario)."""
    data: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    data[scenario] = dict(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    tmp.write_bytes(orjson.dumps(data, option=option) + b"\n")
    tmp.replace(path)


def report_path(tmp_dir: Path) -> Path:
    configured = os.environ.get(REPORT_ENV, "").strip()
    return Path(configured) if configured else tmp_dir / "faults.json"
