"""The deadline index: ordering, rescheduling, removal, bounded memory."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from caseclock.core.schedule import DeadlineIndex


def test_pop_due_returns_earliest_first_and_only_due() -> None:
    idx = DeadlineIndex()
    for key, due in [("a", 30), ("b", 10), ("c", 20), ("d", 40)]:
        idx.schedule(key, due)
    assert idx.pop_due(25) == [(10, "b"), (20, "c")]
    assert len(idx) == 2 and idx.peek() == 30


def test_reschedule_replaces_and_remove_clears() -> None:
    idx = DeadlineIndex()
    idx.schedule("a", 10)
    idx.schedule("a", 50)
    idx.schedule("b", 20)
    idx.remove("b")
    assert idx.pop_due(40) == []
    assert idx.pop_due(50) == [(50, "a")]
    assert len(idx) == 0 and idx.peek() is None


def test_limit_caps_work_per_call() -> None:
    idx = DeadlineIndex()
    for i in range(10):
        idx.schedule(f"k{i}", i)
    assert len(idx.pop_due(100, limit=3)) == 3
    assert len(idx) == 7


def test_heap_is_compacted_under_churn() -> None:
    idx = DeadlineIndex()
    for round_ in range(50):
        for i in range(100):
            idx.schedule(f"k{i}", round_ * 1000 + i)
    assert len(idx) == 100
    assert len(idx._heap) <= 2 * 100 + 64 + 100


@given(st.lists(st.tuples(st.integers(0, 20), st.one_of(st.none(), st.integers(0, 1000)))))
def test_matches_a_dict_model(ops: list[tuple[int, int | None]]) -> None:
    idx = DeadlineIndex()
    model: dict[str, int] = {}
    for k, due in ops:
        key = f"k{k}"
        idx.schedule(key, due)
        if due is None:
            model.pop(key, None)
        else:
            model[key] = due
    assert dict(idx.items()) == model
    assert all(idx.due_of(f"k{k}") == model.get(f"k{k}") for k in range(21))
    now = random.Random(len(ops)).randint(0, 1000)
    popped = idx.pop_due(now)
    assert sorted(popped) == sorted((d, k) for k, d in model.items() if d <= now)
    assert [d for d, _ in popped] == sorted(d for d, _ in popped)
