"""Index snapshots (`live.index_snapshots`): what a clean stop saves so that a restart with
the data directory kept need not read every row, and when a restart may trust one."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from caseclock.live.index_snapshots import IndexSnapshot, SnapshotDir, decode, encode
from tests.unit.live.test_rows import played


def snap(partition: int = 1, offset: int | None = 41) -> IndexSnapshot:
    return IndexSnapshot(
        partition=partition,
        fingerprint="fp",
        offset=offset,
        keys=["A", "B"],
        dues=[20, 10],
        opens=Counter({("1", "support-plus"): 2, ("2", "x"): 0}),
        risks=Counter({("ack", "1"): 1}),
    )


def test_a_snapshot_reads_back_as_written() -> None:
    back = decode(encode(snap()))
    assert back == IndexSnapshot(
        1, "fp", 41, ["A", "B"], [20, 10], Counter({("1", "support-plus"): 2}), snap().risks
    )
    assert decode(encode(snap(offset=None))).offset is None


@pytest.mark.parametrize(
    "data, why",
    [
        (b"{not json", "not JSON"),
        (b'{"format": 999}', "format"),
        (b'{"format": 1, "partition": 0}', "malformed"),
        (encode(snap()).replace(b'"dues":[20,10]', b'"dues":[20]'), "differ in length"),
    ],
)
def test_what_is_not_a_snapshot_of_this_format_says_why(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        decode(data)


def test_a_snapshot_names_the_changelog_offsets_written_since_it_was_taken() -> None:
    s = snap(offset=41)
    assert s.changes_since("fp", 41) == range(0)  # exact: used as it is
    assert s.changes_since("fp", 44) == range(42, 45)  # rows written since, here or elsewhere
    assert s.changes_since("fp", None) is None  # the store has no rows it knew of
    assert s.changes_since("fp", 40) is None  # nor the latest ones
    assert s.changes_since("another policy", 41) is None
    never = snap(offset=None)  # taken before the partition had a row
    assert never.changes_since("fp", None) == range(0)
    assert never.changes_since("fp", 2) == range(0, 3)


def test_snapshots_are_read_once_and_a_broken_file_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = SnapshotDir(tmp_path / "idx")
    assert d.take() == {}  # no directory yet
    assert d.save([snap(0), snap(3)]) == 2
    (d.path / "partition-5.index").write_bytes(b"truncated{")
    (d.path / "partition-6.tmp").write_bytes(b"a stop cut short")
    with caplog.at_level(logging.WARNING, "caseclock"):
        taken = d.take()
    assert sorted(taken) == [0, 3] and taken[3] == decode(encode(snap(3)))
    assert "partition-5.index" in caplog.text
    assert list(d.path.iterdir()) == []  # read once: a later crash cannot come back to them
    assert d.take() == {}


@pytest.mark.parametrize("seed", [4, 5])
async def test_a_restore_from_snapshots_equals_a_rebuild_from_the_rows(
    tmp_path: Path, seed: int
) -> None:
    """After random histories, each partition's snapshot, saved and taken back, restores the
    index and the gauges a rebuild from the rows yields; a partition without one is still
    rebuilt from its rows alongside."""
    svc, store, _ = await played(seed)

    def rebuilt() -> tuple[object, ...]:
        return (
            {p: sorted(i.items()) for p, i in svc.indexes.items()},
            {p: +c for p, c in svc.open_counts.items()},
            {p: +c for p, c in svc.risk_counts.items()},
        )

    svc.begin_rebuild(range(4))
    assert sum(svc.index_row(k, row) for (_, k), row in store.rows.items()) == len(store.rows)
    svc.finish_rebuild()
    from_rows = rebuilt()
    d = SnapshotDir(tmp_path)
    d.save(svc.snapshot(p, offset=7) for p in (0, 1, 3))

    svc.begin_rebuild(range(4))
    restored = sum(svc.restore(s) for s in d.take().values())
    assert svc.scanning == {2}
    scanned = sum(svc.index_row(k, row) for (_, k), row in store.rows.items())
    svc.finish_rebuild()
    assert scanned == sum(1 for p, _ in store.rows if p == 2)
    assert restored == sum(len(svc.indexes[p]) for p in (0, 1, 3)) > 0
    assert rebuilt() == from_rows


async def test_a_case_taken_for_evaluation_keeps_the_deadline_it_was_taken_for() -> None:
    """Stopping between the timer's pop and its evaluation: the case is re-armed for a retry
    in the index, but the snapshot holds the deadline it owes, so the restart evaluates it
    at once rather than after the retry delay."""
    svc, _, clock = await played(6, events=600)
    later = clock.now + 10**12
    nxt = svc.next_deadline(range(4))
    assert nxt is not None
    taken = svc.due(later, range(4))
    assert taken
    p, entries = taken[0]
    case_id, owed = entries[0]
    assert svc.indexes[p].due_of(case_id) == later + svc.retry_us
    s = svc.snapshot(p, offset=None)
    assert dict(zip(s.keys, s.dues, strict=True))[case_id] == owed <= later


def test_the_restore_plan_trusts_exact_snapshots_and_reads_rows_for_the_rest() -> None:
    """Is a snapshot trusted? Exact: restored as it is; behind by a few records: restored
    and those keys read again; too far behind, another fingerprint, ahead of the store, or
    rows written already by this process: the partition's rows are read. Partitions not
    owned are left alone."""
    from collections import Counter

    from caseclock.live.index_snapshots import IndexSnapshot, plan_restore

    def snap(p: int, offset: int | None, fp: str = "fp", cases: int = 8) -> IndexSnapshot:
        keys = [f"C{i}" for i in range(cases)]
        return IndexSnapshot(p, fp, offset, keys, [1] * cases, Counter(), Counter())

    snaps = {
        0: snap(0, 10),  # exact
        1: snap(1, 10),  # 2 behind
        2: snap(2, 10, cases=40_000),  # 12,000 behind: more than a quarter and the floor
        3: snap(3, 10, fp="old"),  # another fingerprint
        4: snap(4, 12),  # ahead of its store
        5: snap(5, 10),  # not owned
    }
    offsets: dict[int, int | None] = {0: 10, 1: 12, 2: 12_010, 3: 10, 4: 11}
    plan = plan_restore(snaps, range(5), offsets, "fp", written=False)
    assert [s.partition for s in plan.exact] == [0]
    assert {p: since for p, (_, since) in plan.behind.items()} == {1: range(11, 13)}
    assert plan.too_far == {2: 12_000}
    assert plan.stale == [3, 4]
    written = plan_restore(snaps, range(5), offsets, "fp", written=True)
    assert written.exact == [] and written.behind == {} and written.stale == [0, 1, 2, 3, 4]
