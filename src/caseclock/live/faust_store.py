"""The CaseStore port over the local store of Faust's `cases` table, its changelog in batches.

Faust's table writes a row by way of its current event (the partition of a write is the
partition of the message being processed) and sends one changelog record per write through
its per-record producer machinery, then records the changelog offset in RocksDB once per
record. Both cost: the table's write path was about a fifth of the worker's CPU during ingest
(bench/results/live-ingest-profile-2026-12-01.txt). And both tie writes to a stream, which
the timer is not.

This store keeps Faust's table for what it is good at (the data directory, recovery from the
changelog, standby bookkeeping, iteration for the index rebuild) and writes past it, in the
commit order of docs/architecture.md ("The commit order"):

1. a handler's writes are staged in memory (`live.staged_rows`), where reads see them;
2. `flush`, after every handler call, seals them and hands each partition's rows to the
   producer as one batch (`live.producer.BatchProducer`): a case written twice in a call is
   sent once, with its last row;
3. when a partition's batch is acknowledged by the broker (acks=all), its rows and its last
   changelog offset (what Faust's recovery starts from when the data directory is kept) go to
   the partition's RocksDB database in one write batch, in seal order;
4. the adapter acknowledges a handler call's input only once `durable` says every row it
   sealed went through 3.

So RocksDB never holds a row the changelog may lack. A batch the broker does not take (after
the producer's own retries) is sent again, with the rows it carried unless newer ones were
written since; until it is taken its input stays unacknowledged. A write to RocksDB that fails
(a full disk) keeps the rows staged and is tried again at every flush; `failure` says what
failed, for readiness and the watchdog.

Fencing: `fence` drops the staged rows of revoked partitions and refuses writes to them until
`unfence` (the next recovery gives them back); late acknowledgements for them are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import rocksdict

from caseclock.live import failpoints, faust_compat
from caseclock.live.producer import BatchProducer, Record, last_offset, on_done
from caseclock.live.staged_rows import ABSENT, Layer, StagedRows

log = logging.getLogger("caseclock")


class NotOwned(Exception):
    """A write for a partition this worker no longer owns (fenced since its revocation)."""


class TableStore:
    """Rows of the `cases` table by partition and key, durable in the commit order (module
    docstring)."""

    def __init__(
        self,
        table: Any,
        producer: BatchProducer,
        on_failure: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._table = table
        self._on_failure = on_failure
        """Called with the number of changelog rows the broker did not take."""
        self._producer = producer
        self._staged = StagedRows()
        self._fenced: set[int] = set()
        self._changed = asyncio.Event()
        """Set whenever a batch settles or rows are applied (`wait_durable` wakes on it)."""
        self.failure: str | None = None
        """What failed last and has not worked since (a changelog batch not taken, a RocksDB
        write refused); None while the store is healthy."""
        self.offsets: dict[int, int | None] = {}
        """The changelog offset stored for each partition (what Faust's recovery starts
        from), as this store last read it (`read_offsets`) or stored it (an acknowledgement):
        known without asking RocksDB, which Faust closes before the worker's last words."""
        self.writes = 0
        """Rows written or deleted since this store was made."""

    @property
    def _store(self) -> Any:
        return self._table.data

    @functools.cached_property
    def _rocks(self) -> bool:
        """Whether the table's store is RocksDB (once: every row read and write asks)."""
        return faust_compat.is_rocksdb(self._store)

    @functools.cached_property
    def topic(self) -> str:
        """The changelog topic's name (once: every row written names it)."""
        name: str = self._table.changelog_topic.get_topic_name()
        return name

    @property
    def pending(self) -> bool:
        """Whether rows wait to be handed over or to be written to the local store."""
        return not self._staged.empty

    @property
    def seals(self) -> int:
        """The number of the latest flush that handed rows over (see `durable`)."""
        return self._staged.seals

    def durable(self, seal: int) -> bool:
        """Whether every row handed over by flushes up to number `seal` is acknowledged by the
        broker and written to the local store."""
        return self._staged.durable(seal)

    async def wait_durable(self, seal: int, within: float) -> bool:
        """Wait until `durable(seal)`, at most `within` seconds; whether it is."""
        if self._staged.durable(seal):
            return True
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)
        return self._staged.durable(seal)

    @property
    def unsent(self) -> bool:
        """Whether rows wait for a flush to hand them over (new, or sent again)."""
        return self._staged.unsent

    @property
    def flush_due(self) -> bool:
        """Whether a flush has work that nothing else will start: rows to hand over (new, or
        sent again) or acknowledged rows whose write to the local store failed."""
        return self._staged.unsent or bool(self._staged.with_applicable())

    def get(self, partition: int, key: bytes) -> bytes | None:
        staged = self._staged.get(partition, key)
        if staged is not ABSENT:
            return staged  # type: ignore[return-value]
        store = self._store
        if self._rocks:
            row: bytes | None = faust_compat.partition_db(store, partition).get(key)
            return row
        found: bytes | None = faust_compat.memory_rows(store)[0].get(key)
        return found

    def put(self, partition: int, key: bytes, row: bytes) -> None:
        self._write(partition, key, row)

    def delete(self, partition: int, key: bytes) -> None:
        self._write(partition, key, None)

    def _write(self, partition: int, key: bytes, row: bytes | None) -> None:
        if partition in self._fenced:
            raise NotOwned(f"partition {partition} was revoked: {key!r} not written")
        self.writes += 1
        self._staged.write(partition, key, row)

    def fence(self, partitions: Iterable[int]) -> int:
        """Revoked: drop these partitions' staged rows and refuse writes to them (until
        `unfence`); returns how many rows were dropped."""
        ps = set(partitions)
        self._fenced |= ps
        dropped = self._staged.drop(ps)
        if dropped:
            log.info(
                "caseclock: %d rows of revoked partitions %s dropped unwritten (their input "
                "was not acknowledged; the new owner reads it again)",
                dropped,
                sorted(ps),
            )
        self._changed.set()
        return dropped

    def unfence(self, partitions: Iterable[int]) -> None:
        """These partitions are this worker's again (recovered): writes are accepted."""
        self._fenced -= set(partitions)

    @property
    def fenced(self) -> frozenset[int]:
        return frozenset(self._fenced)

    def rows(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        """(key, row) of the rows of these partitions, staged rows included (RocksDB; the
        memory store keeps no partitions apart and yields every row), for the index rebuild
        and the recount: a consistent view as of the first row taken (RocksDB's iterators
        read a snapshot, the staged rows and the memory store's rows are copied then)."""
        store = self._store
        ps = sorted(partitions)
        staged = {p: self._staged.partition_rows(p) for p in ps}
        if self._rocks:
            for p in ps:  # Faust's item iterator skips its offset key
                over = staged[p]
                for key, row in faust_compat.visible_items(store, p):
                    if key not in over:
                        yield key, row
                yield from ((k, r) for k, r in over.items() if r is not None)
        else:
            over = {k: r for p in ps for k, r in staged[p].items()}
            data, _ = faust_compat.memory_rows(store)
            rows = [(k, r) for k, r in data.items() if k not in over]
            yield from rows
            yield from ((k, r) for k, r in over.items() if r is not None)

    @property
    def persistent(self) -> bool:
        """Whether rows outlive the process (RocksDB in the data directory)."""
        return self._rocks

    def read_offsets(self, partitions: Iterable[int]) -> dict[int, int | None]:
        """The changelog offsets stored for these partitions (None: none yet, or the memory
        store), read from the store, remembered in `offsets`, and returned."""
        from faust.types import TP

        out: dict[int, int | None] = {}
        for p in partitions:
            off = self._store.persisted_offset(TP(self.topic, p)) if self._rocks else None
            out[p] = self.offsets[p] = off
        return out

    async def settle(self, *, within: float) -> bool:
        """Flush, then wait (at most `within` seconds) until every row handed over is
        acknowledged and written; whether it is."""
        await self.flush()
        seal = self._staged.seals
        deadline = asyncio.get_running_loop().time() + within
        while not self._staged.durable(seal):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            if self._staged.unsent:  # a batch failed: sent again
                await self.flush()
            await self.wait_durable(seal, min(left, 0.5))
        return not self.pending

    async def flush(self) -> None:
        """Write what was acknowledged and not yet written (a write that failed before), then
        seal the staged rows and hand them to the producer, one batch per partition."""
        self._apply_acknowledged()
        layers = self._staged.seal()
        if not layers:
            return
        failpoints.hit("changelog-before-send")
        records = [
            Record(self.topic, key, row, layer.partition)
            for layer in layers
            for key, row in layer.rows.items()
        ]
        for layer in layers:
            layer.waiting = 1  # until the producer says how many batches it made
        try:
            acks = await self._producer.send(records)
        except Exception as exc:  # (metadata unavailable): every row is sent again
            self._failed(f"changelog rows not handed over: {exc!r}", len(records))
            for layer in layers:
                self._staged.settled(layer, None)
            return
        # Records were built layer by layer and a layer is one partition, so each batch the
        # producer made (one acknowledgement) belongs to exactly one layer.
        batches: dict[int, list[Any]] = {}  # id(ack) -> [ack, layer, rows in it]
        owners = (layer for layer in layers for _ in layer.rows)
        for layer in layers:
            layer.waiting = 0
        for ack, layer in zip(acks, owners, strict=True):
            batch = batches.get(id(ack))
            if batch is None:
                batches[id(ack)] = [ack, layer, 1]
                layer.waiting += 1
            else:
                batch[2] += 1
        for ack, layer, count in batches.values():
            on_done(ack, functools.partial(self._acknowledged, layer=layer, count=count))

    def _failed(self, what: str, rows: int) -> None:
        if self.failure is None:
            log.error("caseclock: %s; stopped acknowledging input until it works", what)
        self.failure = what
        self._on_failure(rows)
        self._changed.set()

    def _acknowledged(self, fut: asyncio.Future[Any], *, layer: Layer, count: int) -> None:
        if layer.partition in self._fenced:  # revoked: its rows were dropped
            return
        if fut.cancelled() or fut.exception() is not None:
            exc = None if fut.cancelled() else fut.exception()
            self._failed(
                f"{count} changelog rows of partition {layer.partition} not taken ({exc!r})",
                count,
            )
            self._staged.settled(layer, None)
            return
        if self._staged.settled(layer, last_offset(fut.result(), count)):
            failpoints.hit("changelog-after-ack")
            self._apply(layer.partition)

    def _apply_acknowledged(self) -> None:
        for p in self._staged.with_applicable():
            self._apply(p)

    def _apply(self, partition: int) -> None:
        """Write the partition's acknowledged layers at the head of its queue to the local
        store: one write batch with their rows and the last changelog offset."""
        layers = self._staged.applicable(partition)
        if not layers:
            return
        offset = layers[-1].last_offset
        try:
            if self._rocks:
                batch = rocksdict.WriteBatch(raw_mode=True)  # the binding caseclock installs
                for layer in layers:
                    for key, row in layer.rows.items():
                        if row is None:
                            batch.delete(key)
                        else:
                            batch.put(key, row)
                batch.put(faust_compat.offset_key(self._store), str(offset).encode())
                faust_compat.partition_db(self._store, partition).write(batch)
            else:
                data, where = faust_compat.memory_rows(self._store)
                for layer in layers:
                    for key, row in layer.rows.items():
                        if row is None:
                            data.pop(key, None)
                            where.pop(key, None)
                        else:
                            data[key] = row
                            where[key] = partition  # what Faust drops on revocation
        except Exception as exc:  # a full or read-only disk: staged, tried again
            self._failed(f"rows of partition {partition} not written to the store: {exc!r}", 0)
            return
        self._staged.applied(partition, len(layers))
        if self._rocks:
            known = self.offsets.get(partition)
            self.offsets[partition] = offset if known is None else max(known, offset)
        if (
            self.failure is not None
            and not self._staged.with_applicable()  # every partition written, not just this
            and not any(layer.failed for layer in self._staged.layers())
        ):
            log.info("caseclock: the store works again (after: %s)", self.failure)
            self.failure = None
        self._changed.set()
