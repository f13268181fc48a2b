"""One case with a great many events (an automated monitor posting notes for weeks), while the
other cases' alerts stay on time.

The big case is opened (P3) and acknowledged at once, so its update clock runs throughout; then
BIG_EVENTS system notes (internal: they change no clock) are produced in chunks as fast as a
batching producer sends them, a chunk ahead of the worker (CI: 20,000;
CASECLOCK_FAULT_SCALE=10 gives the 200,000 of the issue). The
load (support.LoadGenerator) goes on over other cases on every partition, the big case's
included: seeded in full, then quiet during the flood (the flood holds up the big case's
partition, and only facts that suppress nothing may be delayed without changing what is due).

A thread tails the table's changelog (`<app_id>-cases-changelog`) for the big case's key; the
flood stops once a stored row exceeds ROW_BOUND, so that a failing run does not write gigabytes
of changelog. Asserted: the worker stays up (no exit, no restart); every row stored
for the big case stayed under ROW_BOUND (16 KiB, the bound of issue 7), the latest included;
the worker applied every note; and the alerts (other cases' and the big case's own) equal
replay of the exact bytes sent. Figures: the flood's produce and processing rates, the row's
size, the other cases' lateness during the flood, on the big case's partition and on the others.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import fired, percentile
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, elapsed_s, run_checks, scaled
from tests.integration.faults.load import FAULT_POLICY, AsyncThread, LoadGenerator, staged_fault
from tests.integration.faults.offsets import _committed, wait_committed
from tests.integration.kafka_io import read_alerts
from tests.integration.metrics_text import metric_samples
from tests.integration.scripts import Sent, partition_of
from tests.integration.times import US, iso, now_us, sleep_until

BIG_EVENTS = scaled(20_000)
ROW_BOUND = 16 * 1024
CHUNK = 2000
BIG = "BIG-0"
SEED_S = 5.0
TAIL_S = 5.0


class RowWatch(AsyncThread):
    """Tails one changelog partition in a thread: how many rows were stored for `key`, the
    largest and the latest; `over` is set when one exceeds `bound`."""

    def __init__(self, bootstrap: str, topic: str, partition: int, key: bytes, bound: int) -> None:
        super().__init__("row-watch")
        self.bootstrap, self.tp = bootstrap, TopicPartition(topic, partition)
        self.key, self.bound = key, bound
        self.rows = self.largest = self.latest = 0
        self.over = threading.Event()

    def __enter__(self) -> RowWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._join(60)

    async def _run(self) -> None:
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await c.start()
        try:
            c.assign([self.tp])
            await c.seek_to_beginning(self.tp)
            while not self._stop.is_set():
                batch = await c.getmany(self.tp, timeout_ms=300, max_records=5000)
                for record in batch.get(self.tp, []):
                    if record.key == self.key and record.value is not None:
                        self.rows += 1
                        self.latest = len(record.value)
                        self.largest = max(self.largest, self.latest)
                        if self.latest > self.bound:
                            self.over.set()
        finally:
            await c.stop()


async def flood(dep: Deployment, n: int, watch: RowWatch) -> list[Sent]:
    """`n` internal system notes on the big case, sent CHUNK at a time as fast as a batching
    producer goes, each chunk once the worker committed all but the last one (so the
    worker always has a chunk to read, and a row over the bound stops the flood within one
    chunk instead of after gigabytes of changelog)."""
    p = AIOKafkaProducer(
        bootstrap_servers=dep.bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await p.start()
    sent: list[Sent] = []
    topic, key = dep.topic("case-noted"), BIG.encode()
    try:
        for start in range(0, n, CHUNK):
            deadline = time.monotonic() + 120  # a failure guard only
            # Paced by the group's committed offset, not by rows stored: the batched worker
            # writes a case's row once per batch, however many of its events the batch holds.
            while len(sent) > CHUNK and time.monotonic() < deadline:
                if watch.over.is_set() or watch.error is not None:
                    return sent
                mark = sent[-CHUNK - 1]
                done = await _committed(dep.bootstrap, dep.app_id)
                if done.get(TopicPartition(mark.topic, mark.partition), 0) > mark.offset:
                    break
                await asyncio.sleep(0.2)
            if watch.over.is_set():
                break
            made = []
            for i in range(start, min(n, start + CHUNK)):
                at = now_us()
                doc = {
                    "event_id": f"{BIG}-note-{i}",
                    "type": "case-noted",
                    "case_id": BIG,
                    "author": "system",
                    "visibility": "internal",
                    "occurred_at": iso(at),
                }
                value = orjson.dumps(doc)
                made.append((value, at, await p.send(topic, value, key=key)))
            for value, at, fut in made:
                md = await fut
                sent.append(Sent(md.topic, md.partition, md.offset, key, value, at, "flood"))
    finally:
        await p.stop()
    return sent


async def open_big(dep: Deployment) -> list[Sent]:
    """The big case: opened at P3 and acknowledged at the same instant."""
    p = AIOKafkaProducer(bootstrap_servers=dep.bootstrap, acks="all")
    await p.start()
    at = now_us()
    out = []
    try:
        for type_, fields in (
            ("case-opened", {"priority": 3, "subject": "automated monitor"}),
            ("case-noted", {"author": "support", "visibility": "public"}),
        ):
            doc = {
                "event_id": f"{BIG}-{type_}",
                "type": type_,
                "case_id": BIG,
                "occurred_at": iso(at),
                **fields,
            }
            value = orjson.dumps(doc)
            md = await p.send_and_wait(dep.topic(type_), value, key=BIG.encode())
            out.append(Sent(md.topic, md.partition, md.offset, BIG.encode(), value, at, "big"))
    finally:
        await p.stop()
    return out


def test_big_case(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, policy=FAULT_POLICY)
    big_partition = partition_of(BIG.encode(), dep.partitions)
    worker = WorkerProcess(dep, "w1")
    load = LoadGenerator(dep, rate=80, seed=5)
    changelog = f"{dep.app_id}-cases-changelog"
    flooded: list[Sent] = []
    try:
        worker.start().wait_ready()
        t0 = now_us()
        load.start()
        opened = run(open_big(dep))
        time.sleep(SEED_S)
        with RowWatch(dep.bootstrap, changelog, big_partition, BIG.encode(), ROW_BOUND) as watch:
            with staged_fault(load) as fw:
                fw.start_us = now_us()
                flooded = run(flood(dep, BIG_EVENTS, watch))
                produced_us = now_us()
                marks = {TopicPartition(s.topic, s.partition): s.offset + 1 for s in flooded[-1:]}
                try:
                    wait_committed(dep, marks, 60 + BIG_EVENTS / 100, "the flood")
                except AssertionError:
                    if not (watch.over.is_set() or not worker.alive()):
                        raise
                fw.recovered_us = now_us()
            time.sleep(1.0)  # the last rows reach the watch
        sent = load.stop() + opened + flooded
        cutoff = now_us() + round(TAIL_S * US)
        sleep_until(cutoff)
        live = run(read_alerts(dep.bootstrap, dep, idle=0.5))
        alive, restarts = worker.alive(), worker.restarts
        metrics = worker.get("/metrics")[1].decode() if alive else ""
    finally:
        load.stop()
        worker.stop()

    flood_s = elapsed_s(fw.start_us, produced_us)
    processed_s = elapsed_s(fw.start_us, fw.recovered_us)
    figures.update(
        big_case_events=len(flooded),
        big_case_events_planned=BIG_EVENTS,
        flood_produced_s=flood_s,
        flood_produced_per_s=round(len(flooded) / flood_s) if flood_s else None,
        flood_processed_s=processed_s,
        flood_processed_per_s=round(len(flooded) / processed_s) if processed_s else None,
        row_bound_bytes=ROW_BOUND,
        row_largest_bytes=watch.largest,
        row_latest_bytes=watch.latest,
        rows_stored=watch.rows,
        messages_sent=len(sent),
        stalls=restarts,
    )

    def worker_stayed_up() -> None:
        assert alive and restarts == 0, f"alive={alive} restarts={restarts}: {worker.log_tail()}"

    def row_stayed_under_bound() -> None:
        assert watch.error is None, f"reading {changelog}: {watch.error!r}"
        assert watch.rows > 0, f"no row stored for {BIG} in {changelog}"
        assert watch.largest <= ROW_BOUND, (
            f"the row of {BIG} reached {watch.largest} bytes (bound {ROW_BOUND}) "
            f"after {len(flooded)} events were sent, {watch.rows} rows stored"
            + (": the flood was stopped there" if watch.over.is_set() else "")
        )

    def every_note_applied() -> None:
        assert len(flooded) == BIG_EVENTS, f"only {len(flooded)} of {BIG_EVENTS} notes were sent"
        noted = metric_samples(metrics, "caseclock_events_consumed_total")
        applied = sum(v for labels, v in noted.items() if dict(labels).get("type") == "case-noted")
        mine = sum(1 for s in sent if s.topic == dep.topic("case-noted") and s.label != "resend")
        assert applied == mine, f"{applied} notes applied, {mine} sent"

    def alerts_are_replays() -> None:
        expected, _ = compare_with_replay(
            dep, sent, live, figures, t0_us=t0, cutoff_us=cutoff, logs=[worker.log_path]
        )
        # Lateness of the other cases' alerts that fell due during the flood (from when replay
        # fires them), on the big case's partition and on the others.
        when = {a["alert_id"]: fired(a) for a in expected if a["case_id"] != BIG}
        late: dict[str, list[float]] = {"big_partition": [], "other_partitions": []}
        for a in {a["alert_id"]: a for a in sorted(live, key=fired, reverse=True)}.values():
            at = when.get(a["alert_id"])
            if at is None or not fw.start_us <= at <= fw.recovered_us:
                continue
            on_big = partition_of(a["case_id"].encode(), dep.partitions) == big_partition
            late["big_partition" if on_big else "other_partitions"].append((fired(a) - at) / US)
        for where, values in late.items():
            figures.update(
                **{
                    f"lateness_during_flood_{where}_s": {
                        "alerts": len(values),
                        "p50": round(percentile(values, 50), 3) if values else None,
                        "max": round(max(values), 3) if values else None,
                    }
                }
            )

    try:
        run_checks(
            figures,
            worker_stayed_up,
            row_stayed_under_bound,
            every_note_applied,
            alerts_are_replays,
        )
    finally:
        print(f"\nbig case: {figures.values}")
