"""Live and replay agree: P1, P2 and P3 flows on a real worker, against `caseclock replay`.

Events are produced at scripted wall-clock offsets, each with occurred_at = the wall time at
which it is produced, so the live worker and the replay's virtual clock see the same history.
Events are kept at least ~1 s away from the deadlines of their own case, so which of "the event"
and "the deadline" comes first never depends on broker or tick latency.

Timeline (FAST_POLICY; seconds after t0; w = warning, b = breach):

  A  P1, acked at 0.8, updates missed  elevate 0; update w3.8 b6.8 w9.8 b12.8 (every 6 s)
  B  P1 never acknowledged             elevate 0.5; ack w2.5 b4.5
  C  P2, ETA set at 1.5 for 7.5        ETA passes: update b7.5 (eta-passed), then w12.5 b17.5
  D  P2, workaround at 5.5             ack w4 (then acked), no elevation; update w10.5 b15.5
  E  P2, no ETA, customer note only    ack w5 b8; elevate 10 (no-eta-or-workaround)
  F  P3 acked at 1.2, raised to P1 at 6  elevate 6; P1 update windows from 1.2: w4.2 (late,
                                         at 6) b7.2 w10.2 b13.2
  G  P3 never acknowledged             ack w5.5 b9.5
  H  P2 resolved at 4.8                ack w3.3; no breach (6.3), no elevation (8.3)
  I  P2 resolved at 2                  nothing
  J  P1 with duplicates: the opening resent as is, the ack note resent at 6 with the same
     event_id and a later occurred_at  elevate 0.8; update w4.6 b7.6 w10.6 b13.6 (not moved)
  K  P1 note arrives before the case-opened (support note at 2, opened at 3): acknowledged
     from the note; elevate 3; update w5 b8 w11 b14
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from caseclock.live.config import TABLE_STORES
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import (
    MARGIN_US,
    alert_key,
    describe,
    due,
    expected_alerts,
    fired,
    lateness_s,
    percentile,
)
from tests.integration.kafka_io import read_alerts
from tests.integration.scripts import Script, play
from tests.integration.times import US, iso, now_us, sleep_until

CUTOFF_S = 16.0


def build_script(dep: Deployment) -> Script:
    s = Script(dep)
    support = {"author": "support", "visibility": "public"}
    # A: P1 acknowledged on time, then the updates are missed.
    s.event(0.0, "case-opened", "A", priority=1, customer_id="acme", subject="down")
    s.event(0.8, "case-noted", "A", **support)
    # B: P1 never acknowledged.
    s.event(0.5, "case-opened", "B", priority=1)
    # C: P2 with an ETA that passes.
    s.event(0.0, "case-opened", "C", priority=2)
    s.event(1.5, "eta-set", "C", eta=lambda t: iso(t + 6 * US))
    # D: P2 with a workaround (late acknowledgement) cancelling the elevation.
    s.event(1.0, "case-opened", "D", priority=2)
    s.event(5.5, "case-noted", "D", workaround=True, **support)
    # E: P2, nothing but a customer note: ack warning and breach, then elevation.
    s.event(2.0, "case-opened", "E", priority=2)
    s.event(3.5, "case-noted", "E", author="customer", visibility="public")
    # F: P3 acknowledged, raised to P1 mid-way.
    s.event(0.2, "case-opened", "F", priority=3)
    s.event(1.2, "case-noted", "F", **support)
    s.event(6.0, "priority-changed", "F", priority=1)
    # G: P3 never acknowledged.
    s.event(1.5, "case-opened", "G", priority=3)
    # H: P2 resolved between its ack warning and breach, before its elevation.
    s.event(0.3, "case-opened", "H", priority=2)
    s.event(4.8, "case-resolved", "H", resolution="restarted")
    # I: P2 resolved before anything was due.
    s.event(1.0, "case-opened", "I", priority=2)
    s.event(2.0, "case-resolved", "I")
    # J: duplicates: an exact re-delivery, and a re-stamped copy of a note (same event_id).
    s.event(0.8, "case-opened", "J", priority=1, label="J-open")
    s.resend(2.0, "J-open")
    s.event(1.6, "case-noted", "J", event_id="J-note", label="J-note", **support)
    s.event(6.0, "case-noted", "J", event_id="J-note", **support)
    # K: a note arriving before its case-opened.
    s.event(2.0, "case-noted", "K", **support)
    s.event(3.0, "case-opened", "K", priority=1)
    return s


@pytest.mark.parametrize("store", TABLE_STORES)
def test_live_alerts_match_replay(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, store: str
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, extra_env={"CASECLOCK_STORE": store})
    script = build_script(dep)
    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
        t0 = now_us() + 300_000
        sent = run(play(kafka_bootstrap, t0, script))
        cutoff = t0 + round(CUTOFF_S * US)
        sleep_until(cutoff)
        live = run(read_alerts(kafka_bootstrap, dep, idle=0.5))
        assert w.proc is not None and w.proc.poll() is None, w.log_tail()

    expected = expected_alerts(dep, sent, cutoff)
    compared_until = cutoff - MARGIN_US
    live_cmp = [a for a in live if due(a) <= compared_until]
    exp_cmp = [a for a in expected if due(a) <= compared_until]

    lateness = [lateness_s(a) for a in live]
    replay_fired = {a["alert_id"]: fired(a) for a in expected}
    lag = [
        (fired(a) - replay_fired[a["alert_id"]]) / US for a in live if a["alert_id"] in replay_fired
    ]
    print(
        f"\nlive vs replay: {len(live)} live alerts, {len(exp_cmp)} compared"
        f"\n  lateness fired_at-due_at: p50={percentile(lateness, 50):.3f}s "
        f"p99={percentile(lateness, 99):.3f}s max={max(lateness, default=float('nan')):.3f}s"
        f"\n  lag behind replay's firing instant: p50={percentile(lag, 50):.3f}s "
        f"p99={percentile(lag, 99):.3f}s max={max(lag, default=float('nan')):.3f}s"
    )

    # Without a crash, every obligation is emitted exactly once.
    repeated = [k for k, n in Counter(a["alert_id"] for a in live).items() if n > 1]
    assert not repeated, f"repeated alerts: {repeated}\n{describe(live, t0)}"
    assert all(fired(a) >= due(a) for a in live), describe(live, t0)
    assert sorted(map(alert_key, live_cmp)) == sorted(map(alert_key, exp_cmp)), (
        f"live:\n{describe(live_cmp, t0)}\nreplay:\n{describe(exp_cmp, t0)}\n{w.log_tail()}"
    )
    # The scenario exercised what it claims to.
    kinds = {(a["case_id"], a["type"], a["stage"], a["reason"]) for a in exp_cmp}
    for k in [
        ("A", "update-due", "breach", "interval"),
        ("B", "ack-due", "breach", "no-acknowledgement"),
        ("C", "update-due", "breach", "eta-passed"),
        ("D", "ack-due", "warning", "no-acknowledgement"),
        ("E", "elevate-to-l2", "action", "no-eta-or-workaround"),
        ("F", "elevate-to-l2", "action", "priority-1"),
        ("G", "ack-due", "breach", "no-acknowledgement"),
        ("K", "elevate-to-l2", "action", "priority-1"),
    ]:
        assert k in kinds, k
    assert not [a for a in exp_cmp if a["case_id"] == "I"]
    assert not [a for a in exp_cmp if a["case_id"] == "D" and a["type"] == "elevate-to-l2"]
    assert [(a["type"], a["stage"]) for a in exp_cmp if a["case_id"] == "H"] == [
        ("ack-due", "warning")
    ]
    assert not [a for a in exp_cmp if a["case_id"] == "K" and a["type"] == "ack-due"]
    # J's update clock runs from the first copy of its note: the re-stamped one changed nothing.
    note_at = next(s.at_us for s in sent if s.label == "J-note")
    j_updates = sorted(due(a) for a in exp_cmp if a["case_id"] == "J" and a["type"] == "update-due")
    assert j_updates[:2] == [note_at + 3 * US, note_at + 6 * US], describe(exp_cmp, t0)


# --- pauses and reopening on the real broker ---------------------------------------------------

PAUSE_POLICY = """
# FAST_POLICY's windows in a calendar open around the clock (a holiday far away keeps it off
# the 24x7 fast path, so the worker runs the calendar arithmetic), with a pause status.
[calendars.round-the-clock]
timezone = "Europe/Berlin"
holidays = ["2099-01-01"]
[calendars.round-the-clock.hours]
mon = "00:00-24:00"
tue = "00:00-24:00"
wed = "00:00-24:00"
thu = "00:00-24:00"
fri = "00:00-24:00"
sat = "00:00-24:00"
sun = "00:00-24:00"

