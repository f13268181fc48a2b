"""Kafka I/O of the tests, outside any worker: create topics, produce messages, read topics back.

Plain aiokafka clients with no consumer group, so reading never moves the workers' offsets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.deployment import Deployment


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes | None]]
) -> list[tuple[str, int, int]]:
    """Send (topic, key, value) in order; returns (topic, partition, offset) of each."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    try:
        out = []
        for topic, key, value in messages:
            md = await p.send_and_wait(topic, value, key=key)
            out.append((md.topic, md.partition, md.offset))
        return out
    finally:
        await p.stop()


def event_message(topic_of: Mapping[str, str], doc: Mapping[str, Any]) -> tuple[str, bytes, bytes]:
    """(topic, key, value) for an inbound event document, keyed by case_id."""
    return topic_of[doc["type"]], str(doc["case_id"]).encode(), orjson.dumps(doc)


async def topic_partitions(c: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics` (that exist) as `c` sees them."""
    tps: list[TopicPartition] = []
    for t in topics:
        parts = c.partitions_for_topic(t)
        if parts is None:
            await c._client.force_metadata_update()  # the topic was just created
            parts = c.partitions_for_topic(t) or set()
        tps.extend(TopicPartition(t, p) for p in sorted(parts))
    return tps


async def read_all(
    bootstrap: str, topics: Iterable[str], idle: float = 1.0, give_up_after: float = 30.0
) -> list[tuple[str, int, int, bytes | None, bytes]]:
    """Every record currently in `topics` (from the beginning, no group), as
    (topic, partition, offset, key, value). Stops after `idle` seconds without news."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = await topic_partitions(c, topics)
        if not tps:
            return []
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[tuple[str, int, int, bytes | None, bytes]] = []
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=int(idle * 1000))
            for tp, records in batch.items():
                out.extend((tp.topic, tp.partition, r.offset, r.key, r.value) for r in records)
            positions = {tp: await c.position(tp) for tp in tps}
            if not batch and all(positions[tp] >= end[tp] for tp in tps):
                break
        return out
    finally:
        await c.stop()


async def read_alerts(bootstrap: str, dep: Deployment, idle: float = 1.0) -> list[dict[str, Any]]:
    records = await read_all(bootstrap, dep.alert_topics.values(), idle=idle)
    return [orjson.loads(v) for *_, v in records if v is not None]
