"""Three workers and a dozen membership changes: kill -9, start, graceful stop.

Six partitions, three workers sharing them, and the load (support.LoadGenerator). For SEED_S the
load runs in full while the group is stable, so cases with every kind of clock exist (updates
every few seconds, pending ETAs, priority changes, resolutions). Then the load goes quiet (new
cases and notes that are not communications: facts no rebalance can make the live service and
replay disagree about) and PLAN's changes follow one another, each once the group has settled
after the previous one: every partition served by exactly one ready worker, every running worker
serving some (support.Coverage, from each worker's /readyz). One to three workers run at any
time; a worker whose recovery watchdog fires (exit 75) is started again, as a supervisor would,
and counted as a stall.

Figures per change: how long until the group settled, how long some partition had no ready
owner, stalls; for the run: the longest time each partition went unserved. Asserted: the workers
that should run do, and the live alerts against replay of the exact bytes sent
(fault_checks.check_faults): zero lost (unless a catch-up stands for it), repeats only as identical
copies, nothing spurious.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from tests.integration.deployment import Deployment, WorkerProcess
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, scaled
from tests.integration.faults.load import FAULT_POLICY, LoadGenerator, staged_fault
from tests.integration.faults.membership import Coverage, Membership
from tests.integration.times import now_us

PARTITIONS = 6
SEED_S = 6.0
TAIL_S = 4.0
PLAN = (
    ("kill", "w2"),
    ("start", "w2"),
    ("stop", "w3"),
    ("start", "w3"),
    ("kill", "w1"),
    ("start", "w1"),
    ("stop", "w2"),
    ("kill", "w3"),
    ("start", "w2"),
    ("start", "w3"),
    ("stop", "w1"),
    ("start", "w1"),
)
"""Ends as it starts (all three running), so it can be repeated (CASECLOCK_FAULT_SCALE)."""
CHANGES = scaled(len(PLAN))


def test_membership_churn(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        partitions=PARTITIONS,
        policy=FAULT_POLICY,
        session_timeout=6.0,
    )
    workers = [WorkerProcess(dep, f"w{i}") for i in (1, 2, 3)]
    load = LoadGenerator(dep, rate=150, seed=3)
    try:
        with Coverage(workers, dep.partitions) as coverage:
            members = Membership(workers, coverage)
            for w in workers:
                w.start()
            coverage.wait(coverage.settled, now_us(), 180, "three workers sharing the partitions")
            t0 = now_us()
            load.start()
            time.sleep(SEED_S)
            with staged_fault(load) as fw:
                fw.start_us = now_us()
                for kind, name in itertools.islice(itertools.cycle(PLAN), CHANGES):
                    members.apply(kind, name)
                fw.recovered_us = now_us()
            sent, cutoff, live = load.finish(TAIL_S)
            running = {w.name for w in workers if w.alive()}
            gaps = coverage.longest_gaps()
    finally:
        load.stop()
        for w in workers:
            w.stop()

    changes = members.changes
    figures.update(
        partitions=PARTITIONS,
        membership_changes=len(changes),
        changes=[c.figures(t0) for c in changes],
        settled_after_s_max=max(c.figures(t0)["settled_after_s"] for c in changes),
        unserved_s_max=max(c.unserved_s for c in changes),
        longest_unserved_s_per_partition=gaps,
        stalls=sum(c.stalls for c in changes),
        stalls_per_change=round(sum(c.stalls for c in changes) / len(changes), 3),
        **load.figures(),
        churn=fw.figures(t0),
    )
    expected_running = {"w1", "w2", "w3"}
    assert running == expected_running, f"running at the end: {sorted(running)}"
    compare_with_replay(
        dep,
        sent,
        live,
        figures,
        t0_us=t0,
        cutoff_us=cutoff,
        faults_us=[c.at_us for c in changes],
        outages=[(fw.start_us, fw.end_us)],
        logs=[w.log_path for w in workers],
        takeover=members.takeover,
    )
    print(f"\nmembership churn: {figures.values}")
