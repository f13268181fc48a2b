"""One test (at least) per rule of docs/semantics.md, driven through replay."""

from __future__ import annotations

from collections.abc import Sequence

from caseclock.core.alerts import Alert, alert_id
from caseclock.core.engine import Engine
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy, policy_from_mapping
from caseclock.core.timeutil import to_us
from caseclock.replay import Replayer, replay
from tests.factories import (
    DEFAULT_POLICY,
    T0,
    eta,
    hours_of,
    note,
    opened,
    reprioritised,
    resolved,
    ts,
)

Brief = tuple[str, str, str, float, float]


def run(
    events: Sequence[InboundEvent], until: float | None = None, policy: Policy = DEFAULT_POLICY
) -> list[Alert]:
    horizon = None if until is None else to_us(T0) + round(until * 3600e6)
    return replay(events, policy, until=horizon)


def brief(alerts: Sequence[Alert], case: str | None = None) -> list[Brief]:
    """(type, stage, reason, due hours, fired hours) for each alert."""
    return [
        (a.type, a.stage, a.reason, hours_of(a.due_at), hours_of(a.fired_at))
        for a in alerts
        if case is None or a.case_id == case
    ]


# --- acknowledgement --------------------------------------------------------------------------


def test_p1_unacknowledged_gets_warning_at_three_quarters_and_breach_at_one_hour() -> None:
    out = brief(run([opened("C", 0, 1)], until=2))
    assert ("ack-due", "warning", "no-acknowledgement", 0.75, 0.75) in out
    assert ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0) in out
    assert [a for a in out if a[0] == "ack-due"] == [
        ("ack-due", "warning", "no-acknowledgement", 0.75, 0.75),
        ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0),
    ]


def test_ack_deadline_is_inclusive() -> None:
    out = brief(run([opened("C", 0, 1), note("C", 1.0)], until=3))
    assert [a for a in out if a[0] == "ack-due"] == [
        ("ack-due", "warning", "no-acknowledgement", 0.75, 0.75)
    ]


def test_acknowledgement_one_microsecond_late_is_a_breach() -> None:
    late = 1.0 + 1 / 3600e6
    out = brief(run([opened("C", 0, 1), note("C", late)], until=3))
    assert ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0) in out


def test_only_public_support_notes_and_etas_acknowledge() -> None:
    events = [
        opened("C", 0, 2),
        note("C", 0.5, author="customer"),
        note("C", 0.6, visibility="internal"),
        note("C", 0.7, author="system"),
    ]
    out = brief(run(events, until=5), "C")
    assert ("ack-due", "breach", "no-acknowledgement", 4.0, 4.0) in out

    by_eta = brief(run([opened("D", 0, 2), eta("D", 1, 30)], until=5))
    assert not [a for a in by_eta if a[0] == "ack-due"]


def test_warn_fraction_null_disables_warnings() -> None:
    policy = policy_from_mapping(
        {
            "plans": {
                "support-plus": {
                    "warn_fraction": None,
                    "priorities": {"1": {"acknowledge": "1h", "update_every": "4h"}},
                }
            }
        }
    )
    out = brief(run([opened("C", 0, 1), note("C", 2)], until=20, policy=policy))
    assert ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0) in out
    assert ("update-due", "breach", "interval", 6.0, 6.0) in out
    assert all(a[1] != "warning" for a in out)


# --- elevation --------------------------------------------------------------------------------


def test_p1_elevated_immediately_at_open() -> None:
    out = brief(run([opened("C", 0, 1), note("C", 0.1)], until=0.5))
    assert out == [("elevate-to-l2", "action", "priority-1", 0.0, 0.0)]


def test_p2_elevated_after_8h_without_eta_or_workaround() -> None:
    out = brief(run([opened("C", 0, 2), note("C", 1)], until=9))
    assert ("elevate-to-l2", "action", "no-eta-or-workaround", 8.0, 8.0) in out


def test_p2_elevation_cancelled_by_workaround() -> None:
    out = brief(run([opened("C", 0, 2), note("C", 1), note("C", 7.5, workaround=True)], until=9))
    assert not [a for a in out if a[0] == "elevate-to-l2"]


def test_p2_elevation_cancelled_by_eta_at_exactly_8h() -> None:
    out = brief(run([opened("C", 0, 2), note("C", 1), eta("C", 8, 30)], until=9))
    assert not [a for a in out if a[0] == "elevate-to-l2"]


