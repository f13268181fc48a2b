"""Raw aiokafka round trip against the test broker (admin, producer, consumer group)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def test_produce_consume_roundtrip(kafka_bootstrap: str, unique_prefix: str) -> None:
    topic = f"{unique_prefix}-roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)])
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(described[0]["partitions"]) == 2

    sent = [(b"case-1", b"opened", 0), (b"case-2", b"opened", 1), (b"case-1", b"acked", 0)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, partition in sent:
            meta = await producer.send_and_wait(topic, value=value, key=key, partition=partition)
            assert meta.partition == partition
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{unique_prefix}-group",  # exercises the group coordinator / offsets topic
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[bytes | None, bytes | None, int]] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(sent):
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    received.extend((r.key, r.value, r.partition) for r in records)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert sorted(received) == sorted(sent)
    # order is kept within a partition
    assert [r for r in received if r[2] == 0] == [s for s in sent if s[2] == 0]
