"""A killed worker's cases come back, for both stores: from RocksDB's data directory when it
is kept, from the table's changelog when it is gone (memory://, or RocksDB on a new disk).

The broker half of the CaseStore contract (tests/contract/test_case_store.py checks the rest
in-process). The rows are seen from outside twice: the open-cases gauge, which a recovered
worker rebuilds from the rows of its partitions, and the alerts, which only a recovered row
gets right (an acknowledgement recorded before the kill must not be forgotten after it).
"""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from caseclock.cli.simulator import event_doc
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.kafka_io import event_message, produce, read_alerts
from tests.integration.metrics_text import metric_samples
from tests.integration.times import wait_until


async def committed(bootstrap: str, group: str, topics: set[str]) -> int:
    """How many input messages the worker's consumer group has committed, over all `topics`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(max(0, o.offset) for tp, o in offsets.items() if tp.topic in topics)


def open_cases(w: WorkerProcess) -> float | None:
    """The worker's open-cases gauge summed over its labels (None while it has no samples)."""
    status, body = w.get("/metrics")
    if status != 200:
        return None
    samples = metric_samples(body.decode(), "caseclock_open_cases")
    return sum(samples.values()) if samples else None


@pytest.mark.parametrize(
    "store, data_dir, how",
    [
        ("memory://", "wiped", "kill"),
        ("rocksdb://", "kept", "kill"),
        ("rocksdb://", "wiped", "kill"),
        ("rocksdb://", "kept", "stop"),
    ],
    ids=[
        "memory-from-changelog",
        "rocksdb-data-dir-kept",
        "rocksdb-from-changelog",
        "rocksdb-kept-after-a-clean-stop",
    ],
)
def test_cases_survive_a_kill(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, store: str, data_dir: str, how: str
) -> None:
    """Killed, or (the last case) stopped cleanly: then the worker saved its index snapshots,
    and the restart takes the index and gauges from them instead of reading the rows."""
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, extra_env={"CASECLOCK_STORE": store})
    topics = {t: dep.topic(t) for t in ("case-opened", "case-noted")}
    now = datetime.now(UTC).isoformat()
    w = WorkerProcess(dep, "w").start()
    try:
        w.wait_ready()
        support = {"author": "support", "visibility": "public"}
        events = [
            # P3: ack warning 4 s, breach 8 s; acknowledged at once, so neither may fire
            # (its update clock starts then: a warning at 10 s is legitimate).
            event_doc("case-opened", "K1", now, "o1", priority=3),
            event_doc("case-noted", "K1", now, "n1", **support),
            # P2, never acknowledged: ack warning 3 s, breach 6 s, elevation 8 s.
            event_doc("case-opened", "K2", now, "o2", priority=2),
        ]
        run(produce(kafka_bootstrap, [event_message(topics, doc) for doc in events]))
        wait_until(lambda: open_cases(w) == 2, 30, what="both cases open before the kill")
        # Once the inputs are committed, the restarted worker does not read them again: only
        # the store (its data dir, or the changelog) can bring the cases back.
        inputs = set(topics.values())
        wait_until(
            lambda: run(committed(kafka_bootstrap, dep.app_id, inputs)) == 3,
            30,
            what="the three input messages committed",
        )
        if how == "stop":
            w.stop()
            assert any(w.data_dir.rglob("*.index")), w.log_tail()
        else:
            w.kill()
        if store == "rocksdb://":
            assert any(w.data_dir.rglob("*")), "the RocksDB store wrote nothing to the data dir"
        if data_dir == "wiped":
            shutil.rmtree(w.data_dir)
        w2 = WorkerProcess(dep, "w")  # same name: the same data dir (if it is still there)
        w2.start()
        try:
            w2.wait_ready()
            wait_until(
                lambda: open_cases(w2) == 2, 30, what="both cases recovered", detail=w2.log_tail
            )
            log = w2.log_path.read_text(errors="replace")
            if data_dir == "wiped":  # the rows came back through the batched replay
                assert "changelog replayed a fetch at a time" in log, w2.log_tail()
            # A killed worker left no snapshot: the rows are read. After a clean stop the index
            # comes from the snapshots: K1 has a deadline, K2 one unless all of its alerts
            # (the last, its elevation, at 8 s) went out before the stop.
            read = r"0 rows read, [12] deadlines" if how == "stop" else r"2 rows read, 0 deadlines"
            assert re.search(read + " from index snapshots", log), w2.log_tail()
            # K2's breach and elevation are past by now, unless the first worker sent them
            # before it was killed; either way the recovered worker must not lose them (nor
            # send K1's, acknowledged before the kill). Waited for, not slept for: how much
            # of K2 the first worker sent depends on how soon it became ready.
            time.sleep(max(0.0, 9.5 - (time.time() - datetime.fromisoformat(now).timestamp())))

            def k2_stages() -> set[tuple[str, str]]:
                alerts = run(read_alerts(kafka_bootstrap, dep, idle=0.3))
                return {(a["type"], a["stage"]) for a in alerts if a["case_id"] == "K2"}

            owed = {("elevate-to-l2", "action"), ("ack-due", "breach")}
            wait_until(
                lambda: owed <= k2_stages(),
                30,
                what="K2's breach and elevation",
                detail=w2.log_tail,
            )
        finally:
            w2.stop()
    finally:
        w.stop()
    alerts = run(read_alerts(kafka_bootstrap, dep))
    k1 = [a for a in alerts if a["case_id"] == "K1" and a["type"] == "ack-due"]
    k2 = {(a["type"], a["stage"]) for a in alerts if a["case_id"] == "K2"}
    assert k1 == [], "the acknowledgement recorded before the kill must survive it"
    assert ("elevate-to-l2", "action") in k2 and ("ack-due", "breach") in k2, w2.log_tail()
    ids = [a["alert_id"] for a in alerts]
    repeats = {i for i in ids if ids.count(i) > 1}
    assert all(
        len({(a["type"], a["stage"], a["due_at"]) for a in alerts if a["alert_id"] == i}) == 1
        for i in repeats
    )


