"""Pauses (status-changed) and reopening (case-reopened): docs/semantics.md sections 7.2, 7.3.

Times are hours after the factories' origin (Monday 2026-01-05 09:00 UTC) on a 24x7 plan with
the support-plus windows, unless a test says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from caseclock.core.alerts import Alert
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import policy_from_toml
from caseclock.core.timeutil import to_us
from caseclock.replay import Replayer, replay
from tests.factories import T0, eta, hours_of, note, opened, reopened, resolved, status

POLICY = policy_from_toml(
    """
default_plan = "support-plus"

[calendars.emea]
timezone = "Europe/Berlin"
[calendars.emea.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"

[plans.support-plus]
pause_statuses = ["pending", "on-hold"]
[plans.support-plus.priorities.1]
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"
[plans.support-plus.priorities.2]
acknowledge = "4h"
update_every = "48h"
elevate = "8h"
[plans.support-plus.priorities.3]
acknowledge = "8h"
update_every = "120h"

[plans.biz]
calendar = "emea"
pause_statuses = ["pending"]
[plans.biz.priorities.2]
acknowledge = "4h"
update_every = "8h"
""",
    "<test>",
)

Brief = tuple[str, str, str, float, float]


def run(events: Sequence[InboundEvent], until: float) -> list[Alert]:
    return replay(events, POLICY, until=to_us(T0) + round(until * 3600e6))


def brief(alerts: Sequence[Alert]) -> list[Brief]:
    return [(a.type, a.stage, a.reason, hours_of(a.due_at), hours_of(a.fired_at)) for a in alerts]


def of(alerts: Sequence[Alert], type_: str) -> list[Brief]:
    return [b for b in brief(alerts) if b[0] == type_]


def biz(case: str, hours: float, priority: int = 2) -> InboundEvent:
    return opened(case, hours, priority, plan="biz", policy=POLICY)


# --- pauses --------------------------------------------------------------------------------------


def test_a_pause_inside_a_window_extends_it_by_the_paused_time() -> None:
    events = [opened("C", 0, 3), status("C", 2, "pending"), status("C", 5, "open")]
    out = of(run(events, until=20), "ack-due")
    # 8 h window: 2 h before the pause, 6 h after it ends at 5 h.
    assert out == [
        ("ack-due", "warning", "no-acknowledgement", 9.0, 9.0),
        ("ack-due", "breach", "no-acknowledgement", 11.0, 11.0),
    ]


def test_a_pause_spanning_a_deadline_holds_it_until_the_pause_ends() -> None:
    events = [opened("C", 0, 3), status("C", 7, "on-hold"), status("C", 30, "open")]
    out = of(run(events, until=40), "ack-due")
    # The warning (6 h) fell before the pause; the breach's last hour counts after 30 h.
    assert out == [
        ("ack-due", "warning", "no-acknowledgement", 6.0, 6.0),
        ("ack-due", "breach", "no-acknowledgement", 31.0, 31.0),
    ]


def test_nothing_fires_while_paused_except_eta_passed() -> None:
    events = [
        opened("C", 0, 2),
        note("C", 0.5),
        eta("C", 1, 10),
        status("C", 2, "pending"),
    ]
    out = brief(run(events, until=500))
    assert out == [("update-due", "breach", "eta-passed", 10.0, 10.0)]


def test_a_status_outside_pause_statuses_does_not_pause() -> None:
    plain = [opened("C", 0, 1), note("C", 0.5)]
    with_status = [*plain, status("C", 1, "in-progress"), status("C", 2, "waiting-on-vendor")]
    assert brief(run(with_status, until=20)) == brief(run(plain, until=20))


def test_update_windows_are_extended_by_a_pause() -> None:
    events = [
        opened("C", 0, 1),
        note("C", 0.5),
        status("C", 1.5, "pending"),
        status("C", 3.5, "open"),
    ]
    out = of(run(events, until=7), "update-due")
    # 4 h window from 0.5 h, 2 h of it paused: breach at 6.5 h, warning at 3 h counted = 5.5 h.
    assert out == [
        ("update-due", "warning", "interval", 5.5, 5.5),
        ("update-due", "breach", "interval", 6.5, 6.5),
    ]


def test_a_pause_starting_exactly_at_a_deadline_came_in_time() -> None:
    # Set to pending at the deadline itself: the window had fully elapsed, and it is owed
    # (and fires) the moment the pause ends.
    events = [opened("C", 0, 3), status("C", 8, "pending"), status("C", 12, "open")]
    out = of(run(events, until=20), "ack-due")
    assert out == [
        ("ack-due", "warning", "no-acknowledgement", 6.0, 6.0),
        ("ack-due", "breach", "no-acknowledgement", 12.0, 12.0),
    ]


def test_a_late_status_changed_gives_what_it_gives_in_order() -> None:
    in_order = [opened("C", 0, 3), status("C", 2, "pending"), status("C", 5, "open")]
    # The pause becomes known at 3 h (before any deadline): the same alerts.
    late = [in_order[0], in_order[2], in_order[1]]
    assert brief(run(late, until=20)) == brief(run(in_order, until=20))


def test_a_late_pause_never_retracts_an_emitted_alert() -> None:
    # The pause from 0.25 h arrives at 2 h, after the breach at 1 h fired.
    events = [opened("C", 0, 1), opened("D", 2, 3), status("C", 0.25, "pending")]
    out = [b for b in brief(run(events, until=3)) if b[0] == "ack-due"]
    assert ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0) in out


def test_an_immediate_elevation_waits_for_the_end_of_a_pause() -> None:
    # Due when the case opened (its deadline says so), held while the case waits on the
    # customer, owed when the pause ends.
    events = [status("C", 0, "pending"), opened("C", 0.5, 1), status("C", 2, "open")]
    out = of(run(events, until=3), "elevate-to-l2")
    assert out == [("elevate-to-l2", "action", "priority-1", 0.5, 2.0)]


def test_points_past_due_when_a_case_is_learned_during_a_pause_wait_for_its_end() -> None:
    """Issue 21, 2 (spec section 7): a P1 opened at 10:00 (1 h) and learned at 12:00 (3 h),
    pending since 11:30 until 13:00. Its ack breach (11:00) and elevation (10:00) are held
    while it waits on the customer, and come out with the catch-up rule at 13:00."""
    events = [
        opened("X", 3, 3),
        opened("A", 1, 1),
        status("A", 2.5, "pending"),
        status("A", 4, "open"),
    ]
    out = [a for a in run(events, until=5) if a.case_id == "A"]
    assert brief(out) == [
        ("elevate-to-l2", "action", "priority-1", 1.0, 4.0),
        ("ack-due", "breach", "no-acknowledgement", 2.0, 4.0),
    ]
    assert [a.catch_up for a in out] == [False, True]
    # Learned at 12:00 with the pause still going on and never ended: nothing at all.
    assert [a for a in run(events[:3], until=40) if a.case_id == "A"] == []


def test_a_pause_learned_late_does_not_hold_an_eta_passed() -> None:
    events = [
        opened("X", 6, 3),
        opened("A", 0, 2),
        note("A", 0.5),
        eta("A", 1, 4),
        status("A", 2, "pending"),
    ]
    out = brief([a for a in run(events, until=20) if a.case_id == "A"])
    assert out == [("update-due", "breach", "eta-passed", 4.0, 6.0)]


def _late_pause(begins: float) -> list[Brief]:
    """A P1 acknowledged at 0.5 h: its first update breach is due at 4.5 h and fires. At 6 h a
    pause from `begins` to 5.5 h is learned (another case moves the clock)."""
    events = [
        opened("C", 0, 1),
        note("C", 0.5),
        opened("D", 6, 3),
        status("C", begins, "pending"),
        status("C", 5.5, "open"),
    ]
    return of([a for a in run(events, until=7) if a.case_id == "C"], "update-due")


def test_a_late_pause_that_begins_before_an_emitted_deadline_owes_the_moved_point() -> None:
    # Issue 21, 4: the pause from 4 h moves the 4.5 h breach by its 1.5 h, to 6 h.
    assert _late_pause(4.0) == [
        ("update-due", "warning", "interval", 3.5, 3.5),
        ("update-due", "breach", "interval", 4.5, 4.5),
        ("update-due", "breach", "interval", 6.0, 6.0),
    ]


def test_a_late_pause_that_begins_exactly_at_an_emitted_deadline_owes_it_again() -> None:
    # ... and one that begins at 4.5 h exactly moves it to the pause's end (5.5 h), a new
    # obligation owed when the pause is learned at 6 h (spec section 7, as amended).
    assert _late_pause(4.5) == [
        ("update-due", "warning", "interval", 3.5, 3.5),
        ("update-due", "breach", "interval", 4.5, 4.5),
        ("update-due", "breach", "interval", 5.5, 6.0),
    ]


def test_a_pause_counts_in_the_window_s_calendar() -> None:
    # Berlin business hours; the origin (Monday 09:00 UTC) is 10:00 local. Opened at 10:00 local,
    # pending from 12:00 local to Tuesday 10:00 local (24 h): of that, only Monday 12-17 and
    # Tuesday 09-10 are business hours, so the window is extended by 6 business hours, which
    # is the same as saying: 2 h before the pause, the other 2 h from Tuesday 10:00 local.
    events = [biz("B", 0), status("B", 2, "pending"), status("B", 24, "open")]
    out = of(run(events, until=48), "ack-due")
    assert out[-1][:4] == ("ack-due", "breach", "no-acknowledgement", 26.0)  # Tue 12:00 local
    # A pause after the deadline changes nothing: Monday 10:00-14:00 local elapsed before it.
    events = [biz("B", 0), status("B", 5, "pending"), status("B", 24, "open")]
    out = of(run(events, until=48), "ack-due")
    assert out[-1][:4] == ("ack-due", "breach", "no-acknowledgement", 4.0)


# --- reopening -------------------------------------------------------------------------------


def test_resolved_time_counts_toward_no_window() -> None:
    events = [opened("C", 0, 3), resolved("C", 2), reopened("C", 10)]
    out = of(run(events, until=30), "ack-due")
    assert out == [
        ("ack-due", "warning", "no-acknowledgement", 14.0, 14.0),
        ("ack-due", "breach", "no-acknowledgement", 16.0, 16.0),
    ]


def test_a_reopen_after_an_emitted_breach_owes_an_update_one_window_later() -> None:
    events = [
        opened("C", 0, 1),
        note("C", 2),  # late acknowledgement: the ack breach at 1 h went out
        resolved("C", 3),
        reopened("C", 5),
    ]
    alerts = run(events, until=9.5)
    out = brief(alerts)
    assert ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0) in out
    assert of(alerts, "update-due") == [
        ("update-due", "warning", "interval", 8.0, 8.0),
        ("update-due", "breach", "interval", 9.0, 9.0),
    ]
    assert [b for b in out if b[0] == "ack-due" and b[1] == "breach"] == [
        ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0)
    ]
    assert len({a.alert_id for a in alerts}) == len(alerts)
    assert [b for b in out if b[0] == "elevate-to-l2"] == [
        ("elevate-to-l2", "action", "priority-1", 0.0, 0.0)
    ]


def test_several_resolve_reopen_cycles() -> None:
    events = [opened("C", 0, 1), note("C", 0.5)]
    for k in range(4):
        base = 10 * k + 1
        events += [resolved("C", base), reopened("C", base + 5)]
    alerts = run(events, until=60)
    ups = of(alerts, "update-due")
    # Each cycle: resolved at 10k+1, reopened at 10k+6, an update owed at 10k+10 (the next
    # resolution at 10k+11 comes after it), warning at 10k+9. The last cycle runs on.
    for k in range(4):
        assert ("update-due", "breach", "interval", 10 * k + 10.0, 10 * k + 10.0) in ups
        assert ("update-due", "warning", "interval", 10 * k + 9.0, 10 * k + 9.0) in ups
    assert not [b for b in ups if any(10 * k + 1 < b[4] < 10 * k + 6 for k in range(4))]
    assert len({a.alert_id for a in alerts}) == len(alerts)
    r = Replayer(POLICY)
    for e in events:
        r.feed(e)
    assert len(r.states["C"].resolutions) == 8 and not r.states["C"].resolved


def test_the_latest_of_resolve_and_reopen_by_occurred_at_decides() -> None:
    # The reopen occurred before the resolution but arrives after it: the case stays resolved.
    events = [opened("C", 0, 1), note("C", 0.5), reopened("C", 1), resolved("C", 2)]
    late = [events[0], events[1], events[3], events[2]]
    assert of(run(late, until=50), "update-due") == of(run(events, until=50), "update-due")
    assert not [b for b in of(run(late, until=50), "update-due") if b[4] > 2]


def test_an_eta_that_passed_while_resolved_was_met() -> None:
    events = [opened("C", 0, 2), eta("C", 1, 5), resolved("C", 3), reopened("C", 8)]
    out = brief(run(events, until=60))
    assert not [b for b in out if b[2] == "eta-passed"]
    # Updates owed again one window (48 h) after the reopen.
    assert ("update-due", "breach", "interval", 56.0, 56.0) in out


def test_a_reopened_case_without_a_resolution_is_a_plain_case() -> None:
    plain = [opened("C", 0, 1), note("C", 0.5)]
    assert brief(run([*plain, reopened("C", 1)], until=20)) == brief(run(plain, until=20))
