"""The broker stopped and started again while events flow and deadlines fall due.

This test has a broker of its own (tests.kafka_broker.local_broker: local-kafka.sh on its own
ports), so that it can stop it. One worker (FAULT_POLICY) and the load (support.LoadGenerator)
run; the load goes quiet and the worker commits past every decisive fact; then the broker is
stopped (controlled shutdown, data kept) for OUTAGE_S, longer than the P1 update windows, and
started again on the same ports with the same data, as a broker restart looks to its clients
(the outage counts from the end of the stop to the start of the start: the broker may answer
before local-kafka.sh says it is ready).
The load's producer holds what it makes meanwhile and delivers it once the broker is back.

The worker must get through by itself: never exit (a watchdog exit, status 75, would be
restarted as a supervisor does, and counted; any other exit fails the test), consume and commit
again, and emit what fell due during the outage: one catch-up alert per clock that passed
several points, the rest as such. Then the live alerts are checked against replay of the exact
bytes sent (fault_checks.check_faults), as in the other fault scenarios.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.integration.deployment import Deployment, WorkerProcess
from tests.integration.expectations import describe, due, fired
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, elapsed_s
from tests.integration.faults.load import FAULT_POLICY, LoadGenerator, staged_fault
from tests.integration.faults.membership import Coverage
from tests.integration.times import now_us
from tests.kafka_broker import local_broker

FULL_S = 4.0
OUTAGE_S = 8.0
TAIL_S = 4.0


@pytest.mark.skipif(shutil.which("java") is None, reason="local-kafka.sh needs a JDK")
def test_broker_restart(unique_prefix: str, tmp_path: Path, figures: Figures) -> None:
    with local_broker() as kafka:
        dep = Deployment(kafka.bootstrap, unique_prefix, tmp_path, policy=FAULT_POLICY)
        worker = WorkerProcess(dep, "w1")
        load = LoadGenerator(dep, rate=150, seed=2)
        try:
            with Coverage([worker], dep.partitions) as coverage:
                worker.start().wait_ready()
                t0 = now_us()
                load.start()
                time.sleep(FULL_S)
                with staged_fault(load) as fw:
                    fw.start_us = now_us()
                    kafka.halt()
                    down_us = now_us()
                    time.sleep(OUTAGE_S)
                    up_us = now_us()  # clients may reconnect as soon as its port opens
                    kafka.resume()
                    started_us = now_us()
                    back = coverage.wait(coverage.settled, up_us, 180, "the worker serving again")
                    fw.recovered_us = back.at_us
                time.sleep(FULL_S)
                sent, cutoff, live = load.finish(TAIL_S)
                assert worker.alive(), worker.log_tail()
        finally:
            load.stop()
            worker.stop()

    outage = (fw.start_us, fw.end_us)
    after = [fired(a) for a in live if fired(a) >= up_us]
    figures.update(
        **load.figures(),
        broker_stop_s=elapsed_s(fw.start_us, down_us),
        broker_down_s=elapsed_s(down_us, up_us),
        broker_start_s=elapsed_s(up_us, started_us),
        ready_after_broker_back_s=elapsed_s(up_us, fw.recovered_us),
        first_alert_after_broker_back_s=elapsed_s(up_us, min(after)) if after else None,
        backlog_committed_after_broker_back_s=elapsed_s(up_us, fw.end_us),
        fault=fw.figures(t0),
        stalls=worker.restarts,
    )
    expected, _ = compare_with_replay(
        dep,
        sent,
        live,
        figures,
        t0_us=t0,
        cutoff_us=cutoff,
        faults_us=[fw.start_us],
        outages=[outage],
        logs=[worker.log_path],
        takeover=lambda i, case_id: (up_us, up_us),  # nothing is served before it is back
    )
    # Deadlines fell due while the broker was down, and came out once it was back.
    during = [a for a in expected if down_us < due(a) <= up_us]
    figures.update(alerts_due_while_broker_down=len(during))
    assert during, "nothing fell due while the broker was down"
    assert any(a.get("catch_up") and fired(a) >= up_us for a in live), describe(live, t0)
    print(f"\nbroker restart: {figures.values}")
