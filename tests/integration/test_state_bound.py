"""A case whose state cannot be written is dead-lettered; the worker, and every other case, go
on, also across a restart (a crash loop on one message is impossible).

The worker runs with CASECLOCK_MAX_STATE_BYTES at its minimum (1024), so a case-opened whose
subject alone nearly fills that makes a row over the limit: the message must come out on the
dead-letter topic as `state-too-large` with its original bytes, the case keep its previous
(here: no) state, and the cases around it in the same partitions get what replay predicts. A
restart from the same committed offsets must not trip over the message either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caseclock.contracts.deadletter import DeadLetter
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import alert_key, describe, expected_alerts
from tests.integration.fault_checks import check_outage
from tests.integration.kafka_io import read_alerts, read_all
from tests.integration.metrics_text import metric_samples
from tests.integration.scripts import Script, keys_on_partitions, play
from tests.integration.times import US, now_us, sleep_until, wait_until


def test_a_state_over_the_bound_is_dead_lettered_and_the_worker_goes_on(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        partitions=2,
        extra_env={"CASECLOCK_MAX_STATE_BYTES": "1024"},
    )
    cases = keys_on_partitions("sb", dep.partitions, 2)
    script = Script(dep)
    heavy = [big for big, _ in cases.values()]
    for p, (big, small) in cases.items():
        script.event(0.0 + 0.05 * p, "case-opened", big, priority=1, subject="s" * 1000, label=big)
        script.event(0.2 + 0.05 * p, "case-opened", small, priority=1, subject="fine")

    w = WorkerProcess(dep, "w1")
    try:
        w.start()
        w.wait_ready()
        t0 = now_us() + 300_000
        sent = run(play(kafka_bootstrap, t0, script))
        records: list[Any] = []

        def dead_lettered() -> bool:
            records[:] = run(read_all(kafka_bootstrap, [dep.dead_letter_topic], idle=0.2))
            return len(records) >= len(heavy)

        wait_until(dead_lettered, 30, 0.2, "state-too-large dead letters", w.log_tail)
        status, body = w.get("/metrics")
        assert status == 200
        counted = metric_samples(body.decode(), "caseclock_dead_letters_total")
        assert counted.get((("reason", "state-too-large"),)) == len(heavy), counted
        horizon = max(s.at_us for s in sent) + round(2.5 * US)
        expected = [a for a in expected_alerts(dep, sent, horizon) if a["case_id"] not in heavy]
        live: list[dict[str, Any]] = []

        def alerts_arrived() -> bool:
            live[:] = run(read_alerts(kafka_bootstrap, dep, idle=0.2))
            return {alert_key(a) for a in expected} <= {alert_key(a) for a in live}

        wait_until(
            alerts_arrived,
            30,
            0.2,
            "the other cases' alerts",
            lambda: f"live:\n{describe(live, t0)}\nexpected:\n{describe(expected, t0)}",
        )
        # Restart from the committed offsets: the worker must come back and serve, whether or
        # not it meets the message again (at-least-once).
        w.kill()
        kill = now_us()
        w.start()
        w.wait_ready()
        cutoff = now_us() + 2 * US
        sleep_until(cutoff)
        live = run(read_alerts(kafka_bootstrap, dep, idle=0.3))
        assert w.proc is not None and w.proc.poll() is None, w.log_tail()
    finally:
        w.stop()

    # Replay knows no state limit: the heavy cases are what the worker must leave out.
    after = [a for a in expected_alerts(dep, sent, cutoff) if a["case_id"] not in heavy]
    check_outage(live, after, t0_us=t0, kill_us=kill, cutoff_us=cutoff)
    by_label = {s.label: s for s in sent if s.label}
    reasons = [DeadLetter.model_validate_json(v) for *_, v in records]
    assert {d.reason for d in reasons} == {"state-too-large"}, [d.detail for d in reasons]
    assert {d.original_value() for d in reasons} == {by_label[c].value for c in heavy}
    assert "CASECLOCK_MAX_STATE_BYTES=1024" in reasons[0].detail
    assert not [a for a in live if a["case_id"] in heavy], describe(live, t0)
    breaches = {a["case_id"] for a in live if a["type"] == "ack-due" and a["stage"] == "breach"}
    assert breaches == {small for _, small in cases.values()}, describe(live, t0)
