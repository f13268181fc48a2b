"""Gauges stay right when partitions move between workers; resolved cases leave the table."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.kafka_io import event_message, produce


def scrape(w: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = w.get("/metrics")
    assert status == 200
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def wait_until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def now() -> str:
    return datetime.now(UTC).isoformat()


def test_open_case_gauges_sum_right_across_workers_and_failover(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path)
    topics = {t: dep.topic(t) for t in ("case-opened", "case-resolved")}
    cases = [f"G{i:02d}" for i in range(24)]
    with WorkerProcess(dep, "a") as a, WorkerProcess(dep, "b") as b:
        a.wait_ready()
        b.wait_ready()
        wait_until(
            lambda: (
                sorted(a.partitions() + b.partitions()) == [0, 1, 2, 3]
                and a.partitions()
                and b.partitions()
            ),
            60,
            "both workers to own partitions",
        )
        msgs = [
            event_message(
                topics,
                {
                    "type": "case-opened",
                    "event_id": f"o-{c}",
                    "case_id": c,
                    "occurred_at": now(),
                    "priority": 3,
                },
            )
            for c in cases
        ]
        msgs += [
            event_message(
                topics,
                {"type": "case-resolved", "event_id": f"r-{c}", "case_id": c, "occurred_at": now()},
            )
            for c in cases[:4]
        ]
        placed = run(produce(kafka_bootstrap, msgs))
        assert len({p for _, p, _ in placed}) == 4, "cases should cover every partition"

        def both_sum() -> float:
            return total(scrape(a), "caseclock_open_cases") + total(
                scrape(b), "caseclock_open_cases"
            )

        wait_until(lambda: both_sum() == 20, 30, "20 open cases summed over both workers")
        sa, sb = scrape(a), scrape(b)
        assert total(sa, "caseclock_open_cases") > 0 and total(sb, "caseclock_open_cases") > 0
        assert (
            total(sa, "caseclock_partitions_owned") + total(sb, "caseclock_partitions_owned") == 4
        )

        a.kill()
        wait_until(lambda: b.partitions() == [0, 1, 2, 3], 60, "b to take over all partitions")
        wait_until(lambda: total(scrape(b), "caseclock_open_cases") == 20, 30, "b to count all")
        assert total(scrape(b), "caseclock_partitions_owned") == 4


def test_resolved_cases_are_purged_after_retention(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(
        kafka_bootstrap, unique_prefix, tmp_path, extra_env={"CASECLOCK_RETENTION": "3s"}
    )
    topics = {t: dep.topic(t) for t in ("case-opened", "case-resolved", "case-noted")}
    with WorkerProcess(dep, "w") as w:
        w.wait_ready()
        run(
            produce(
                kafka_bootstrap,
                [
                    event_message(
                        topics,
                        {
                            "type": "case-opened",
                            "event_id": "o1",
                            "case_id": "R1",
                            "occurred_at": now(),
                            "priority": 3,
                        },
                    ),
                    event_message(
                        topics,
                        {
                            "type": "case-resolved",
                            "event_id": "r1",
                            "case_id": "R1",
                            "occurred_at": now(),
                        },
                    ),
                    # Facts for a case that never opens are bounded by the same retention.
                    event_message(
                        topics,
                        {
                            "type": "case-noted",
                            "event_id": "n1",
                            "case_id": "R2",
                            "occurred_at": now(),
                            "author": "customer",
                            "visibility": "public",
                        },
                    ),
                ],
            )
        )
        purged = ("caseclock_ticks_total", (("outcome", "purged"),))
        wait_until(lambda: scrape(w).get(purged) == 2, 20, "both cases purged")
        # The index gauge is refreshed by the next timer run.
        index_size = ("caseclock_timer_index_size", ())
        wait_until(lambda: scrape(w).get(index_size) == 0, 5, "the timer index to empty")
        assert total(scrape(w), "caseclock_open_cases") == 0