def test_workaround_from_the_customer_does_not_count() -> None:
    out = brief(
        run([opened("C", 0, 2), note("C", 1), note("C", 2, author="customer", workaround=True)], 9)
    )
    assert ("elevate-to-l2", "action", "no-eta-or-workaround", 8.0, 8.0) in out


def test_p3_never_elevated_automatically() -> None:
    out = brief(run([opened("C", 0, 3), note("C", 1)], until=200))
    assert not [a for a in out if a[0] == "elevate-to-l2"]


def test_priority_raised_to_1_elevates_at_that_event() -> None:
    out = brief(run([opened("C", 0, 3), note("C", 1), reprioritised("C", 5, 1)], until=5.5))
    assert ("elevate-to-l2", "action", "priority-1", 5.0, 5.0) in out


def test_elevation_at_most_once() -> None:
    events = [
        opened("C", 0, 1),
        note("C", 0.5),
        reprioritised("C", 2, 2),
        reprioritised("C", 3, 1),
    ]
    out = brief(run(events, until=20))
    assert len([a for a in out if a[0] == "elevate-to-l2"]) == 1


# --- updates ----------------------------------------------------------------------------------


def test_updates_owed_every_window_after_last_communication() -> None:
    out = brief(run([opened("C", 0, 1), note("C", 0.5)], until=9), "C")
    upd = [a for a in out if a[0] == "update-due"]
    assert upd == [
        ("update-due", "warning", "interval", 3.5, 3.5),
        ("update-due", "breach", "interval", 4.5, 4.5),
        ("update-due", "warning", "interval", 7.5, 7.5),
        ("update-due", "breach", "interval", 8.5, 8.5),
    ]


def test_update_on_time_restarts_the_window() -> None:
    out = brief(run([opened("C", 0, 1), note("C", 0.5), note("C", 4.5)], until=8.4), "C")
    upd = [a for a in out if a[0] == "update-due"]
    assert upd == [
        ("update-due", "warning", "interval", 3.5, 3.5),
        ("update-due", "warning", "interval", 7.5, 7.5),
    ]


def test_no_periodic_update_while_eta_pending_then_eta_passed_breach() -> None:
    events = [opened("C", 0, 1), note("C", 0.5), eta("C", 1, 10)]
    out = [a for a in brief(run(events, until=14.5)) if a[0] == "update-due"]
    assert out == [
        ("update-due", "breach", "eta-passed", 10.0, 10.0),
        ("update-due", "warning", "interval", 13.0, 13.0),
        ("update-due", "breach", "interval", 14.0, 14.0),
    ]


def test_eta_in_the_past_is_a_communication_but_no_pause() -> None:
    events = [opened("C", 0, 1), note("C", 0.5), eta("C", 2, 1)]
    out = [a for a in brief(run(events, until=6)) if a[0] == "update-due"]
    assert out == [
        ("update-due", "warning", "interval", 5.0, 5.0),
        ("update-due", "breach", "interval", 6.0, 6.0),
    ]


def test_newer_eta_replaces_the_pending_one() -> None:
    events = [opened("C", 0, 1), note("C", 0.5), eta("C", 1, 10), eta("C", 9, 20)]
    out = [a for a in brief(run(events, until=20)) if a[0] == "update-due"]
    assert out == [("update-due", "breach", "eta-passed", 20.0, 20.0)]


def test_communication_after_eta_passed_counts_from_it() -> None:
    events = [opened("C", 0, 1), note("C", 0.5), eta("C", 1, 10), note("C", 11)]
    out = [a for a in brief(run(events, until=15)) if a[0] == "update-due"]
    assert out == [
        ("update-due", "breach", "eta-passed", 10.0, 10.0),
        ("update-due", "warning", "interval", 14.0, 14.0),
        ("update-due", "breach", "interval", 15.0, 15.0),
    ]


def test_update_clock_starts_at_acknowledgement_only() -> None:
    out = brief(run([opened("C", 0, 3)], until=100))
    assert not [a for a in out if a[0] == "update-due"]


# --- resolution -------------------------------------------------------------------------------


def test_resolution_stops_every_clock() -> None:
    out = brief(run([opened("C", 0, 1), resolved("C", 0.5)], until=100))
    assert out == [("elevate-to-l2", "action", "priority-1", 0.0, 0.0)]


