"""The broker paused (SIGSTOP, then SIGCONT) while deadlines fall due (issue 20).

A paused broker is not a stopped one: its port stays open and the kernel still accepts
connections, but nothing answers a request, so every client waits on its request timeout
instead of seeing the connection refused. Faust's producer request timeout is 1,200 s and
caseclock exposes no setting for it (nor for any other Kafka client timeout), so the pause,
PAUSE_S, is longer than the consumer session timeout (8 s in the harness), the alert retry
delay (5 s: alerts acknowledged later mean "cut off", what fell due meanwhile catches up) and
CASECLOCK_COMMIT_STALL_TIMEOUT (STALL_S), not than the request timeout.

This test has a broker of its own (tests.kafka_broker.local_broker), so that pausing it stops
no other test. One worker (FAULT_POLICY) under the load of support.LoadGenerator (150
messages/s); the load goes quiet and the worker commits past every decisive fact
(load.staged_fault); then the broker's JVM is SIGSTOPped for PAUSE_S (/readyz sampled
meanwhile), SIGCONTed (always: outages.paused), and the test waits until a client round trip
works again. The load's producer holds what it makes meanwhile and delivers it afterwards.

The worker must get through: it survives, or it exits with status 75 and the harness's
supervisor starts it again (counted: `stalls`); any other exit fails the test. It serves every
partition again, drains the input, and the alerts of the whole run match replay of the exact
bytes sent (comparison.compare_with_replay: nothing lost unless a catch-up stands for it,
nothing spurious, repeats only as copies with the same alert_id, no storm after the pause).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.integration.deployment import Deployment, WorkerProcess
from tests.integration.expectations import due, fired
from tests.integration.faults.figures import Figures, elapsed_s
from tests.integration.faults.load import FAULT_POLICY, staged_fault
from tests.integration.faults.outages import paused, readiness_during
from tests.integration.faults.under_load import under_load
from tests.integration.times import now_us
from tests.kafka_broker import local_broker

PAUSE_S = 40.0
STALL_S = 20.0
FULL_S = 4.0
TAIL_S = 4.0


@pytest.mark.skipif(shutil.which("java") is None, reason="local-kafka.sh needs a JDK")
def test_broker_paused(unique_prefix: str, tmp_path: Path, figures: Figures) -> None:
    with local_broker() as kafka:
        dep = Deployment(
            kafka.bootstrap,
            unique_prefix,
            tmp_path,
            policy=FAULT_POLICY,
            extra_env={"CASECLOCK_COMMIT_STALL_TIMEOUT": str(STALL_S)},
        )
        worker = WorkerProcess(dep, "w1")
        with under_load(worker, seed=4, full_s=FULL_S, figures=figures) as run:
            with staged_fault(run.load) as fw:
                with paused(kafka):
                    fw.start_us = now_us()
                    while_paused = readiness_during(worker, PAUSE_S)
                    cont_us = now_us()
                healthy_us = now_us()
                back = run.coverage.wait(run.coverage.settled, healthy_us, 180, "serving again")
                fw.recovered_us = back.at_us
            time.sleep(FULL_S)
            sent, cutoff, live = run.finish(TAIL_S)

    after = [fired(a) for a in live if fired(a) >= cont_us]
    figures.update(
        paused_s=elapsed_s(fw.start_us, cont_us),
        readyz_while_paused=dict(while_paused),
        broker_answers_after_cont_s=elapsed_s(cont_us, healthy_us),
        ready_after_cont_s=elapsed_s(cont_us, fw.recovered_us),
        first_alert_after_cont_s=elapsed_s(cont_us, min(after)) if after else None,
        fault=fw.figures(run.t0_us),
    )
    expected = run.compare(
        sent,
        live,
        cutoff,
        [(fw.start_us, fw.start_us, fw.end_us)],
        lambda i, case_id: (cont_us, cont_us),  # served again once the broker answers
    )
    during = [a for a in expected if fw.start_us < due(a) <= cont_us]
    figures.update(alerts_due_while_paused=len(during))
    assert during, "nothing fell due while the broker was paused"
    print(f"\nbroker paused: {figures.values}")
