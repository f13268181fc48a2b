"""The workers' consumer-group offsets: wait until the group committed what was sent.

A committed offset means the worker applied the messages before it and flushed what they
caused, so a scenario waits on offsets rather than on time before it stages a fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.deployment import Deployment, run
from tests.integration.faults.figures import elapsed_s
from tests.integration.kafka_io import topic_partitions
from tests.integration.times import now_us


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        got = await admin.list_consumer_group_offsets(group)
        return {tp: om.offset for tp, om in got.items() if om.offset >= 0}
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = await topic_partitions(c, topics)
        c.assign(tps)  # aiokafka's stop() trips over a consumer never assigned anything
        return dict(await c.end_offsets(tps)) if tps else {}
    finally:
        await c.stop()


def wait_committed(
    dep: Deployment,
    marks: Mapping[TopicPartition, int],
    timeout: float,
    what: str = "",
    unless: Callable[[], bool] | None = None,
) -> float:
    """Wait until the workers' consumer group committed every partition of `marks` up to its
    offset (the worker applied those messages and flushed what they caused), or `unless`
    holds (the worker went down: nobody will commit); returns the seconds waited. Faust
    commits every few seconds, so this is a few seconds at least."""
    t0 = now_us()
    behind: dict[TopicPartition, tuple[int, int]] = dict.fromkeys(marks, (0, 0))
    last_error: Exception | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if unless is not None and unless():
            return elapsed_s(t0)
        try:
            done = run(_committed(dep.bootstrap, dep.app_id))
        except Exception as e:  # the coordinator may be moving: ask again
            last_error = e
        else:
            last_error = None
            behind = {tp: (done.get(tp, 0), m) for tp, m in marks.items() if done.get(tp, 0) < m}
            if not behind:
                return elapsed_s(t0)
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout}s waiting for the group to commit {what}: "
        f"(committed, wanted) {sorted(behind.items())[:8]} {last_error or ''}"
    )


def wait_drained(
    dep: Deployment, timeout: float, what: str = "", unless: Callable[[], bool] | None = None
) -> float:
    """Wait until the workers committed everything now in the input topics (wait_committed)."""
    marks = run(end_offsets(dep.bootstrap, dep.input_topics))
    return wait_committed(dep, {tp: m for tp, m in marks.items() if m > 0}, timeout, what, unless)
