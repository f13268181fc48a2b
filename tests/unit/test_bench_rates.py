"""How the live benchmark turns its consumption samples into a rate (bench/live_support.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

_SUPPORT = Path(__file__).resolve().parents[2] / "bench" / "live_support.py"


@pytest.fixture(scope="module")
def support() -> Iterator[ModuleType]:
    sys.path.insert(0, str(_SUPPORT.parent))  # it imports its neighbours (bench/common.py)
    try:
        spec = importlib.util.spec_from_file_location("bench_live_support", _SUPPORT)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(_SUPPORT.parent))


def test_a_rate_is_taken_between_interior_samples(support: ModuleType) -> None:
    samples = [(0.0, 0, 0), (1.0, 10, 0), (2.0, 60, 0), (3.0, 100, 0)]
    c = support.Consumption(100, samples=samples)
    assert c.rate(1, 0)["events_per_s"] == 50.0  # (60 - 10) / (2 - 1): busy throughout


def test_input_consumed_between_two_samples_gives_a_lower_bound_not_none(
    support: ModuleType,
) -> None:
    # a worker that takes its input a fetch at a time can read a small run in one interval
    c = support.Consumption(100, samples=[(0.0, 0, 0), (0.5, 0, 0), (1.0, 100, 0)])
    r = c.rate(1, 0)
    assert r["events_per_s"] == 200.0  # 100 events within the 0.5 s since the last sample
    assert "lower bound" in r["rate_from"]
