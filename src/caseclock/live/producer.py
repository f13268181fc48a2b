"""Records to Kafka in batches: the produce path of the worker's hot loops.

Faust's `Topic.send` wraps every record in its own message, future, buffer entry and sensor
calls before aiokafka adds it to a batch; profiles of the firing path put that machinery at
about a sixth of the worker's CPU (bench/results/live-firing-profile-2026-12-01.txt). Alerts,
dead letters and changelog rows are produced here instead, on the same aiokafka producer
Faust owns (so Faust's flush before a commit still covers them): records are grouped by topic
and partition, appended to aiokafka `BatchBuilder`s and handed over with `send_batch`, one
future per batch.

A keyed record without a partition goes where aiokafka's own partitioner would put it
(murmur2 of the key, as Kafka's Java client does), so alerts keep landing in their case's
partition of the alert topic. aiokafka's murmur2 reads a byte at a time in Python; choosing
partitions with it was 12 % of the timer's evaluations in a burst (py-spy, 2026-12-02), so
with aiokafka's default partitioner the same hash is computed here a word at a time
(`live.partitioning.murmur2`, also what the input path checks keys against).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from caseclock.live import faust_compat
from caseclock.live.partitioning import murmur2 as murmur2  # explicit re-export

ProducerOf = Callable[[], Any]
"""Returns the running aiokafka producer (Faust creates it when the worker starts)."""


class Record(NamedTuple):
    """One record to produce; `partition` None means by key (or any, without a key). (A named
    tuple: one is built per changelog row and alert, see `live.ports.Origin`.)"""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


class BatchProducer:
    """Hands records to an aiokafka producer in batches, one per topic-partition at a time."""

    def __init__(self, producer_of: ProducerOf) -> None:
        self._producer_of = producer_of

    async def send(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        """Hand every record over; returns, per record, an awaitable of its batch's
        acknowledgement (aiokafka's RecordMetadata of the batch: `offset` is the batch's
        first offset). Records of one topic-partition keep their order."""
        producer = self._producer_of()
        groups: dict[tuple[str, int], list[int]] = {}
        keyed: dict[str, list[int] | None] = {}
        """Per topic: its partitions, for murmur2 here; None: ask aiokafka per record."""
        for i, r in enumerate(records):
            if r.topic not in keyed:
                await producer.partitions_for(r.topic)  # metadata, once per topic and call
                keyed[r.topic] = _by_murmur2(producer, r.topic)
            parts = keyed[r.topic]
            p = r.partition
            if p is None:
                # aiokafka's own choice (its partitioner over the topic's metadata), so that
                # a batch lands exactly where a plain send of the record would have.
                if parts and r.key is not None:
                    p = parts[(murmur2(r.key) & 0x7FFFFFFF) % len(parts)]
                else:
                    p = faust_compat.partition_of(producer, r.topic, r.key, r.value)
            groups.setdefault((r.topic, p), []).append(i)
        acks: list[Awaitable[Any] | None] = [None] * len(records)
        for (topic, p), idx in groups.items():
            for members, batch in self._batches(producer, records, idx):
                fut = await producer.send_batch(batch, topic, partition=p)
                for i in members:
                    acks[i] = fut
        out = [a for a in acks if a is not None]
        assert len(out) == len(records)  # every record is in exactly one group
        return out

    @staticmethod
    def _batches(
        producer: Any, records: Sequence[Record], idx: list[int]
    ) -> list[tuple[list[int], Any]]:
        """The records `idx` in batches of the producer's max_batch_size, in order. A fresh
        batch takes any one record, however large (aiokafka's rule), so a record the broker
        refuses for being too large fails alone."""
        out: list[tuple[list[int], Any]] = []
        batch = producer.create_batch()
        members: list[int] = []
        for i in idx:
            r = records[i]
            if batch.append(key=r.key, value=r.value, timestamp=None) is None:
                out.append((members, batch))  # full: the next batch starts with this record
                batch, members = producer.create_batch(), []
                batch.append(key=r.key, value=r.value, timestamp=None)
            members.append(i)
        if members:
            out.append((members, batch))
        return out


def _by_murmur2(producer: Any, topic: str) -> list[int] | None:
    """The topic's partitions as aiokafka's default partitioner indexes them, if the producer
    uses it (then a key's partition is `murmur2` here); None for any other partitioner."""
    if not faust_compat.uses_default_partitioner(producer):
        return None
    return faust_compat.known_partitions(producer, topic) or None


def last_offset(metadata: Any, count: int) -> int:
    """The offset of the last of `count` records of a batch acknowledged with `metadata`."""
    return int(metadata.offset) + count - 1


def on_done(
    fut: Awaitable[Any], callback: Callable[[asyncio.Future[Any]], None]
) -> asyncio.Future[Any]:
    """Run `callback` when a batch's acknowledgement settles (it is a future or a coroutine);
    returns the future it is called with."""
    if not isinstance(fut, asyncio.Future):
        fut = asyncio.ensure_future(fut)
    fut.add_done_callback(callback)
    return fut
