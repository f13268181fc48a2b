"""The recovery watch: a recovery is stuck when it makes no progress, not when it is long."""

from __future__ import annotations

from caseclock.live.watchdog import StallWatch

S = 10**6


def test_progress_keeps_a_long_recovery_alive() -> None:
    w = StallWatch(timeout_s=10)
    w.begin(0)
    for t in range(0, 120, 5):  # two minutes of recovery, the offsets advancing
        w.observe(t * S, ("offsets", t))
        assert w.stuck_for(t * S) is None
    assert w.elapsed(120 * S) == 120.0


def test_no_progress_for_the_timeout_is_a_stall() -> None:
    w = StallWatch(timeout_s=10)
    w.begin(0)
    w.observe(1 * S, ("offsets", 7))
    w.observe(5 * S, ("offsets", 7))
    assert w.stuck_for(11 * S) is None  # 10 s since the last change: at the limit
    assert w.stuck_for(12 * S) == 11.0
    w.observe(12 * S, ("offsets", 8))  # progress again
    assert w.stuck_for(12 * S) is None


def test_a_new_rebalance_restarts_the_clock_and_done_stops_it() -> None:
    w = StallWatch(timeout_s=10)
    w.begin(0)
    w.observe(0, "m")
    w.begin(30 * S)  # a revocation: a new recovery is owed
    assert w.stuck_for(35 * S) is None
    w.observe(35 * S, "m")  # the same marker as before counts as new after begin()
    assert w.stuck_for(44 * S) is None and w.stuck_for(46 * S) == 11.0
    w.done()
    assert not w.recovering and w.stuck_for(10**12) is None and w.elapsed(0) is None
    w.observe(10**12, "x")  # ignored while serving
    assert w.stuck_for(10**12) is None
