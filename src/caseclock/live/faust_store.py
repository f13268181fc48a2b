"""The CaseStore port over the local store of Faust's `cases` table, its changelog in batches.

Faust's table writes a row by way of its current event (the partition of a write is the
partition of the message being processed) and sends one changelog record per write through
its per-record producer machinery, then records the changelog offset in RocksDB once per
record. Both cost: the table's write path was about a fifth of the worker's CPU during ingest
(bench/results/live-ingest-profile-2026-12-01.txt). And both tie writes to a stream, which
the timer is not.

This store keeps Faust's table for what it is good at (the data directory, recovery from the
changelog, standby bookkeeping, iteration for the index rebuild) and writes past it: a row goes
to the partition's RocksDB database (or straight into the memory store's dict), and its
changelog record is kept until `flush`. RocksDB rows wait for `flush` too, where each
partition's go in one write batch: one call into RocksDB per partition rather than one per row,
each of which let Faust's consumer thread take the interpreter (py-spy put RocksDB's `put` at
11 % of the worker's main thread once the input came in batches); reads see the waiting rows.
Flush then which hands every pending record to the producer in batches
(`live.producer.BatchProducer`) and, when a batch is acknowledged, stores its last changelog
offset once (what Faust's recovery starts from when the data directory is kept). The adapter
flushes after every handler call, before the batch's input offsets can be acknowledged, so
Faust's flush of the producer before a commit still covers every changelog record.

A changelog batch the broker does not take (after the producer's own retries) is repaired:
the current rows of its keys, not the old values, are sent again at the next flush, so a
repair can never put an older row after a newer one. Rows of a partition no longer owned are
not repaired (the new owner's row may be newer); that is logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import rocksdict

from caseclock.live import failpoints
from caseclock.live.producer import BatchProducer, Record, last_offset, on_done

log = logging.getLogger("caseclock")


class TableStore:
    """Rows of the `cases` table by partition and key; changelog records produced in batches."""

    def __init__(
        self,
        table: Any,
        producer: BatchProducer,
        owned: Callable[[], Iterable[int]],
        on_failure: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._table = table
        self._on_failure = on_failure
        """Called with the number of changelog rows the broker did not take."""
        self._producer = producer
        self._owned = owned
        self._pending: list[Record] = []
        """Changelog records written and not yet handed to the producer, in write order."""
        self._repair: set[tuple[int, bytes]] = set()
        """(partition, key) whose changelog record the broker did not take."""
        self._unwritten: dict[int, dict[bytes, bytes | None]] = {}
        """RocksDB rows (None: deleted) written since the last flush, by partition."""
        self._unacknowledged: set[asyncio.Future[Any]] = set()
        """Changelog batches handed to the producer and not yet acknowledged (or failed)."""
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
        return hasattr(self._store, "_db_for_partition")

    @functools.cached_property
    def topic(self) -> str:
        """The changelog topic's name (once: every row written names it)."""
        name: str = self._table.changelog_topic.get_topic_name()
        return name

    @property
    def pending(self) -> bool:
        """Whether rows wait to be written or changelog records to be handed over."""
        return bool(self._pending or self._repair or self._unwritten)

    def take_pending(self) -> list[Record]:
        """The changelog records not yet handed to the producer, oldest first (and takes
        them): repairs first, then what was written since the last flush."""
        if self._repair:
            self._pending[:0] = self._repairs()
        records, self._pending = self._pending, []
        return records

    def get(self, partition: int, key: bytes) -> bytes | None:
        store = self._store
        if self._rocks:
            waiting = self._unwritten.get(partition)
            if waiting is not None and key in waiting:
                return waiting[key]
            row: bytes | None = store._db_for_partition(partition).get(key)
            return row
        found: bytes | None = store.data.get(key)
        return found

    def put(self, partition: int, key: bytes, row: bytes) -> None:
        self._write(partition, key, row)
        self._pending.append(Record(self.topic, key, row, partition))

    def delete(self, partition: int, key: bytes) -> None:
        self._write(partition, key, None)
        self._pending.append(Record(self.topic, key, None, partition))

    def _write(self, partition: int, key: bytes, row: bytes | None) -> None:
        self.writes += 1
        store = self._store
        if self._rocks:
            waiting = self._unwritten.get(partition)
            if waiting is None:
                waiting = self._unwritten[partition] = {}
            waiting[key] = row
        elif row is None:
            store.data.pop(key, None)
            store._key_partition.pop(key, None)
        else:
            store.data[key] = row
            store._key_partition[key] = partition  # what Faust drops on revocation

    def rows(self, partitions: Iterable[int]) -> Iterator[tuple[bytes, bytes]]:
        """(key, row) of the stored rows of these partitions (RocksDB; the memory store
        keeps no partitions apart and yields every row), for the index rebuild: RocksDB's
        iterators read a snapshot, so writes meanwhile are safe; the memory store's rows are
        copied first for the same reason."""
        store = self._store
        if self._rocks:
            for p in sorted(partitions):  # Faust's item iterator skips its offset key
                yield from store._visible_items(store._db_for_partition(p))
        else:
            yield from list(store.data.items())

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
        """Flush, then wait (at most `within` seconds) until every changelog batch handed
        over is acknowledged; whether then every row is written and its offset stored."""
        await self.flush()
        if self._unacknowledged:
            await asyncio.wait(set(self._unacknowledged), timeout=within)
            await asyncio.sleep(0)  # the acknowledgements' callbacks, scheduled before ours
        return not self._unacknowledged and not self.pending

    def write_rows(self) -> None:
        """Write the waiting RocksDB rows, a batch per partition (before their changelog
        records go out, so a stored changelog offset never runs ahead of the rows)."""
        if not self._unwritten:
            return
        store = self._store
        for partition, rows in self._unwritten.items():
            batch = rocksdict.WriteBatch(raw_mode=True)  # the binding caseclock installs
            for key, row in rows.items():
                if row is None:
                    batch.delete(key)
                else:
                    batch.put(key, row)
            store._db_for_partition(partition).write(batch)
        self._unwritten = {}

    async def flush(self) -> None:
        """Write the waiting rows, then hand the pending changelog records (and repairs) to
        the producer, in batches."""
        self.write_rows()
        records = self.take_pending()
        if not records:
            return
        failpoints.hit("changelog-before-send")
        try:
            acks = await self._producer.send(records)
        except Exception as exc:  # (metadata unavailable): every row is repaired next time
            log.warning("caseclock: could not hand %d changelog rows over: %s", len(records), exc)
            self._on_failure(len(records))
            self._repair.update((r.partition or 0, r.key or b"") for r in records)
            return
        batches: dict[int, tuple[Any, list[Record]]] = {}
        for r, ack in zip(records, acks, strict=True):
            batches.setdefault(id(ack), (ack, []))[1].append(r)
        for ack, members in batches.values():
            fut = on_done(ack, functools.partial(self._acknowledged, members=members))
            if not fut.done():
                self._unacknowledged.add(fut)

    def _repairs(self) -> list[Record]:
        owned = set(self._owned())
        out = []
        for p, key in sorted(self._repair):
            if p in owned:
                out.append(Record(self.topic, key, self.get(p, key), p))
            else:
                log.error(
                    "caseclock: the changelog may miss the latest row of %r: partition %s is "
                    "no longer this worker's",
                    key,
                    p,
                )
        self._repair.clear()
        return out

    def _acknowledged(self, fut: asyncio.Future[Any], *, members: list[Record]) -> None:
        self._unacknowledged.discard(fut)
        p = members[0].partition or 0
        if fut.cancelled() or fut.exception() is not None:
            exc = None if fut.cancelled() else fut.exception()
            log.warning(
                "caseclock: %d changelog rows of partition %s not taken (%s); sent again",
                len(members),
                p,
                exc,
            )
            self._repair.update((p, r.key or b"") for r in members)
            self._on_failure(len(members))
            return
        failpoints.hit("changelog-after-ack")
        if self._rocks:
            from faust.types import TP

            offset = last_offset(fut.result(), len(members))
            self._store.set_persisted_offset(TP(self.topic, p), offset)
            known = self.offsets.get(p)
            self.offsets[p] = offset if known is None else max(known, offset)
