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


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 50)), max_size=40))
def test_an_index_built_at_once_behaves_as_one_built_a_key_at_a_time(
    ops: list[tuple[str, int]],
) -> None:
    """`DeadlineIndex.of` (a restart's bulk load) holds what scheduling each key in turn
    would (a repeated key keeps its last deadline), and keeps working as an index."""
    one_by_one = DeadlineIndex()
    for key, due in ops:
        one_by_one.schedule(key, due)
    at_once = DeadlineIndex.of([k for k, _ in ops], [d for _, d in ops])
    assert sorted(at_once.items()) == sorted(one_by_one.items())
    keys, dues = one_by_one.deadlines()  # what a snapshot saves: `of` takes it back
    assert sorted(DeadlineIndex.of(keys, dues).items()) == sorted(one_by_one.items())
    assert sorted(zip(keys, dues, strict=True)) == sorted(one_by_one.items())
    for idx in (at_once, one_by_one):
        idx.schedule("z", 25)
    assert at_once.pop_due(30) == one_by_one.pop_due(30)
    assert at_once.peek() == one_by_one.peek()