def test_resolution_at_the_deadline_wins() -> None:
    out = brief(run([opened("C", 0, 2), resolved("C", 4)], until=100))
    assert [a for a in out if a[1] == "breach"] == []


def test_late_resolution_known_before_firing_stops_alerts() -> None:
    # The resolution is learned late (arrives after a later event), but before the deadline
    # of the next update: nothing after it.
    events = [opened("C", 0, 1), note("C", 0.5), opened("D", 2, 3), resolved("C", 1)]
    out = brief(run(events, until=100), "C")
    assert out == [("elevate-to-l2", "action", "priority-1", 0.0, 0.0)]


# --- priority change --------------------------------------------------------------------------


def test_priority_raised_past_the_ack_deadline_fires_breach_now_without_warning() -> None:
    # P3 (8h to ack) raised to P1 (1h) at 5h: the P1 ack deadline passed at 1h.
    out = brief(run([opened("C", 0, 3), reprioritised("C", 5, 1)], until=5.5), "C")
    ack = [a for a in out if a[0] == "ack-due"]
    assert ack == [("ack-due", "breach", "no-acknowledgement", 1.0, 5.0)]


def test_priority_raised_to_2_past_8h_elevates_now() -> None:
    out = brief(run([opened("C", 0, 3), note("C", 1), reprioritised("C", 10, 2)], until=10.5))
    assert ("elevate-to-l2", "action", "no-eta-or-workaround", 8.0, 10.0) in out


def test_priority_lowered_keeps_emitted_alerts_and_uses_new_windows() -> None:
    events = [opened("C", 0, 1), reprioritised("C", 0.8, 3)]
    out = brief(run(events, until=9), "C")
    ack = [a for a in out if a[0] == "ack-due"]
    # The P1 warning fired at 0.75; P3's warning (6h) is the same obligation: not repeated.
    assert ack == [
        ("ack-due", "warning", "no-acknowledgement", 0.75, 0.75),
        ("ack-due", "breach", "no-acknowledgement", 8.0, 8.0),
    ]


def test_priority_changes_are_ordered_by_occurred_at_not_arrival() -> None:
    events = [opened("C", 0, 3), reprioritised("C", 2, 2), reprioritised("C", 1, 1)]
    r = Replayer(DEFAULT_POLICY)
    for e in events:
        r.feed(e)
    cur = r.engine.current(r.states["C"])
    assert cur is not None and cur[1].priority == 2


# --- catch-up ---------------------------------------------------------------------------------


def test_catch_up_emits_only_the_latest_breach_of_a_clock() -> None:
    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("C", 0, 1), to_us(T0))
    engine.apply(state, note("C", 0.5), to_us(T0))
    state.emitted |= 4  # pretend the elevation went out before the outage
    # The service was down from 0.5 h to 20 h: update windows at 4.5, 8.5, 12.5, 16.5 passed.
    now = to_us(T0) + 20 * 3600 * 10**6
    alerts = engine.evaluate(state, now)
    assert [
        (a.type, a.stage, hours_of(a.due_at), hours_of(a.fired_at), a.catch_up) for a in alerts
    ] == [("update-due", "breach", 16.5, 20.0, True)]
    # The clock continues from that deadline: the next warning is at 16.5 + 3 = 19.5? No: that
    # point was past due in the same catch-up and is superseded; next is the breach at 20.5.
    assert engine.next_due(state) == to_us(T0) + round(20.5 * 3600e6)
    assert engine.evaluate(state, now) == []


def test_catch_up_ack_warning_and_breach_collapse_to_breach() -> None:
    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("C", 0, 2), to_us(T0))
    alerts = engine.evaluate(state, to_us(T0) + 5 * 3600 * 10**6)
    ack = [a for a in alerts if a.type == "ack-due"]
    assert [(a.stage, a.catch_up) for a in ack] == [("breach", True)]


def test_case_learned_late_fires_catch_up_at_arrival() -> None:
    # C's case-opened (occurred at 0) arrives after an event at 6h.
    events = [opened("D", 6, 3), opened("C", 0, 1)]
    out = brief(run(events, until=6.5), "C")
    assert out == [
        ("elevate-to-l2", "action", "priority-1", 0.0, 6.0),
        ("ack-due", "breach", "no-acknowledgement", 1.0, 6.0),
    ]


