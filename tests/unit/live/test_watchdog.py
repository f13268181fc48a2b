"""The watches: a recovery is stuck when it makes no progress, not when it is long; a commit
is stalled when a hole holds it, not when it is slow."""

from __future__ import annotations

from caseclock.live.watchdog import CommitWatch, StallWatch, offset_runs, partition_name

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


def test_a_commit_held_behind_what_was_read_for_the_timeout_is_a_stall() -> None:
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"in[0]": (100, 140)})  # read up to 140, committed up to 99
    assert w.stalled(59 * S) == {}
    w.observe(30 * S, {"in[0]": (100, 240)})  # later messages go on being read
    assert w.stalled(61 * S) == {"in[0]": 61.0}


def test_a_commit_that_catches_up_with_old_reads_is_healthy() -> None:
    w = CommitWatch(timeout_s=60)
    for t in range(0, 300, 5):  # under load: reads move on, commits follow a few s behind
        w.observe(t * S, {"in[0]": (100 + 10 * t - 30, 100 + 10 * t)})
        assert w.stalled(t * S) == {}


def test_a_commit_that_creeps_far_behind_the_reads_is_a_stall() -> None:
    """The kill-under-load symptom: the committed offset moves by a few offsets at a time
    while the reads run thousands ahead; the oldest uncommitted read ages past the timeout."""
    w = CommitWatch(timeout_s=60)
    for t in range(0, 65, 5):
        w.observe(t * S, {"in[1]": (1334 + t // 5, 8000 + 40 * t)})
    assert w.stalled(65 * S) == {"in[1]": 65.0}


def test_everything_read_committed_is_nothing_held() -> None:
    """Once the load stops, a healthy worker's commit catches up with what it read (the
    committed offset is the next one to read); a partition with nothing read holds nothing."""
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"a": (141, 140), "b": (100, None)})
    w.observe(61 * S, {"a": (141, 140), "b": (100, None)})
    assert w.stalled(120 * S) == {}


def test_nothing_ever_committed_while_reading_is_held_too() -> None:
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"a": (None, 5)})
    w.observe(61 * S, {"a": (None, 90)})
    assert w.stalled(61 * S) == {"a": 61.0}


def test_a_caught_up_commit_and_a_rebalance_clear_the_watch() -> None:
    w = CommitWatch(timeout_s=60)
    w.observe(0, {"in[0]": (100, 140), "in[1]": (5, 9)})
    w.observe(10 * S, {"in[0]": (141, 140), "in[1]": (5, 9)})  # in[0] committed all it read
    assert set(w.stalled(70 * S)) == {"in[1]"}
    w.reset()
    assert w.stalled(200 * S) == {}


def test_partition_name_is_topic_and_partition() -> None:
    assert partition_name(("cases", 3)) == "cases[3]"
    assert partition_name("odd") == "odd"


def test_offset_runs_shows_where_the_commit_would_stop() -> None:
    assert offset_runs([]) == "[]"
    assert offset_runs([4, 5, 6, 8, 10, 11]) == "[4-6 8 10-11]"
    assert offset_runs([1, 1, 2]) == "[1-2]"
    many = [i * 2 for i in range(10)]
    assert offset_runs(many, limit=3) == "[0 2 4 ... (10 runs)]"
