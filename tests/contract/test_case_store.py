"""The CaseStore contract (caseclock.live.ports), over every store: the fake, memory://, rocksdb://.

What the service layer relies on: an absent row reads as None; a row reads back as the exact
bytes last written; a delete removes the row and deleting an absent row is harmless (a purge
may run twice after a restart); rows of different keys never mix. Beyond that, per kind (see
tests/contract/stores.py): partitioned stores keep one key's rows in two partitions apart,
RocksDB keeps its rows across a restart with the data directory kept, and the Faust stores
send every write and delete to the changelog partition of the row, which is what a recovery
with the data directory wiped replays (that part needs a broker:
tests/integration/test_store_recovery.py).
"""

from __future__ import annotations

import pytest

from tests.contract.stores import PARTITIONS, ChangelogRecord, StoreUnderTest

ROW = b'{"p":0,"t":1767225600000000,"s":{}}'
BIG_ROW = b"x" * 65536  # CASECLOCK_MAX_STATE_BYTES' default: the largest row written


async def test_an_absent_key_reads_as_none(any_store: StoreUnderTest) -> None:
    for p in range(PARTITIONS):
        assert any_store.store.get(p, b"CS-1") is None


@pytest.mark.parametrize(
    "key, row",
    [(b"CS-1", ROW), ("Fall-\u00e9\u4e2d".encode(), ROW), (b"CS-big", BIG_ROW)],
    ids=["ascii", "utf-8 key", "largest row"],
)
async def test_a_row_reads_back_as_written(
    any_store: StoreUnderTest, key: bytes, row: bytes
) -> None:
    any_store.store.put(2, key, row)
    assert any_store.store.get(2, key) == row


async def test_the_last_write_wins(any_store: StoreUnderTest) -> None:
    s = any_store.store
    s.put(1, b"CS-1", b"first")
    s.put(1, b"CS-1", b"second")
    assert s.get(1, b"CS-1") == b"second"


async def test_delete_removes_and_deleting_an_absent_row_is_harmless(
    any_store: StoreUnderTest,
) -> None:
    s = any_store.store
    s.put(0, b"CS-1", ROW)
    s.delete(0, b"CS-1")
    assert s.get(0, b"CS-1") is None
    s.delete(0, b"CS-1")  # again: a purge may be repeated after a restart
    s.delete(3, b"never-written")
    assert s.get(0, b"CS-1") is None and s.get(3, b"never-written") is None
    s.put(0, b"CS-1", b"again")  # a deleted case can come back (a late event)
    assert s.get(0, b"CS-1") == b"again"


async def test_rows_of_different_keys_do_not_mix(any_store: StoreUnderTest) -> None:
    s = any_store.store
    rows = {f"CS-{i}".encode(): f"row {i}".encode() for i in range(50)}
    for key, row in rows.items():
        s.put(1, key, row)
    s.delete(1, b"CS-7")
    s.put(1, b"CS-8", b"changed")
    expected = {**rows, b"CS-7": None, b"CS-8": b"changed"}
    assert {key: s.get(1, key) for key in rows} == expected


async def test_one_key_in_two_partitions_is_two_rows(partitioned_store: StoreUnderTest) -> None:
    s = partitioned_store.store
    s.put(0, b"CS-1", b"in 0")
    assert s.get(1, b"CS-1") is None
    s.put(1, b"CS-1", b"in 1")
    assert (s.get(0, b"CS-1"), s.get(1, b"CS-1")) == (b"in 0", b"in 1")
    s.delete(0, b"CS-1")
    assert (s.get(0, b"CS-1"), s.get(1, b"CS-1")) == (None, b"in 1")


async def test_rows_survive_a_restart_with_the_data_dir_kept(
    persistent_store: StoreUnderTest,
) -> None:
    s = persistent_store.store
    for p in range(PARTITIONS):
        s.put(p, f"CS-{p}".encode(), f"row {p}".encode())
    s.put(1, b"CS-1", b"overwritten")
    s.put(2, b"gone", ROW)
    s.delete(2, b"gone")

    await persistent_store.restart()

    s = persistent_store.store
    assert [s.get(p, f"CS-{p}".encode()) for p in range(PARTITIONS)] == [
        b"row 0",
        b"overwritten",
        b"row 2",
        b"row 3",
    ]
    assert s.get(2, b"gone") is None
    s.put(3, b"CS-3", b"after")  # and it is writable again
    assert s.get(3, b"CS-3") == b"after"


async def test_every_write_and_delete_goes_to_the_rows_changelog_partition(
    changelogged_store: StoreUnderTest,
) -> None:
    """Recovery rebuilds each partition's rows from that partition of the changelog only, so a
    row written to another partition's changelog would be lost (or found by the wrong worker).
    A flush sends each key written since the previous one once, with its last row (the
    changelog is compacted to the last row per key anyway)."""
    s = changelogged_store.store
    topic = changelogged_store.changelog_topic
    await changelogged_store.changelog()  # nothing else is counted
    s.put(2, b"CS-1", b"first")
    s.put(3, b"CS-2", ROW)
    assert await changelogged_store.changelog() == [
        ChangelogRecord(topic, 2, b"CS-1", b"first"),
        ChangelogRecord(topic, 3, b"CS-2", ROW),
    ]
    s.put(2, b"CS-1", b"second")
    s.delete(2, b"CS-1")
    s.delete(0, b"absent")
    records = await changelogged_store.changelog()
    # a tombstone: compaction drops the row
    assert ChangelogRecord(topic, 2, b"CS-1", None) in records
    assert not [r for r in records if r.key == b"CS-1" and r.value is not None]
    # Deleting an absent row may or may not write a tombstone; if it does, to its partition.
    assert all(r.partition == 0 and r.value is None for r in records if r.key == b"absent")
