"""The production store: RocksDB (rocksdict) keeps the table across a restart of the worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.harness import (
    Deployment,
    WorkerProcess,
    event_message,
    produce,
    read_alerts,
    run,
)


def test_rocksdb_store_survives_a_kill_and_keeps_firing(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(
        kafka_bootstrap, unique_prefix, tmp_path, extra_env={"CASECLOCK_STORE": "rocksdb://"}
    )
    topics = {t: dep.topic(t) for t in ("case-opened", "case-noted")}
    now = datetime.now(UTC).isoformat()
    w = WorkerProcess(dep, "w").start()
    try:
        w.wait_ready()
        run(
            produce(
                kafka_bootstrap,
                [
                    # P3: ack warning 4 s, breach 8 s; acknowledged at once, so neither may fire
                    # (its update clock starts then: a warning at 10 s is legitimate).
                    event_message(
                        topics,
                        {
                            "type": "case-opened",
                            "event_id": "o1",
                            "case_id": "K1",
                            "occurred_at": now,
                            "priority": 3,
                        },
                    ),
                    event_message(
                        topics,
                        {
                            "type": "case-noted",
                            "event_id": "n1",
                            "case_id": "K1",
                            "occurred_at": now,
                            "author": "support",
                            "visibility": "public",
                        },
                    ),
                    # P2, never acknowledged: ack warning 3 s, breach 6 s, elevation 8 s.
                    event_message(
                        topics,
                        {
                            "type": "case-opened",
                            "event_id": "o2",
                            "case_id": "K2",
                            "occurred_at": now,
                            "priority": 2,
                        },
                    ),
                ],
            )
        )
        time.sleep(1.5)
        w.kill()
        assert any((w.data_dir).rglob("*")), "the RocksDB store wrote nothing to the data dir"
        w2 = WorkerProcess(dep, "w")  # same name: the same data dir
        w2.start()
        try:
            w2.wait_ready()
            time.sleep(max(0.0, 9.5 - (time.time() - datetime.fromisoformat(now).timestamp())))
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
