"""Two workers share the partitions; one is SIGKILLed; the survivor takes over its cases.

Cases are spread over all four partitions (three per partition: a P1 acknowledged at once, so
its update clock keeps ticking; a P2 never acknowledged: ack warning, breach, elevation; a P2
whose ETA passes after the kill). The killed worker's partitions stay unserved until its
session times out (8 s in the harness); then the survivor owns all four, recovers the killed
worker's cases from the changelog and fires their timers: what fell due in between as one
catch-up per clock, everything due later on time, all with the ids replay predicts.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import (
    describe,
    due,
    expected_alerts,
    fired,
    lateness_s,
    percentile,
)
from tests.integration.fault_checks import check_outage
from tests.integration.kafka_io import read_alerts
from tests.integration.scripts import Script, keys_on_partitions, play
from tests.integration.times import US, iso, now_us, sleep_until, wait_until

KILL_AT_S = 4.0
RUN_AFTER_TAKEOVER_S = 7.0


def split(w1: WorkerProcess, w2: WorkerProcess, partitions: int) -> bool:
    """Both ready, each owning some partitions, together all of them, none twice."""
    a, b = set(w1.partitions()), set(w2.partitions())
    return bool(a) and bool(b) and not a & b and a | b == set(range(partitions))


def test_survivor_takes_over_killed_workers_cases(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, partitions=4)
    cases = keys_on_partitions("case", dep.partitions, 3)
    script = Script(dep)
    for p, (acked, unacked, eta) in cases.items():
        d = 0.1 * p
        script.event(d, "case-opened", acked, priority=1)
        script.event(1.0 + d, "case-noted", acked, author="support", visibility="public")
        script.event(0.05 + d, "case-opened", unacked, priority=2)
        script.event(0.1 + d, "case-opened", eta, priority=2)
        script.event(1.2 + d, "eta-set", eta, eta=lambda t: iso(t + 5 * US))

    w1, w2 = WorkerProcess(dep, "w1"), WorkerProcess(dep, "w2")
    try:
        w1.start()
        w2.start()
        w1.wait_ready()
        w2.wait_ready()
        wait_until(lambda: split(w1, w2, dep.partitions), 60, 0.25, "two workers sharing")
        wait_until(lambda: split(w1, w2, dep.partitions), 10, 0.25, "a stable split")
        t0 = now_us() + 300_000
        sent = run(play(kafka_bootstrap, t0, script))
        sleep_until(t0 + round(KILL_AT_S * US))
        owned = {w.name: set(w.partitions()) for w in (w1, w2)}
        assert all(owned.values()), f"a rebalance happened before the kill: {owned}"
        victim, survivor = w2, w1
        victim.kill()
        kill = now_us()
        wait_until(
            lambda: survivor.partitions() == list(range(dep.partitions)),
            60,
            0.25,
            "the survivor to own every partition",
        )
        takeover = now_us()
        cutoff = takeover + round(RUN_AFTER_TAKEOVER_S * US)
        sleep_until(cutoff)
        live = run(read_alerts(kafka_bootstrap, dep, idle=0.5))
        assert survivor.proc is not None and survivor.proc.poll() is None, survivor.log_tail()
    finally:
        w2.kill()
        w1.stop()

    opened_on = {s.key.decode(): s.partition for s in sent if s.key is not None}
    assert set(opened_on.values()) == set(range(dep.partitions))
    victims = {c for c, p in opened_on.items() if p in owned[victim.name]}
    expected = expected_alerts(dep, sent, cutoff)
    report = check_outage(
        live, expected, t0_us=t0, kill_us=kill, cutoff_us=cutoff, context=survivor.log_tail(60)
    )
    taken = [a for a in live if a["case_id"] in victims and fired(a) >= kill]
    after = [a for a in taken if due(a) > takeover]
    late = [lateness_s(a) for a in live if due(a) > takeover]
    print(
        f"\nfailover: {victim.name} (partitions {sorted(owned[victim.name])}) killed at "
        f"{(kill - t0) / US:.2f}s, {survivor.name} owned all at {(takeover - t0) / US:.2f}s "
        f"({(takeover - kill) / US:.1f}s); {len(live)} alert copies, {report.repeats} repeats, "
        f"{report.catch_ups} catch-ups standing for {report.skipped} skipped alerts; "
        f"{len(taken)} alerts for the killed worker's cases fired by the survivor"
        f"\n  lateness of alerts due after the takeover: p50={percentile(late, 50):.3f}s "
        f"p99={percentile(late, 99):.3f}s"
    )
    # The survivor fired the killed worker's timers: the outage's catch-up and what came after.
    assert [a for a in taken if due(a) <= takeover], describe(live, t0)
    assert len(after) >= 2, describe(live, t0)
    assert {a["type"] for a in taken} >= {"update-due", "elevate-to-l2"}, describe(taken, t0)
