"""The table store's commit order (caseclock.live.faust_store), on a real RocksDB data directory
with a fake producer whose acknowledgements the test settles by hand:

* rows reach RocksDB, with their last changelog offset in the same write batch, only once their
  changelog batch is acknowledged, and in the order they were flushed;
* a batch the broker did not take is sent again with the current rows, never an older one;
* a flush whose batch never acknowledges, a restart on the same data directory, the same input
  again: the row is published again (issue 20's loss, which the first version had);
* revoked partitions are fenced: their staged rows dropped, writes refused, late
  acknowledgements ignored;
* a store that refuses writes keeps the rows staged and readable, says so, and recovers.

The CaseStore contract itself is tests/contract; that the records reach a broker and a recovery
reads them back is tests/integration/test_store_recovery.py."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP

from caseclock.core.policy import load_policy
from caseclock.live.config import Config
from caseclock.live.faust_app import CaseClock
from caseclock.live.faust_store import NotOwned, TableStore
from caseclock.live.producer import Record
from tests.factories import note, opened
from tests.unit.live.fakes import inbound


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

    def ack(self, i: int, offset: int) -> None:
        self.futures[i][0].set_result(SimpleNamespace(offset=offset))

    def fail(self, i: int, exc: BaseException) -> None:
        self.futures[i][0].set_exception(exc)


class Worker:
    """A CaseClock built over a data directory (never started), its store on a FakeProducer."""

    def __init__(self, data_dir: Path) -> None:
        env = {
            "CASECLOCK_STORE": "rocksdb://",
            "CASECLOCK_DATA_DIR": str(data_dir),
            "CASECLOCK_PARTITIONS": "4",
            "CASECLOCK_INPUT_PARTITIONER": "any",
        }
        self.cc = CaseClock(Config.from_env(env), load_policy())
        self.producer = FakeProducer()
        self.failed: list[int] = []
        self.store = TableStore(
            self.cc.table,
            self.producer,  # type: ignore[arg-type]
            on_failure=self.failed.append,
        )
        self.cc.store = self.cc.svc.store = self.store

    def db(self, partition: int) -> Any:
        return self.store._store._db_for_partition(partition)

    async def kill(self) -> None:
        """What a SIGKILL leaves: RocksDB as written, the staged rows gone (Faust's store
        stop only lets go of its databases; nothing of caseclock's is flushed)."""
        data: Any = self.cc.table.data
        await data.stop()
        self.cc = None  # type: ignore[assignment]
        gc.collect()  # rocksdict closes a database when it is collected


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    w = Worker(tmp_path)
    yield w
    if w.cc is not None:
        asyncio.run(w.kill())


def write(store: TableStore, *rows: tuple[int, bytes, bytes | None]) -> None:
    """Put each (partition, key, row); a row of None deletes."""
    for p, key, row in rows:
        if row is None:
            store.delete(p, key)
        else:
            store.put(p, key, row)


def facts(row: bytes | None) -> dict[str, Any]:
    """A row's case state without the wall-clock instants of its arrival."""
    assert row is not None
    state: dict[str, Any] = orjson.loads(row)["s"]
    state.pop("cr")
    return state


async def settle_callbacks() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_rows_reach_rocksdb_with_their_offset_only_once_acknowledged(worker: Worker) -> None:
    store, fake = worker.store, worker.producer
    write(store, (1, b"A", b"a1"), (1, b"B", b"b1"), (2, b"C", None), (1, b"A", b"a2"))
    await store.flush()
    seal = store.seals
    assert fake.calls == [  # one record per key and flush: its last row
        [
            Record(store.topic, b"A", b"a2", 1),
            Record(store.topic, b"B", b"b1", 1),
            Record(store.topic, b"C", None, 2),
        ]
    ]
    assert worker.db(1).get(b"A") is None  # handed over, not acknowledged: not in RocksDB
    assert store.get(1, b"A") == b"a2"  # ... but read
    assert not store.durable(seal)
    fake.ack(0, 40)  # partition 1's batch: offsets 40, 41
    await settle_callbacks()
    assert (worker.db(1).get(b"A"), worker.db(1).get(b"B")) == (b"a2", b"b1")
    data: Any = store._store
    assert data.persisted_offset(TP(store.topic, 1)) == 41
    assert data.persisted_offset(TP(store.topic, 2)) is None
    assert not store.durable(seal)  # partition 2's batch is still in flight
    fake.ack(1, 7)
    await settle_callbacks()
    assert store.durable(seal) and not store.pending
    assert data.persisted_offset(TP(store.topic, 2)) == 7
    await store.flush()  # nothing staged: nothing sent
    assert len(fake.calls) == 1


async def test_a_later_flush_acknowledged_first_waits_for_the_earlier_one(worker: Worker) -> None:
    """RocksDB never gets an older row after a newer one, nor a newer offset before an older
    flush is in: layers are written in flush order."""
    store, fake = worker.store, worker.producer
    write(store, (1, b"A", b"first"), (1, b"B", b"b"))
    await store.flush()
    write(store, (1, b"A", b"second"))
    await store.flush()
    fake.ack(1, 12)  # the second flush's batch first
    await settle_callbacks()
    assert worker.db(1).get(b"A") is None
    fake.ack(0, 10)
    await settle_callbacks()
    assert (worker.db(1).get(b"A"), worker.db(1).get(b"B")) == (b"second", b"b")
    assert store._store.persisted_offset(TP(store.topic, 1)) == 12
    assert store.offsets[1] == 12


async def test_a_batch_the_broker_did_not_take_is_resent_with_the_current_rows(
    worker: Worker,
) -> None:
    store, fake = worker.store, worker.producer
    write(store, (1, b"A", b"old"), (1, b"K", b"kept"), (3, b"D", b"d"))
    await store.flush()
    seal = store.seals
    store.put(1, b"A", b"new")  # written again before the failure is known
    fake.fail(0, TimeoutError("broker away"))
    await settle_callbacks()
    assert worker.failed == [2] and store.failure is not None
    assert store.unsent and not store.durable(seal)
    assert store.get(1, b"K") == b"kept"  # still read while it waits to be sent again
    await store.flush()
    assert sorted(fake.calls[-1]) == [
        Record(store.topic, b"A", b"new", 1),  # the current row, not "old"
        Record(store.topic, b"K", b"kept", 1),
    ]
    assert worker.db(1).get(b"A") is None  # nothing acknowledged yet
    fake.ack(1, 5)  # partition 3's first batch
    fake.ack(2, 20)  # the resend
    await settle_callbacks()
    assert (worker.db(1).get(b"A"), worker.db(1).get(b"K")) == (b"new", b"kept")
    assert store.durable(seal) and store.failure is None


async def test_input_read_again_after_a_kill_before_the_changelog_ack_is_published_again(
    tmp_path: Path,
) -> None:
    """Issue 20, risk 1: a flush whose changelog batch never acknowledges, a kill, a restart
    on the same data directory, the same (uncommitted) input again: the row is published.
    (The first version had written RocksDB before the changelog: the input read again was all
    duplicates and nothing was sent, so the changelog missed the facts for good.)"""
    events = [inbound(opened("CS-1", 0, priority=1), 0, 0), inbound(note("CS-1", 0.5), 0, 1)]
    first = Worker(tmp_path)
    await first.cc.svc.on_inputs(events)
    await first.store.flush()
    sent_first = [r for call in first.producer.calls for r in call]
    assert [r.key for r in sent_first] == [b"CS-1"]
    await first.kill()  # never acknowledged

    second = Worker(tmp_path)
    assert second.store.get(0, b"CS-1") is None  # RocksDB holds nothing the changelog lacks
    await second.cc.svc.on_inputs(events)  # the input was not committed: read again
    await second.store.flush()
    sent_again = [r for call in second.producer.calls for r in call]
    assert [r.key for r in sent_again] == [b"CS-1"]
    assert facts(sent_again[0].value) == facts(sent_first[0].value)
    assert facts(sent_again[0].value)["cf"]  # the note's acknowledgement is in it
    await second.kill()


async def test_a_revoked_partition_is_fenced(worker: Worker) -> None:
    store, fake = worker.store, worker.producer
    write(store, (1, b"A", b"a"), (2, b"B", b"b"))
    await store.flush()
    write(store, (1, b"A", b"a2"))
    assert store.fence([1]) == 2  # the sealed row and the open one
    with pytest.raises(NotOwned):
        store.put(1, b"A", b"late")
    fake.ack(0, 3)  # partition 1's late acknowledgement: ignored
    fake.ack(1, 8)
    await settle_callbacks()
    assert worker.db(1).get(b"A") is None
    assert worker.db(2).get(b"B") == b"b"
    assert not store.pending
    store.unfence([1])  # recovered: ours again
    store.put(1, b"A", b"back")
    assert store.get(1, b"A") == b"back"


async def test_a_store_that_refuses_writes_keeps_the_rows_staged_and_recovers(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, fake = worker.store, worker.producer
    real = store._store._db_for_partition

    class Full:
        def write(self, batch: object) -> None:
            raise OSError("No space left on device")

    monkeypatch.setattr(store._store, "_db_for_partition", lambda p: Full())
    write(store, (1, b"A", b"a"))
    await store.flush()
    seal = store.seals
    fake.ack(0, 4)
    await settle_callbacks()
    assert store.failure is not None and "No space left" in store.failure
    assert not store.durable(seal)  # the input that wrote it is not acknowledged
    assert store.get(1, b"A") == b"a"  # still read, from memory
    assert store.flush_due and not store.unsent  # nothing to send: a write to try again
    monkeypatch.setattr(store._store, "_db_for_partition", real)
    await store.flush()  # the next flush writes it
    assert worker.db(1).get(b"A") == b"a"
    assert store.durable(seal) and store.failure is None


async def test_settle_waits_for_the_acknowledgements_and_knows_the_stored_offsets(
    worker: Worker,
) -> None:
    """What a stopping worker's index snapshot records: the offsets stored once every batch
    handed over is acknowledged (or that it could not settle within the time given)."""
    store, fake = worker.store, worker.producer
    assert store.read_offsets([1, 3]) == {1: None, 3: None}
    write(store, (1, b"A", b"a1"), (3, b"B", b"b1"))
    assert store.writes == 2
    assert not await store.settle(within=0.05)  # handed over, never acknowledged
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, fake.ack, 0, 40)
    loop.call_later(0.05, fake.ack, 1, 9)
    assert await store.settle(within=5)
    assert store.offsets == {1: 40, 3: 9}
    assert store.read_offsets([1, 3]) == {1: 40, 3: 9}  # what RocksDB stores, read back