def test_an_index_snapshot_behind_the_rows_reads_again_only_the_rows_written_after_it(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    """A worker stops cleanly (saving its snapshots); while it is away another worker, on its
    own data dir, takes the partitions and opens a case in the partition of the first case.
    The first worker's return replays that row from the changelog into its RocksDB: the
    partition's stored offset has moved past its snapshot's, so the snapshot is used with the
    keys written since (the new case, and the first one if the other worker's timer wrote it)
    read again from their rows, and the gauges are counted again from the rows (both cases,
    not the snapshot's one)."""
    dep = Deployment(
        kafka_bootstrap, unique_prefix, tmp_path, extra_env={"CASECLOCK_STORE": "rocksdb://"}
    )
    topics = {t: dep.topic(t) for t in ("case-opened", "case-noted")}
    inputs = set(topics.values())
    now = datetime.now(UTC).isoformat()

    def partition(key: str) -> int:
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % dep.partitions

    other_key = next(k for i in range(2, 1000) if partition(k := f"S{i}") == partition("S1"))
    assert other_key != "S1"

    def open_case(w: WorkerProcess, case_id: str, n: int) -> None:
        doc = event_doc("case-opened", case_id, now, f"o-{case_id}", priority=3)
        run(produce(kafka_bootstrap, [event_message(topics, doc)]))
        wait_until(lambda: open_cases(w) == n, 30, what=f"{n} open", detail=w.log_tail)
        wait_until(
            lambda: run(committed(kafka_bootstrap, dep.app_id, inputs)) == n,
            30,
            what=f"{n} input messages committed",
        )

    w = WorkerProcess(dep, "w").start()
    try:
        w.wait_ready()
        open_case(w, "S1", 1)
    finally:
        w.stop()
    assert any(w.data_dir.rglob("*.index")), w.log_tail()
    other = WorkerProcess(dep, "other").start()
    try:
        other.wait_ready()
        open_case(other, other_key, 2)
    finally:
        other.stop()
    back = WorkerProcess(dep, "w").start()
    try:
        back.wait_ready()
        wait_until(lambda: open_cases(back) == 2, 30, what="both cases", detail=back.log_tail)
        log = back.log_path.read_text(errors="replace")
        assert re.search(
            r"0 rows read, 1 deadlines from index snapshots, [12] of them read again", log
        ), back.log_tail()
        assert f"gauges of partitions [{partition('S1')}] counted again from 2 rows" in log
    finally:
        back.stop()


def test_a_killed_worker_restarts_from_its_periodic_snapshot_and_the_rows_changed_since(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    """A worker saves its index snapshots while it runs; a case opened after the last one,
    then a SIGKILL. The restart takes the index from the snapshot, reads again only the row
    written since (found in the changelog), and the case's alerts still go out."""
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        extra_env={"CASECLOCK_STORE": "rocksdb://", "CASECLOCK_SNAPSHOT_INTERVAL": "10"},
    )
    topics = {t: dep.topic(t) for t in ("case-opened", "case-noted")}
    inputs = set(topics.values())
    saved = "saved the index snapshots of"

    def saves(w: WorkerProcess) -> int:
        return w.log_path.read_text(errors="replace").count(saved)

    w = WorkerProcess(dep, "w").start()
    try:
        w.wait_ready()
        # P3, acknowledged at once: in the snapshot, with its update warning 10 s on.
        now = datetime.now(UTC).isoformat()
        support = {"author": "support", "visibility": "public"}
        run(
            produce(
                kafka_bootstrap,
                [
                    event_message(topics, event_doc("case-opened", "P1", now, "o1", priority=3)),
                    event_message(topics, event_doc("case-noted", "P1", now, "n1", **support)),
                ],
            )
        )
        wait_until(lambda: open_cases(w) == 1, 30, what="the first case", detail=w.log_tail)
        wait_until(lambda: saves(w) >= 1, 30, what="a periodic snapshot", detail=w.log_tail)
        # P2, never acknowledged (ack breach 6 s, elevation 8 s): opened after the snapshot.
        opened_at = datetime.now(UTC).isoformat()
        doc = event_doc("case-opened", "P2", opened_at, "o2", priority=2)
        run(produce(kafka_bootstrap, [event_message(topics, doc)]))
        wait_until(
            lambda: run(committed(kafka_bootstrap, dep.app_id, inputs)) == 3,
            30,
            what="the three input messages committed",
        )
        assert saves(w) == 1, "a second snapshot came before the kill: the test needs none"
        w.kill()
    finally:
        w.stop()
    back = WorkerProcess(dep, "w").start()
    try:
        back.wait_ready()
        log = back.log_path.read_text(errors="replace")
        rebuilds = re.findall(r"(\d+) rows read, (\d+) deadlines from index snapshots, (\d+)", log)
        assert rebuilds[-1][0] == "0" and int(rebuilds[-1][2]) >= 1, back.log_tail()
        wait_until(lambda: open_cases(back) == 2, 30, what="both cases", detail=back.log_tail)

        def p2_stages() -> set[tuple[str, str]]:
            alerts = run(read_alerts(kafka_bootstrap, dep, idle=0.3))
            return {(a["type"], a["stage"]) for a in alerts if a["case_id"] == "P2"}

        owed = {("elevate-to-l2", "action"), ("ack-due", "breach")}
        wait_until(lambda: owed <= p2_stages(), 30, what="P2's alerts", detail=back.log_tail)
        wait_until(
            lambda: "gauges of partitions" in back.log_path.read_text(errors="replace"),
            30,
            what="the gauges counted again",
            detail=back.log_tail,
        )
        assert open_cases(back) == 2
    finally:
        back.stop()