# --- order, duplicates ------------------------------------------------------------------------


def test_note_before_case_opened_waits_for_it() -> None:
    events = [note("C", 0.5), opened("C", 0, 1)]
    out = brief(run(events, until=3))
    assert not [a for a in out if a[0] == "ack-due"]
    assert ("elevate-to-l2", "action", "priority-1", 0.0, 0.5) in out


def test_duplicate_event_changes_nothing() -> None:
    first = note("C", 0.5, event_id="n-1")
    events = [opened("C", 0, 1), first]
    r = Replayer(DEFAULT_POLICY)
    for e in events:
        r.feed(e)
    before = r.states["C"].to_dict()
    # Same event_id, different content (a buggy upstream): still a duplicate.
    r.feed(note("C", 0.9, event_id="n-1"))
    assert r.states["C"].to_dict() == before
    assert r.summary.duplicates == 1


def test_late_fact_never_retracts_an_emitted_alert() -> None:
    # The ack note occurred at 0.5 but arrives after the breach fired at 1h.
    events = [opened("C", 0, 1), opened("D", 1.5, 3), note("C", 0.5)]
    out = brief(run(events, until=2), "C")
    assert ("ack-due", "breach", "no-acknowledgement", 1.0, 1.0) in out


# --- alert identity and content -----------------------------------------------------------------


def test_alert_ids_are_deterministic_and_distinct() -> None:
    events = [opened("C", 0, 1, customer_id="acme", subject="down"), note("C", 0.5)]
    a = run(events, until=20)
    b = run(events, until=20)
    assert [x.alert_id for x in a] == [x.alert_id for x in b]
    assert len({x.alert_id for x in a}) == len(a)
    assert all(x.customer_id == "acme" and x.subject == "down" for x in a)
    assert alert_id("C", "ack-due", "breach", "no-acknowledgement", 1) == alert_id(
        "C", "ack-due", "breach", "no-acknowledgement", 2
    )


def test_alert_carries_what_a_notifier_needs() -> None:
    out = run([opened("C", 0, 1, customer_id="acme"), note("C", 0.2), eta("C", 1, 3)], until=3)
    breach = next(a for a in out if a.reason == "eta-passed")
    assert breach.eta is not None and hours_of(breach.eta) == 3
    assert hours_of(breach.opened_at) == 0 and breach.plan == "support-plus"
    assert breach.priority == 1


# --- time to open -----------------------------------------------------------------------------


def test_time_to_open_breach_is_measured() -> None:
    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("C", 2, 1, reported_at=ts(0)), 0)
    assert engine.time_to_open(state) == (1, 2 * 3600 * 10**6, True)
    ok, _ = engine.apply(None, opened("D", 1, 1, reported_at=ts(0)), 0)
    assert engine.time_to_open(ok) == (1, 3600 * 10**6, False)


# --- replay clock -----------------------------------------------------------------------------


def test_events_at_t_are_applied_before_alerts_due_at_t() -> None:
    # Ack warning due at 0.75; another case's event and the ack both at exactly 0.75.
    events = [opened("C", 0, 1), opened("D", 0.75, 3), note("C", 0.75)]
    out = brief(run(events, until=1), "C")
    assert [a for a in out if a[0] == "ack-due"] == []


def test_virtual_clock_never_goes_backwards() -> None:
    events = [opened("D", 10, 3), opened("C", 0, 1), note("C", 9)]
    out = brief(run(events, until=10), "C")
    assert all(a[4] >= 10 for a in out)


def test_horizon_is_inclusive() -> None:
    out = brief(run([opened("C", 0, 2), note("C", 0.5)], until=8))
    assert ("elevate-to-l2", "action", "no-eta-or-workaround", 8.0, 8.0) in out


def test_at_risk_between_warning_and_breach() -> None:
    engine = Engine(DEFAULT_POLICY)
    h = 3600 * 10**6
    state, _ = engine.apply(None, opened("C", 0, 1), to_us(T0))
    engine.evaluate(state, to_us(T0) + 0)  # elevation
    assert engine.at_risk(state) == []
    engine.evaluate(state, to_us(T0) + round(0.8 * h))  # ack warning
    assert engine.at_risk(state) == ["ack"]
    engine.apply(state, note("C", 0.9), to_us(T0))
    assert engine.at_risk(state) == []
    engine.evaluate(state, to_us(T0) + round(3.9 * h))  # update warning (0.9 + 3)
    assert engine.at_risk(state) == ["update"]
    engine.evaluate(state, to_us(T0) + round(4.9 * h))  # update breach
    assert engine.at_risk(state) == []


