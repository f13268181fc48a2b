"""How the live benchmark turns its consumption samples into a rate (bench/live_support.py)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.bench_modules import load_bench_module


@pytest.fixture(scope="module")
def support() -> ModuleType:
    return load_bench_module("live_support.py", "bench_live_support")


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
