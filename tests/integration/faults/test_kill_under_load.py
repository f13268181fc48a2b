"""kill -9 of a worker under sustained load, several times in one run.

One worker (four partitions, FAULT_POLICY) and a load of ~150 messages/s over hundreds of cases
(support.LoadGenerator: new P1/P2/P3 cases, notes, communications, ETAs, priority changes,
resolutions, resends), so deadlines fall due all the time. KILLS times: the load runs in full
for FULL_S, goes quiet, and once the worker committed past every decisive fact it is SIGKILLed
and started again at once (same group, same changelog), as a supervisor restarts a crashed pod;
the load goes on through the outage (new cases and notes) and goes back to full once the worker
serves every partition again and committed the backlog. Each outage lasts about the group's
session timeout (8 s in the harness: the dead member holds its partitions until then), longer
than the P1 update windows, so clocks need catch-up alerts.

Then the live alerts are checked against replay of the exact bytes sent (fault_checks.check_faults):
nothing lost unless a catch-up stands for it, repeats only as identical copies, nothing
spurious, nothing for resolved cases; and the worker is still up.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.deployment import Deployment, WorkerProcess
from tests.integration.expectations import due
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, scaled
from tests.integration.faults.load import FAULT_POLICY, LoadGenerator, staged_fault
from tests.integration.faults.membership import Coverage, Membership
from tests.integration.times import now_us

KILLS = scaled(3)
FULL_S = 4.0
TAIL_S = 4.0


def test_kill_under_load(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(
        kafka_bootstrap, unique_prefix, tmp_path, policy=FAULT_POLICY, session_timeout=6.0
    )
    worker = WorkerProcess(dep, "w1")
    load = LoadGenerator(dep, rate=150, seed=1)
    windows = []
    try:
        with Coverage([worker], dep.partitions) as coverage:
            members = Membership([worker], coverage)
            worker.start().wait_ready()
            t0 = now_us()
            load.start()
            for _ in range(KILLS):
                time.sleep(FULL_S)
                with staged_fault(load) as fw:
                    change = members.apply("restart", worker.name)
                    fw.start_us, fw.recovered_us = change.at_us, change.settled_us
                windows.append(fw)
            time.sleep(FULL_S / 2)
            sent, cutoff, live = load.finish(TAIL_S)
            assert worker.alive(), worker.log_tail()
            stalls = members.stalls()
    finally:
        load.stop()
        worker.stop()

    outages = [(fw.start_us, fw.end_us) for fw in windows]
    figures.update(
        kills=KILLS,
        **load.figures(),
        faults=[fw.figures(t0) for fw in windows],
        stalls=stalls,
    )
    expected, report = compare_with_replay(
        dep,
        sent,
        live,
        figures,
        t0_us=t0,
        cutoff_us=cutoff,
        faults_us=[start for start, _ in outages],
        outages=outages,
        logs=[worker.log_path],
        takeover=members.takeover,
    )
    # The scenario did what it is for: alerts fell due in every outage, and came out.
    for start, end in outages:
        assert any(start < due(a) <= end for a in expected), f"nothing fell due in {start}-{end}"
    assert report.catch_ups >= 1, "no clock needed a catch-up: the outages were too short"
    print(f"\nkill under load: {figures.values}")