[plans.support-plus]
warn_fraction = 0.5
calendar = "round-the-clock"
pause_statuses = ["pending"]
[plans.support-plus.priorities.1]
acknowledge = "4s"
update_every = "6s"
elevate = "immediately"
[plans.support-plus.priorities.3]
acknowledge = "8s"
update_every = "20s"
"""
PAUSE_CUTOFF_S = 17.0


def build_pause_script(dep: Deployment) -> Script:
    """Timeline (seconds after t0; counted time stops while pending or resolved):

    P  P3, pending 2-6              ack w8 b10 (4 s counted before the warning: 2 + 2)
    Q  P3, pending from 1 for good  nothing
    R  P1 acked at 1, resolved 2, reopened 4   elevate 0.5; update owed from the reopen:
                                               w7 b10 w13 b16
    S  P1 never acked: ack b4 fires; acked 5, resolved 6, reopened 8
                                    elevate 0; ack w2 b4; update w11 b14 (no second ack)
    T  P3, pending from 1 known late (sent at 3), open at 7: ack w10 b14
    """
    s = Script(dep)
    support = {"author": "support", "visibility": "public"}
    s.event(0.0, "case-opened", "P", priority=3, label="P-open")
    s.event(2.0, "status-changed", "P", status="pending", label="P-pending")
    s.event(6.0, "status-changed", "P", status="open", label="P-resume")
    s.event(0.0, "case-opened", "Q", priority=3)
    s.event(1.0, "status-changed", "Q", status="pending")
    s.event(0.5, "case-opened", "R", priority=1)
    s.event(1.0, "case-noted", "R", **support)
    s.event(2.0, "case-resolved", "R")
    s.event(4.0, "case-reopened", "R", label="R-reopen")
    s.event(0.0, "case-opened", "S", priority=1)
    s.event(5.0, "case-noted", "S", **support)
    s.event(6.0, "case-resolved", "S")
    s.event(8.0, "case-reopened", "S", label="S-reopen")
    s.event(0.0, "case-opened", "T", priority=3, label="T-open")
    s.event(  # sent at 3 s, occurred at 1 s
        3.0,
        "status-changed",
        "T",
        status="pending",
        label="T-pending",
        occurred_at=lambda t: iso(t - 2 * US),
    )
    s.event(7.0, "status-changed", "T", status="open", label="T-resume")
    return s


def test_pauses_and_reopens_live_match_replay(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, policy=PAUSE_POLICY)
    script = build_pause_script(dep)
    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
        t0 = now_us() + 300_000
        sent = run(play(kafka_bootstrap, t0, script))
        cutoff = t0 + round(PAUSE_CUTOFF_S * US)
        sleep_until(cutoff)
        live = run(read_alerts(kafka_bootstrap, dep, idle=0.5))
        assert w.proc is not None and w.proc.poll() is None, w.log_tail()

    expected = expected_alerts(dep, sent, cutoff)
    compared_until = cutoff - MARGIN_US

    def key(a: dict[str, object]) -> tuple[object, ...]:
        return (*alert_key(a), a["calendar"])

    live_cmp = sorted(key(a) for a in live if due(a) <= compared_until)
    exp_cmp = [a for a in expected if due(a) <= compared_until]
    repeated = [k for k, n in Counter(a["alert_id"] for a in live).items() if n > 1]
    assert not repeated, f"repeated alerts: {repeated}\n{describe(live, t0)}"
    assert live_cmp == sorted(map(key, exp_cmp)), (
        f"live:\n{describe(live, t0)}\nreplay:\n{describe(exp_cmp, t0)}\n{w.log_tail()}"
    )

    # The scenario exercised what it claims to, with deadlines computed here from the instants
    # the events were really produced at (their occurred_at): no assertion on latency.
    at = {x.label: x.at_us for x in sent if x.label}

    def dues(case: str, type_: str) -> list[tuple[str, int]]:
        return [
            (a["stage"], due(a))
            for a in sorted(exp_cmp, key=due)
            if a["case_id"] == case and a["type"] == type_
        ]

    # P: 2 s counted before the pause, the rest of the 4 s (warning) and 8 s (breach) after it.
    p_counted = at["P-pending"] - at["P-open"]
    assert dues("P", "ack-due") == [
        ("warning", at["P-resume"] + 4 * US - p_counted),
        ("breach", at["P-resume"] + 8 * US - p_counted),
    ]
    assert not [a for a in expected if a["case_id"] == "Q"]
    # R: after the reopen an update is owed one full window (6 s) later, warning at half.
    assert dues("R", "update-due")[:2] == [
        ("warning", at["R-reopen"] + 3 * US),
        ("breach", at["R-reopen"] + 6 * US),
    ]
    # S: the ack breach went out before the resolution and is not repeated after the reopen.
    assert [stage for stage, _ in dues("S", "ack-due")] == ["warning", "breach"]
    assert dues("S", "update-due")[:2] == [
        ("warning", at["S-reopen"] + 3 * US),
        ("breach", at["S-reopen"] + 6 * US),
    ]
    # T: the late pause counts from its occurred_at (1 s counted before it).
    t_counted = at["T-pending"] - 2 * US - at["T-open"]
    assert dues("T", "ack-due") == [
        ("warning", at["T-resume"] + 4 * US - t_counted),
        ("breach", at["T-resume"] + 8 * US - t_counted),
    ]
    assert {a["calendar"] for a in exp_cmp} == {"round-the-clock"}
