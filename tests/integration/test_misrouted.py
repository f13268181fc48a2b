"""A message produced to another partition than its key's is dead-lettered as `misrouted`
(CASECLOCK_INPUT_PARTITIONER, docs/operations.md#input-partitioner), and the worker goes on.

One case-opened goes to an explicit wrong partition, as a producer with another partitioner
would put it; a valid case follows on its own partition and must still get its elevation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from caseclock.contracts.deadletter import DeadLetter
from caseclock.live.partitioning import partition_for
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.kafka_io import read_alerts, read_all
from tests.integration.metrics_text import metric_samples
from tests.integration.times import iso, now_us, wait_until


async def produce_to(bootstrap: str, messages: list[tuple[str, bytes, bytes, int]]) -> None:
    """Send (topic, key, value, partition), each to its explicit partition."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    try:
        for topic, key, value, partition in messages:
            md = await p.send_and_wait(topic, value, key=key, partition=partition)
            assert md.partition == partition
    finally:
        await p.stop()


def case_opened(case_id: str) -> bytes:
    doc = {
        "type": "case-opened",
        "event_id": f"{case_id}-e1",
        "case_id": case_id,
        "occurred_at": iso(now_us()),
        "priority": 1,
    }
    return orjson.dumps(doc)


def test_a_misrouted_message_is_dead_lettered_and_the_worker_goes_on(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path)
    n = dep.partitions
    bad, good = "mis-1", "mis-2"
    right = partition_for("murmur2", bad.encode(), n)
    wrong = next(p for p in range(n) if p != right)
    topic = dep.topic("case-opened")
    bad_value, good_value = case_opened(bad), case_opened(good)

    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
        run(
            produce_to(
                kafka_bootstrap,
                [
                    (topic, bad.encode(), bad_value, wrong),
                    (topic, good.encode(), good_value, partition_for("murmur2", good.encode(), n)),
                ],
            )
        )
        records: list[Any] = []

        def dead_lettered() -> bool:
            records[:] = run(read_all(kafka_bootstrap, [dep.dead_letter_topic], idle=0.2))
            return bool(records)

        wait_until(dead_lettered, 20, 0.2, "the dead letter", lambda: w.log_tail())
        alerts: list[dict[str, Any]] = []

        def elevated() -> bool:
            alerts[:] = run(read_alerts(kafka_bootstrap, dep, idle=0.2))
            return any(a["case_id"] == good for a in alerts)

        wait_until(elevated, 20, 0.2, "the valid case's elevation", lambda: w.log_tail())
        counts: dict[Any, float] = {}

        def counted() -> bool:
            status, body = w.get("/metrics")
            assert status == 200
            counts.update(metric_samples(body.decode(), "caseclock_dead_letters_total"))
            return counts.get((("reason", "misrouted"),)) == 1.0

        wait_until(counted, 10, 0.2, "the dead-letter counter", lambda: counts)
        assert w.proc is not None and w.proc.poll() is None, w.log_tail()
        assert w.ready(), w.log_tail()

    [(_, _, _, key, value)] = records
    dl = DeadLetter.model_validate_json(value)
    assert dl.reason == "misrouted", dl
    assert (dl.topic, dl.partition) == (topic, wrong)
    assert dl.detail.startswith(f"on partition {wrong}, murmur2 puts key '{bad}' on {right}; ")
    assert key == bad.encode() and dl.original_value() == bad_value
    assert {a["case_id"] for a in alerts} == {good}
