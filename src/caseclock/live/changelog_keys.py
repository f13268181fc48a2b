"""Which cases changed in a range of the table's changelog: the keys a restart from a periodic
index snapshot reads again (`live.index_snapshots`).

Faust's recovery has already brought RocksDB up to the changelog's end when this runs, so
only the keys are wanted, never the rows: a consumer of its own (no group, nothing
committed) assigned the partitions, seeked to the range's first offset and read to its last.
A range not read within the time given, or not at all (the broker away, a fetch refused), is
reported as None: the caller then reads the partition's rows instead, so a restart never
fails for this read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from caseclock.live.config import Config, kafka_security

log = logging.getLogger("caseclock")

FETCH_BYTES = 16 * 1024 * 1024
"""Per fetch: a compacted changelog's records are small and wanted in bulk."""


async def changed_keys(
    cfg: Config,
    topic: str,
    ranges: Mapping[int, range],
    *,
    within: float,
) -> dict[int, set[bytes] | None]:
    """Per partition, the keys of the changelog records at the offsets in its range (a
    tombstone's too), or None when the range was not read within `within` seconds or the
    broker failed the read."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    out: dict[int, set[bytes] | None] = {}
    todo: dict[Any, range] = {}
    for p, offsets in ranges.items():
        out[p] = set()
        if offsets:
            todo[TopicPartition(topic, p)] = offsets
    if not todo:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a first offset compacted away: the next one kept
        fetch_max_bytes=FETCH_BYTES,
        max_partition_fetch_bytes=FETCH_BYTES,
        **kafka_security(cfg),
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        await asyncio.wait_for(consumer.start(), within)
        consumer.assign(list(todo))
        for tp, offsets in todo.items():
            consumer.seek(tp, offsets.start)
        while todo:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            fetched = await consumer.getmany(*todo, timeout_ms=round(min(left, 1.0) * 1000))
            for tp, records in fetched.items():
                wanted = todo.get(tp)
                keys = out[tp.partition]
                if wanted is None or keys is None:
                    continue
                last = wanted.stop - 1
                for r in records:
                    if r.offset > last:
                        break
                    if r.key is not None:
                        keys.add(r.key)
            for tp in list(todo):  # read past the range, or to the end (compacted tail)
                position = await consumer.position(tp)
                end = consumer.highwater(tp)
                if position > todo[tp].stop - 1 or (end is not None and position >= end):
                    del todo[tp]
    except Exception as exc:  # TimeoutError, or the broker's (KafkaError, OSError)
        why = f"not read within {within:.0f} s" if isinstance(exc, TimeoutError) else repr(exc)
        log.warning(
            "caseclock: changelog of partitions %s: %s; their rows are read",
            sorted(tp.partition for tp in todo),
            why,
        )
        for tp in todo:
            out[tp.partition] = None
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    return out
