"""The raw ceiling: the least a Python consumer on aiokafka can do per event, on the same broker
and topics as the worker: consume, parse the JSON (orjson), produce one small record per event
(acks=all, not waited on one by one), commit at the end.

    python bench/raw_ceiling.py --bootstrap 127.0.0.1:9092 --topics a,b --out t --expect N

Run by bench/live_bench.py in a process of its own (as the worker is); prints one JSON object:
events, seconds from the first record received to the last produced record acknowledged,
events/s and the CPU seconds of this process over that interval.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def run(
    bootstrap: str, topics: list[str], out: str, expect: int, group: str, give_up_s: float
) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await consumer.start()
    await producer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n = 0
        first: float | None = None
        cpu0 = 0.0
        pending: list[asyncio.Future[Any]] = []
        deadline = time.monotonic() + give_up_s
        while n < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batch and first is None:
                first, cpu0 = time.perf_counter(), time.process_time()
            for records in batch.values():
                for r in records:
                    doc = orjson.loads(r.value)
                    small = orjson.dumps({"case_id": doc["case_id"], "type": doc["type"]})
                    pending.append(await producer.send(out, small, key=r.key))
                    n += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        done, cpu1 = time.perf_counter(), time.process_time()
        await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
    wall = (done - first) if first is not None else None
    return {
        "events": n,
        "expected": expect,
        "wall_s": None if wall is None else round(wall, 3),
        "events_per_s": None if not wall else round(n / wall, 1),
        "cpu_s": round(cpu1 - cpu0, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topics", required=True, help="input topics, comma-separated")
    p.add_argument("--out", required=True, help="topic for the small records")
    p.add_argument("--expect", type=int, required=True, help="records to consume")
    p.add_argument("--group", required=True, help="consumer group (offsets committed at the end)")
    p.add_argument("--give-up", type=float, default=600.0, help="seconds")
    a = p.parse_args(argv)
    topics = [t for t in a.topics.split(",") if t]
    result = asyncio.run(run(a.bootstrap, topics, a.out, a.expect, a.group, a.give_up))
    print(orjson.dumps(result).decode())
    return 0 if result["events"] == a.expect else 1


if __name__ == "__main__":
    sys.exit(main())
