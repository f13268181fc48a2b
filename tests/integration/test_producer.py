"""The batched produce path (caseclock.live.producer) on a broker: records land where a plain
aiokafka send would put them, in order per partition, with the batch's offsets; a record the
broker refuses fails alone."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from caseclock.live.producer import BatchProducer, Record, last_offset
from tests.integration.kafka_io import create_topics, read_all

PARTITIONS = 6


async def _read(bootstrap: str, topic: str) -> list[tuple[str, int, int, bytes | None, bytes]]:
    return await read_all(bootstrap, [topic])


async def test_batches_land_where_a_plain_send_would_in_order(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    batched, plain = f"{unique_prefix}-batched", f"{unique_prefix}-plain"
    await create_topics(kafka_bootstrap, [batched, plain], PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_batch_size=4096)
    await producer.start()
    try:
        keys = [f"CS-{i % 40}".encode() for i in range(400)]  # several batches per partition
        # 100-byte values: some partitions need several 4 KiB batches.
        records = [Record(batched, k, f"{i:<100}".encode()) for i, k in enumerate(keys)]
        records.append(Record(batched, b"pinned", b"to 5", partition=5))
        acks = await BatchProducer(lambda: producer).send(records)
        assert len(acks) == len(records)
        metas = await asyncio.gather(*acks)
        for k in keys[:40]:
            await producer.send_and_wait(plain, b"x", key=k)
    finally:
        await producer.stop()

    got = await _read(kafka_bootstrap, batched)
    where_plain = {key: p for _, p, _, key, _ in await _read(kafka_bootstrap, plain)}
    assert len(got) == len(records)
    for _, p, _, key, _ in got:
        assert p == (5 if key == b"pinned" else where_plain[key]), key
    # Per partition, the records keep the order they were handed over in.
    for p in range(PARTITIONS):
        ours = sorted((o, v) for _, q, o, k, v in got if q == p and k != b"pinned")
        assert [int(v) for _, v in ours] == sorted(int(v) for _, v in ours)
    # A batch's acknowledgement names its first offset: its last is first + count - 1.
    offset_of = {int(v): o for _, _, o, k, v in got if k != b"pinned"}
    batches: dict[int, list[int]] = {}
    for i, ack in enumerate(acks[:-1]):
        batches.setdefault(id(ack), []).append(i)
    assert len(batches) > PARTITIONS  # several batches in some partition (4 KiB each)
    for members in batches.values():
        meta = metas[members[0]]
        assert offset_of[members[0]] == meta.offset
        assert offset_of[members[-1]] == last_offset(meta, len(members))


async def test_a_record_the_broker_refuses_fails_alone(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    """A record larger than the batch size goes in a batch of its own, so when the broker
    refuses it for good (over its 1 MB message limit) its neighbours are still delivered."""
    topic = f"{unique_prefix}-big"
    await create_topics(kafka_bootstrap, [topic], 1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, max_batch_size=1024, max_request_size=4 * 2**20
    )
    await producer.start()
    try:
        records = [
            Record(topic, b"a", b"small", 0),
            Record(topic, b"b", b"x" * (2 * 2**20), 0),
            Record(topic, b"c", b"small too", 0),
        ]
        acks = await BatchProducer(lambda: producer).send(records)
        outcomes = await asyncio.gather(*acks, return_exceptions=True)
    finally:
        await producer.stop()
    assert not isinstance(outcomes[0], BaseException)
    assert not isinstance(outcomes[2], BaseException)
    assert isinstance(outcomes[1], MessageSizeTooLargeError), outcomes[1]
    assert [v for *_, v in await _read(kafka_bootstrap, topic)] == [b"small", b"small too"]