def test_alert_id_is_a_standard_uuid5() -> None:
    import uuid

    from caseclock.core.alerts import ALERT_NAMESPACE

    for args in [
        ("C", "update-due", "breach", "interval", 123),
        ("C", "ack-due", "warning", "", 0),
    ]:
        name = (
            "\x1f".join([args[0], args[1], args[2], args[3], str(args[4])])
            if args[1] == "update-due"
            else "\x1f".join(args[:3])
        )
        assert alert_id(*args) == str(uuid.uuid5(ALERT_NAMESPACE, name))


def test_duplicate_check_ignores_matches_across_digest_boundaries() -> None:
    from caseclock.core.state import seen_in

    seen = bytes(range(16))  # two stored digests: 00..07 and 08..0f
    assert seen_in(seen, bytes(range(8))) and seen_in(seen, bytes(range(8, 16)))
    assert not seen_in(seen, bytes(range(4, 12)))  # straddles both
    assert not seen_in(b"", bytes(8))


def test_facts_that_arrive_at_one_instant_are_all_applied_before_anything_fires() -> None:
    # D moves the clock to 10 h. C's case-opened (P3, occurred 0 h) arrives late: its ack
    # warning (6 h) and breach (8 h) are overdue. The acknowledgement (occurred 0.5 h) arrives
    # right after it, while the clock stands still: a backfill. The contract (section 4, as
    # amended) applies both before anything due at 10 h fires, so C was acknowledged in time
    # and nothing fires. A duplicate in between changes nothing.
    base = [opened("D", 10, 3), opened("C", 0, 3), note("C", 0.5, event_id="ack")]
    assert brief(run(base, until=10), "C") == []
    with_dup = [base[0], base[1], base[0], base[2]]
    assert brief(run(with_dup, until=10), "C") == []
    # What the backfill left overdue fires once the clock moves on, at the next arrival.
    unanswered = [opened("D", 10, 3), opened("C", 0, 3), opened("E", 10.5, 3)]
    expected = [("ack-due", "breach", "no-acknowledgement", 8.0, 10.0)]
    assert brief(run(unanswered, until=11), "C") == expected


def test_the_contract_s_backfill_example_gives_nothing() -> None:
    """Spec section 4's example (issue 21, 1): X opened at 12:00, then A's whole history,
    opened 10:00 P1, acknowledged 10:20 and resolved 10:40, replayed until 12:00."""
    history = [
        opened("X", 3, 3),
        opened("A", 1, 1),
        note("A", 1 + 20 / 60),
        resolved("A", 1 + 40 / 60),
    ]
    assert brief(run(history, until=3), "A") == []
    # The same history arriving in time elevates A at once and nothing else.
    in_time = sorted(history, key=lambda e: e.occurred_at)
    assert brief(run(in_time, until=3), "A") == [
        ("elevate-to-l2", "action", "priority-1", 1.0, 1.0)
    ]


def test_one_breach_classification_for_replay_and_live() -> None:
    """Ack and update breaches, and the timed elevation, are breaches; warnings and the
    immediate elevation on entering a priority are not (replay summaries and live metrics both
    use breach_clock)."""
    from caseclock.core.alerts import Alert, breach_clock

    def a(type_: str, stage: str, reason: str) -> Alert:
        return Alert("id", type_, stage, reason, "C", 1, "p", 0, 0, 0)  # type: ignore[arg-type]

    assert breach_clock(a("ack-due", "breach", "no-acknowledgement")) == "ack"
    assert breach_clock(a("update-due", "breach", "interval")) == "update"
    assert breach_clock(a("update-due", "breach", "eta-passed")) == "update"
    assert breach_clock(a("elevate-to-l2", "action", "no-eta-or-workaround")) == "elevation"
    assert breach_clock(a("elevate-to-l2", "action", "priority-1")) is None
    assert breach_clock(a("ack-due", "warning", "no-acknowledgement")) is None
