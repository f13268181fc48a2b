"""Static membership: a worker killed and restarted within the session timeout gets its
partitions back without a rebalance, so the other worker never stops serving its own.

Two workers with CASECLOCK_GROUP_INSTANCE_ID (as the StatefulSet sets it from the pod name)
share four partitions. The second is SIGKILLed and started again at once. The first must stay
ready with the same partitions the whole time; the second must come back with the partitions it
had; and the cases of both get the alerts replay predicts (what fell due while the second was
down comes out as catch-up).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import expected_alerts
from tests.integration.fault_checks import check_outage
from tests.integration.kafka_io import read_alerts
from tests.integration.scripts import Script, keys_on_partitions, play
from tests.integration.times import US, now_us, sleep_until, wait_until


def test_a_quick_restart_keeps_the_assignment(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, partitions=4, session_timeout=10)
    cases = keys_on_partitions("sm", dep.partitions, 1)
    script = Script(dep)
    for p, (case,) in cases.items():
        script.event(0.1 * p, "case-opened", case, priority=1)
        script.event(0.5 + 0.1 * p, "case-noted", case, author="support", visibility="public")
    w1 = WorkerProcess(dep, "w1", {"CASECLOCK_GROUP_INSTANCE_ID": f"{unique_prefix}-0"})
    w2 = WorkerProcess(dep, "w2", {"CASECLOCK_GROUP_INSTANCE_ID": f"{unique_prefix}-1"})
    try:
        w1.start()
        w2.start()
        w1.wait_ready()
        w2.wait_ready()

        def split() -> bool:
            a, b = set(w1.partitions()), set(w2.partitions())
            return bool(a) and bool(b) and not a & b and a | b == set(range(dep.partitions))

        wait_until(split, 60, 0.25, "two workers sharing the partitions")
        before = {w.name: w.partitions() for w in (w1, w2)}
        t0 = now_us() + 300_000
        sent = run(play(kafka_bootstrap, t0, script))
        w2.kill()
        kill = now_us()
        w2.start()
        deadline = time.monotonic() + 60
        seen_w1 = set()
        while not w2.ready():
            seen_w1.add(tuple(w1.partitions()))  # empty while w1 is not ready
            assert time.monotonic() < deadline, w2.log_tail()
            time.sleep(0.1)
        back = now_us()
        cutoff = back + 7 * US
        sleep_until(cutoff)
        after = {w.name: w.partitions() for w in (w1, w2)}
        live = run(read_alerts(kafka_bootstrap, dep, idle=0.5))
    finally:
        w2.stop()
        w1.stop()

    assert seen_w1 == {tuple(before["w1"])}, f"w1 was disturbed: {seen_w1} (before {before})"
    assert after == before
    report = check_outage(
        live, expected_alerts(dep, sent, cutoff), t0_us=t0, kill_us=kill, cutoff_us=cutoff
    )
    print(
        f"\nstatic membership: w2 back with {after['w2']} {(back - kill) / US:.1f}s after the "
        f"kill; w1 kept {after['w1']}; {len(live)} alerts, {report.catch_ups} catch-ups"
    )
