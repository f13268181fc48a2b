"""Bad input goes to the dead-letter topic, and the worker goes on (docs/semantics.md section 5).

Every kind of bad message is produced into the input topics, keyed like valid cases so that it
lands in the same partitions, between valid events of those cases. Each must come out on the
dead-letter topic with the right reason, where it came from and its original bytes; the
`caseclock_dead_letters_total` counter must count it; the worker must stay up; and the valid
cases, before and after the bad messages in the same partitions, must get exactly the alerts
replay predicts.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from caseclock.contracts.deadletter import DeadLetter
from caseclock.contracts.inbound import REJECT_REASONS
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import alert_key, describe, due, expected_alerts
from tests.integration.kafka_io import read_alerts, read_all
from tests.integration.metrics_text import metric_samples
from tests.integration.scripts import Script, Sent, keys_on_partitions, play
from tests.integration.times import US, iso, now_us, wait_until

MAX_BYTES = 4096


def bad_messages(key: str) -> list[tuple[str, bytes | None, str, str]]:
    """(type topic, value, label, expected reason) for one key; values are exact bytes."""

    n = itertools.count()

    def doc(**fields: Any) -> bytes:
        base = {"event_id": f"{key}-bad-{next(n)}", "case_id": key, "occurred_at": iso(now_us())}
        base.update(fields)
        return orjson.dumps(base)

    naive = "2026-01-31T09:30:00"
    truncated = b'{"type": "case-opened", "event_id": "x1", "case_id"'
    note = {"type": "case-noted", "author": "support", "visibility": "public"}
    return [
        ("case-opened", truncated, "truncated", "invalid-json"),
        ("case-noted", b"\xff\xfe\x00\x01 binary junk \x80", "binary", "invalid-json"),
        ("case-noted", b"", "empty", "invalid-json"),
        ("case-resolved", None, "tombstone", "invalid-json"),
        ("case-noted", doc(type="case-noted", visibility="public"), "missing", "invalid-event"),
        ("case-opened", doc(type="case-opened", priority="1"), "ill-typed", "invalid-event"),
        ("eta-set", doc(type="eta-set", eta=1767225600), "ill-typed-eta", "invalid-event"),
        ("case-noted", b"[1, 2, 3]", "not-an-object", "invalid-event"),
        ("case-noted", doc(type="case-deleted"), "unknown-type", "unknown-type"),
        ("case-opened", doc(type="case-opened", priority=1, plan="gold"), "plan", "unknown-plan"),
        ("case-opened", doc(type="case-opened", priority=9), "priority", "unknown-priority"),
        ("priority-changed", doc(type="priority-changed", priority=0), "raise", "unknown-priority"),
        ("case-noted", doc(**note, occurred_at=naive), "naive", "naive-timestamp"),
        ("eta-set", doc(type="eta-set", eta=naive), "naive-eta", "naive-timestamp"),
        (
            "eta-set",
            doc(type="eta-set", eta="9999-12-31T10:00:00Z"),
            "far-eta",
            "timestamp-out-of-range",
        ),
        (
            "case-opened",
            doc(type="case-opened", priority=1, occurred_at="1969-12-31T23:59:59Z"),
            "early",
            "timestamp-out-of-range",
        ),
        (
            "case-opened",
            doc(type="case-opened", priority=1, case_id=f"{key}-x"),
            "key",
            "key-mismatch",
        ),
        (
            "case-opened",
            doc(type="case-opened", priority=1, pad="x" * MAX_BYTES),
            "big",
            "oversized",
        ),
    ]


def test_bad_input_is_dead_lettered(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        extra_env={"CASECLOCK_MAX_MESSAGE_BYTES": str(MAX_BYTES)},
    )
    cases = keys_on_partitions("dl", dep.partitions, 2)
    script = Script(dep)
    reasons: dict[str, str] = {}
    for p, (before, after) in cases.items():
        script.event(0.0, "case-opened", before, priority=1)
        for i, (type_, value, label, reason) in enumerate(bad_messages(before)):
            name = f"{label}@{p}"
            script.raw(0.1 + 0.01 * i, type_, before.encode(), value, name)
            reasons[name] = reason
        script.event(0.4, "case-opened", after, priority=1)
        script.event(0.5, "case-noted", before, author="customer", visibility="public")

    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
        t0 = now_us() + 300_000
        sent: list[Sent] = run(play(kafka_bootstrap, t0, script))
        bad = {(s.topic, s.partition, s.offset): s for s in sent if s.label in reasons}
        assert len(bad) == len(reasons)
        assert {s.partition for s in bad.values()} == set(range(dep.partitions))

        records: list[Any] = []

        def all_dead_lettered() -> bool:
            records[:] = run(read_all(kafka_bootstrap, [dep.dead_letter_topic], idle=0.2))
            return len(records) >= len(bad)

        wait_until(all_dead_lettered, 30, 0.2, f"{len(bad)} dead letters", lambda: w.log_tail())

        # The valid cases of the same partitions: elevations at once, ack warnings 2 s later.
        horizon = max(s.at_us for s in sent) + round(2.1 * US)
        expected = expected_alerts(dep, sent, horizon)
        want = {alert_key(a) for a in expected}
        live: list[dict[str, Any]] = []

        def alerts_arrived() -> bool:
            live[:] = run(read_alerts(kafka_bootstrap, dep, idle=0.2))
            return want <= {alert_key(a) for a in live}

        wait_until(
            alerts_arrived,
            30,
            0.2,
            "the valid cases' alerts",
            lambda: f"live:\n{describe(live, t0)}\nreplay:\n{describe(expected, t0)}",
        )
        want_counts = Counter(reasons.values())
        counts: dict[str, float] = {}

        def counted() -> bool:
            status, body = w.get("/metrics")
            assert status == 200
            samples = metric_samples(body.decode(), "caseclock_dead_letters_total")
            counts.clear()
            counts.update({dict(labels)["reason"]: v for labels, v in samples.items()})
            return counts == {r: float(want_counts.get(r, 0)) for r in REJECT_REASONS}

        wait_until(counted, 10, 0.2, "the dead-letter counter", lambda: counts)
        assert w.proc is not None and w.proc.poll() is None, w.log_tail()
        assert w.get("/healthz")[0] == 200 and w.ready(), w.log_tail()

    # Every bad message, once, with its reason, source and original bytes.
    assert len(records) == len(bad), [r[4][:200] for r in records]
    seen = set()
    for _, _, _, key, value in records:
        dl = DeadLetter.model_validate_json(value)
        src = bad.get((dl.topic, dl.partition, dl.offset))
        assert src is not None, f"dead letter for a message not sent as bad: {dl}"
        assert dl.reason == reasons[src.label], (src.label, dl.reason, dl.detail)
        assert dl.original_value() == (src.value or b""), src.label
        assert dl.original_key() == src.key == key, src.label
        seen.add((dl.topic, dl.partition, dl.offset))
    assert seen == set(bad)

    # The valid cases around the bad messages got exactly what replay says.
    live_upto = [a for a in live if due(a) <= horizon]
    assert sorted(map(alert_key, live_upto)) == sorted(want), (
        f"live:\n{describe(live_upto, t0)}\nreplay:\n{describe(expected, t0)}"
    )
    opened = {c for pair in cases.values() for c in pair}
    assert {a["case_id"] for a in live_upto} == opened
    print(f"\ndead letters: {len(records)} records, by reason {dict(sorted(want_counts.items()))}")
