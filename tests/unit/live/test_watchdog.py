"""The watches: a recovery is stuck when it makes no progress, not when it is long; a commit
is stalled when a hole holds it, not when it is slow."""

from __future__ import annotations

from caseclock.live.watchdog import CommitWatch, StallWatch

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


# --- CommitWatch ---------------------------------------------------------------------------


def test_a_hole_that_holds_the_commit_for_the_timeout_is_a_stall() -> None:
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"in[0]": (100, 105)})  # 100..104 never acknowledged, 105.. were
    assert w.stalled(59 * S) == {}
    w.observe(30 * S, {"in[0]": (100, 240)})  # later messages go on being processed
    assert w.stalled(61 * S) == {"in[0]": 61.0}


def test_a_commit_that_moves_restarts_the_clock() -> None:
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"in[0]": (100, 105)})
    w.observe(50 * S, {"in[0]": (180, 190)})  # committed moved: a new hole, seen now
    assert w.stalled(100 * S) == {}
    assert w.stalled(111 * S) == {"in[0]": 61.0}


def test_pending_acks_right_behind_the_commit_are_no_hole() -> None:
    """Faust commits when the lowest acknowledged offset is at most one past the committed
    one; only a wider hole holds it for good."""
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"a": (100, 100), "b": (100, 101), "c": (100, None), "d": (None, 7)})
    w.observe(61 * S, {"a": (100, 100), "b": (100, 101), "c": (100, None), "d": (None, 7)})
    assert w.stalled(120 * S) == {}


def test_a_filled_hole_and_a_rebalance_clear_the_watch() -> None:
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"in[0]": (100, 105), "in[1]": (5, 9)})
    w.observe(10 * S, {"in[1]": (5, 9)})  # in[0]'s hole filled: committed caught up
    assert set(w.stalled(70 * S)) == {"in[1]"}
    w.reset()
    assert w.stalled(200 * S) == {}
