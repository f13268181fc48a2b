"""The table store's changelog bookkeeping (caseclock.live.faust_store), with a fake producer:
batches per flush, the persisted offset once per acknowledged batch, repairs that resend the
current row (never an older one), and no repair for a partition no longer owned.

The CaseStore contract itself is tests/contract; that the records reach a broker and a recovery
reads them back is tests/integration/test_store_recovery.py."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from caseclock.core.policy import load_policy
from caseclock.live.config import Config
from caseclock.live.faust_app import CaseClock
from caseclock.live.faust_store import TableStore
from caseclock.live.producer import Record

FAILED: list[int] = []
"""What the store reported as not taken, per failed batch."""


class FakeProducer:
    """Takes each flush's records as one batch per partition; the test settles the futures."""

    def __init__(self) -> None:
        self.calls: list[list[Record]] = []
        self.futures: list[tuple[asyncio.Future[Any], list[Record]]] = []

    async def send(self, records: list[Record]) -> list[asyncio.Future[Any]]:
        self.calls.append(list(records))
        by_partition: dict[int | None, asyncio.Future[Any]] = {}
        out = []
        for r in records:
            if r.partition not in by_partition:
                fut = asyncio.get_running_loop().create_future()
                by_partition[r.partition] = fut
                self.futures.append((fut, []))
            fut = by_partition[r.partition]
            next(m for f, m in self.futures if f is fut).append(r)
            out.append(fut)
        return out


@pytest.fixture
def rocks(tmp_path: Path) -> Iterator[tuple[TableStore, FakeProducer, set[int]]]:
    env = {
        "CASECLOCK_STORE": "rocksdb://",
        "CASECLOCK_DATA_DIR": str(tmp_path),
        "CASECLOCK_PARTITIONS": "4",
    }
    cc = CaseClock(Config.from_env(env), load_policy())
    fake, owned = FakeProducer(), {0, 1, 2, 3}
    store = TableStore(
        cc.table,
        fake,  # type: ignore[arg-type]
        lambda: owned,
        on_failure=FAILED.append,
    )
    FAILED.clear()
    yield store, fake, owned
    data: Any = cc.table.data
    asyncio.run(data.stop())
    gc.collect()


def write(store: TableStore, *rows: tuple[int, bytes, bytes | None]) -> None:
    """Put each (partition, key, row); a row of None deletes."""
    for p, key, row in rows:
        if row is None:
            store.delete(p, key)
        else:
            store.put(p, key, row)


async def test_a_flush_hands_every_pending_row_over_at_once_and_notes_the_offset(
    rocks: tuple[TableStore, FakeProducer, set[int]],
) -> None:
    store, fake, _ = rocks
    write(store, (1, b"A", b"a1"), (1, b"B", b"b1"), (2, b"C", None))
    assert store.pending
    await store.flush()
    assert not store.pending
    assert fake.calls == [
        [
            Record(store.topic, b"A", b"a1", 1),
            Record(store.topic, b"B", b"b1", 1),
            Record(store.topic, b"C", None, 2),
        ]
    ]
    (fut1, _), (fut2, _) = fake.futures
    fut1.set_result(SimpleNamespace(offset=40))  # the batch of partition 1: offsets 40, 41
    fut2.set_result(SimpleNamespace(offset=7))
    await asyncio.sleep(0)
    data: Any = store._table.data
    assert data.persisted_offset(TP(store.topic, 1)) == 41
    assert data.persisted_offset(TP(store.topic, 2)) == 7
    await store.flush()  # nothing pending: nothing sent
    assert len(fake.calls) == 1


async def test_a_batch_the_broker_did_not_take_is_resent_with_the_current_rows(
    rocks: tuple[TableStore, FakeProducer, set[int]],
) -> None:
    store, fake, owned = rocks
    write(store, (1, b"A", b"old"), (3, b"D", b"d"))
    await store.flush()
    store.put(1, b"A", b"new")  # written again before the failure is known
    for fut, _ in fake.futures:
        fut.set_exception(TimeoutError("broker away"))
    await asyncio.sleep(0)
    assert sorted(FAILED) == [1, 1]  # one row of each batch
    owned.discard(3)  # partition 3 was revoked meanwhile: its new owner's row may be newer
    assert store.pending
    await store.flush()
    assert fake.calls[-1] == [
        Record(store.topic, b"A", b"new", 1),  # the repair: the current row, not "old"
        Record(store.topic, b"A", b"new", 1),  # the write since
    ]
    data: Any = store._table.data
    assert data.persisted_offset(TP(store.topic, 1)) is None  # nothing acknowledged yet


async def test_rocksdb_rows_wait_for_the_flush_and_are_read_meanwhile(
    rocks: tuple[TableStore, FakeProducer, set[int]],
) -> None:
    store, _, _ = rocks
    db: Any = store._store._db_for_partition(1)
    write(store, (1, b"CS-1", b"old"))
    await store.flush()
    write(store, (1, b"CS-1", b"new"), (1, b"CS-2", b"two"), (1, b"CS-2", None))
    assert db.get(b"CS-1") == b"old"  # not in RocksDB yet ...
    assert (store.get(1, b"CS-1"), store.get(1, b"CS-2")) == (b"new", None)  # ... but read
    assert store.pending
    await store.flush()
    assert (db.get(b"CS-1"), db.get(b"CS-2")) == (b"new", None)  # one batch, in write order


async def test_settle_waits_for_the_acknowledgements_and_knows_the_stored_offsets(
    rocks: tuple[TableStore, FakeProducer, set[int]],
) -> None:
    """What a stopping worker's index snapshot records: the offsets stored once every batch
    handed over is acknowledged (or that it could not settle within the time given)."""
    store, fake, _ = rocks
    assert store.read_offsets([1, 3]) == {1: None, 3: None}
    write(store, (1, b"A", b"a1"), (3, b"B", b"b1"))
    assert store.writes == 2
    assert not await store.settle(within=0.05)  # handed over, never acknowledged
    (fut1, _), (fut3, _) = fake.futures
    asyncio.get_running_loop().call_later(0.05, fut1.set_result, SimpleNamespace(offset=40))
    asyncio.get_running_loop().call_later(0.05, fut3.set_result, SimpleNamespace(offset=9))
    assert await store.settle(within=5)
    assert store.offsets == {1: 40, 3: 9}
    assert store.read_offsets([1, 3]) == {1: 40, 3: 9}  # what RocksDB stores, read back
