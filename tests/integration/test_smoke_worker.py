"""A worker on the real broker: starts, becomes ready, turns a P1 case into its alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.kafka_io import event_message, produce, read_alerts


def test_worker_emits_elevation_and_ack_alerts(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path)
    topic_of = dict(zip(["case-opened"], [dep.topic("case-opened")], strict=True))
    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
        now = datetime.now(UTC).isoformat()
        run(
            produce(
                kafka_bootstrap,
                [
                    event_message(
                        topic_of,
                        {
                            "type": "case-opened",
                            "event_id": "e1",
                            "case_id": "S1",
                            "occurred_at": now,
                            "priority": 1,
                        },
                    )
                ],
            )
        )
        time.sleep(5.5)  # elevation at 0 s, ack warning at 2 s, breach at 4 s; then nothing
        alerts = run(read_alerts(kafka_bootstrap, dep))
    kinds = sorted((a["type"], a["stage"]) for a in alerts)
    assert kinds == [("ack-due", "breach"), ("ack-due", "warning"), ("elevate-to-l2", "action")], (
        w.log_tail()
    )
