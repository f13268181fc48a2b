"""A worker SIGKILLed mid-run and started again recovers its cases from the changelog.

Nothing replay says is due goes missing, repeats (at-least-once) carry the same alert_id and
content as their first copy, and what fell due during the outage comes out as one catch-up
alert per clock, not as a storm.

Timeline (FAST_POLICY; seconds after t0):

  A  P1 acked at 1        elevate 0; update w4 b7 w10 b13 w16 b19 ...: several points fall in
                          the outage, so the restart must catch up with one breach
  B  P1 never acked       elevate 0.5; ack w2.5 (before the kill) b4.5 (in the outage)
  C  P2 never acked       ack w3.2 b6.2; elevate 8.2
  D  P2, ETA at 5         update b5 (eta-passed), then w10 b15 w20 ...
  E  P3 never acked       ack w4.3 b8.3
  F  P1 resolved at 1.5   elevate 0.1, then nothing (also not after the restart)
  G  P1 opened at 2.7     elevate 2.7 (just before the kill: its offset may not be committed
                          yet, so the restarted worker may read it again); ack w4.7 b6.7

The worker is killed at 3 s; the new one is ready after the dead member's session times out
(8 s in the harness) and the table is recovered; the run ends 7 s after that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caseclock.live.config import TABLE_STORES
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
from tests.integration.scripts import Script, play
from tests.integration.times import US, iso, now_us, sleep_until

KILL_AT_S = 3.0
RUN_AFTER_READY_S = 7.0


def build_script(dep: Deployment) -> Script:
    s = Script(dep)
    s.event(0.0, "case-opened", "A", priority=1)
    s.event(1.0, "case-noted", "A", author="support", visibility="public")
    s.event(0.5, "case-opened", "B", priority=1)
    s.event(0.2, "case-opened", "C", priority=2)
    s.event(0.0, "case-opened", "D", priority=2)
    s.event(1.0, "eta-set", "D", eta=lambda t: iso(t + 4 * US))
    s.event(0.3, "case-opened", "E", priority=3)
    s.event(0.1, "case-opened", "F", priority=1)
    s.event(1.5, "case-resolved", "F")
    s.event(2.7, "case-opened", "G", priority=1)
    return s


@pytest.mark.parametrize("store", TABLE_STORES)
def test_restart_after_sigkill(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, store: str
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, extra_env={"CASECLOCK_STORE": store})
    first = WorkerProcess(dep, "w1")
    again = WorkerProcess(dep, "w1-restarted")
    try:
        first.start().wait_ready()
        t0 = now_us() + 300_000
        sent = run(play(kafka_bootstrap, t0, build_script(dep)))
        sleep_until(t0 + round(KILL_AT_S * US))
        first.kill()
        kill = now_us()
        again.start()  # same app id: same consumer group, same changelog
        before = run(read_alerts(kafka_bootstrap, dep, idle=0.3))
        again.wait_ready()
        ready = now_us()
        cutoff = ready + round(RUN_AFTER_READY_S * US)
        sleep_until(cutoff)
        live = run(read_alerts(kafka_bootstrap, dep, idle=0.5))
        assert again.proc is not None and again.proc.poll() is None, again.log_tail()
    finally:
        first.kill()
        again.stop()

    fired_before = [a for a in before if fired(a) < kill]
    assert len(fired_before) >= 4, describe(before, t0)  # elevations and B's ack warning
    expected = expected_alerts(dep, sent, cutoff)
    report = check_outage(
        live, expected, t0_us=t0, kill_us=kill, cutoff_us=cutoff, context=again.log_tail(60)
    )
    post = [a for a in live if fired(a) >= kill]
    late = [lateness_s(a) for a in post if due(a) > ready]
    print(
        f"\nrestart: killed at {(kill - t0) / US:.2f}s, ready again at {(ready - t0) / US:.2f}s "
        f"({(ready - kill) / US:.1f}s outage); {len(live)} alert copies, {report.repeats} "
        f"repeats, {report.catch_ups} catch-ups standing for {report.skipped} skipped alerts, "
        f"{len(late)} alerts due after the restart"
        f"\n  lateness of alerts due after the restart: p50={percentile(late, 50):.3f}s "
        f"p99={percentile(late, 99):.3f}s"
    )
    # The outage was long enough to need a catch-up, and the clocks went on after it.
    assert report.catch_ups >= 1, describe(live, t0)
    assert len(late) >= 2, describe(live, t0)
    a_post = sorted(
        (a for a in post if a["case_id"] == "A" and a["type"] == "update-due"), key=fired
    )
    assert a_post and a_post[0]["stage"] == "breach" and due(a_post[0]) < ready, describe(live, t0)
    assert [a["type"] for a in live if a["case_id"] == "F"] == ["elevate-to-l2"]
