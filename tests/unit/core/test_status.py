"""A case's SLA status (core/status.py): every clock's state, deadline and time left.

Times are hours after the factories' origin on the built-in support-plus policy unless a test
says otherwise."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings

from caseclock.core.engine import Engine
from caseclock.core.facts import InboundEvent
from caseclock.core.state import CaseState
from caseclock.core.status import CaseStatus, case_status
from caseclock.core.timeutil import to_us
from caseclock.replay import Replayer
from tests.factories import DEFAULT_POLICY, T0, eta, note, opened, resolved, status
from tests.unit.core.test_engine_properties import PROPERTY_POLICY, history
from tests.unit.core.test_pauses_and_reopening import POLICY as PAUSE_POLICY

H = 3600 * 10**6


def at(hours: float) -> int:
    return to_us(T0) + round(hours * H)


def fold(events: Sequence[InboundEvent], until: float, policy: object = DEFAULT_POLICY) -> Replayer:
    r = Replayer(policy)  # type: ignore[arg-type]
    for e in events:
        r.feed(e)
    r.finish(at(until))
    return r


def status_of(r: Replayer, case: str, hours: float) -> CaseStatus:
    st = case_status(r.engine, r.states[case], at(hours))
    assert st is not None
    return st


def test_an_unanswered_p1_runs_its_ack_clock() -> None:
    r = fold([opened("A", 0, 1)], until=0.5)
    st = status_of(r, "A", 0.5)
    ack = st.clock("ack")
    assert ack is not None
    assert (ack.state, ack.deadline_us, ack.warn_us, ack.left_us) == (
        "running",
        at(1),
        at(0.75),
        H // 2,
    )
    assert st.elevated and st.clock("elevation") is None  # immediate: an action, not a clock
    assert st.clock("update") is None  # not acknowledged yet
    assert st.next_deadline_us == at(1)


def test_an_acknowledgement_fulfils_the_ack_and_starts_the_updates() -> None:
    r = fold([opened("A", 0, 1), note("A", 0.5)], until=1)
    st = status_of(r, "A", 1)
    ack, upd = st.clock("ack"), st.clock("update")
    assert ack is not None and (ack.state, ack.at_us) == ("fulfilled", at(0.5))
    assert upd is not None
    assert (upd.state, upd.started_us, upd.deadline_us, upd.warn_us, upd.left_us) == (
        "running",
        at(0.5),
        at(4.5),
        at(3.5),
        H * 7 // 2,
    )


def test_a_late_acknowledgement_is_a_breach_even_without_an_alert() -> None:
    # Learned as a backfill: no alert fired (the note was applied with the opening), but the
    # note came 30 minutes after the 1 h deadline: attainment counts a breach.
    r = fold([opened("X", 3, 3), opened("A", 0, 1), note("A", 1.5)], until=3)
    ack = status_of(r, "A", 3).clock("ack")
    assert ack is not None and (ack.state, ack.at_us, ack.deadline_us) == (
        "breached",
        at(1),
        at(1),
    )


def test_a_breach_reported_then_answered_by_a_late_note_in_time_is_fulfilled() -> None:
    # The breach went out at 1 h; at 2 h a note dated 0.5 h arrives: the case was answered
    # in time after all. The alert stays emitted; the status tells the truth.
    r = fold([opened("A", 0, 1), opened("X", 2, 3), note("A", 0.5)], until=2)
    ack = status_of(r, "A", 2).clock("ack")
    assert ack is not None and (ack.state, ack.at_us) == ("fulfilled", at(0.5))


def test_a_missed_update_is_breached_until_the_next_communication() -> None:
    events = [opened("A", 0, 1), note("A", 0.5)]
    upd = status_of(fold(events, until=5), "A", 5).clock("update")
    assert upd is not None
    assert (upd.state, upd.at_us, upd.deadline_us) == ("breached", at(4.5), at(8.5))
    upd = status_of(fold([*events, note("A", 6)], until=6), "A", 6).clock("update")
    assert upd is not None and (upd.state, upd.deadline_us) == ("running", at(10))


def test_a_paused_clock_keeps_its_time_left() -> None:
    events = [opened("C", 0, 3), status("C", 2, "pending")]
    r = fold(events, until=30, policy=PAUSE_POLICY)
    early, late = status_of(r, "C", 3), status_of(r, "C", 30)
    assert early.paused and late.paused
    a1, a2 = early.clock("ack"), late.clock("ack")
    assert a1 is not None and a2 is not None
    assert a1.state == a2.state == "paused"
    assert a1.left_us == a2.left_us == 6 * H  # 2 h of the 8 h counted before the pause
    assert a1.deadline_us is None  # held until the pause ends, which nobody knows yet


def test_resolution_stops_open_clocks() -> None:
    r = fold([opened("A", 0, 2), resolved("A", 1)], until=2)
    st = status_of(r, "A", 2)
    assert st.resolved
    assert [(c.clock, c.state, c.at_us) for c in st.clocks] == [
        ("ack", "stopped", at(1)),
        ("elevation", "stopped", at(1)),
    ]


def test_an_eta_in_time_fulfils_a_timed_elevation() -> None:
    r = fold([opened("B", 0, 2), note("B", 1), eta("B", 2, 30)], until=10)
    st = status_of(r, "B", 10)
    el, upd = st.clock("elevation"), st.clock("update")
    assert el is not None and (el.state, el.at_us, el.deadline_us) == ("fulfilled", at(2), at(8))
    assert upd is not None and (upd.state, upd.deadline_us) == ("running", at(30))


def test_an_elevation_that_fired_is_breached() -> None:
    st = status_of(fold([opened("B", 0, 2), note("B", 1)], until=9), "B", 9)
    el = st.clock("elevation")
    assert el is not None and (el.state, el.at_us) == ("breached", at(8))


def test_time_to_open() -> None:
    late = opened("T", 2, 1, reported_at=T0.isoformat())
    tto = status_of(fold([late], until=2), "T", 2).clock("time_to_open")
    assert tto is not None
    assert (tto.state, tto.started_us, tto.deadline_us, tto.at_us) == (
        "breached",
        at(0),
        at(1),
        at(2),
    )


def test_the_json_form() -> None:
    doc = status_of(fold([opened("A", 0, 1)], until=0.5), "A", 0.5).to_dict()
    assert doc["clocks"][0] == {
        "clock": "ack",
        "state": "running",
        "deadline": "2026-01-05T10:00:00Z",
        "warning": "2026-01-05T09:45:00Z",
        "at": None,
        "started": "2026-01-05T09:00:00Z",
        "target_seconds": 3600.0,
        "left_seconds": 1800.0,
        "elapsed_seconds": 1800.0,
        "calendar": "24x7",
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history())
def test_the_status_agrees_with_the_alerts(events: list[InboundEvent]) -> None:
    """On random histories (calendars, pauses, reopens, late facts): the ack clock is breached
    exactly when an ack breach went out or the acknowledgement came after the deadline, and
    a breach alert's due_at is the status's deadline; a timed elevation is breached exactly
    when it fired."""
    r = Replayer(PROPERTY_POLICY)
    fired = []
    for e in events:
        fired += r.feed(e)
    assert r.now is not None
    end = r.now + 200 * H
    fired += r.finish(end)
    for case, s in r.states.items():
        st = case_status(r.engine, s, end)
        if st is None:
            continue
        ack = st.clock("ack")
        assert ack is not None
        breach = [
            a for a in fired if a.case_id == case and (a.type, a.stage) == ("ack-due", "breach")
        ]
        late_in_time = s.comm_first is not None and (
            ack.deadline_us is None or s.comm_first <= ack.deadline_us
        )
        if breach and not late_in_time:
            assert ack.state == "breached"
        elif breach:  # the truth came late: the breach reported then is superseded
            assert ack.state == "fulfilled"
        elif ack.state == "breached":
            assert s.comm_first is not None and ack.deadline_us is not None
            assert s.comm_first > ack.deadline_us
        if ack.state == "fulfilled":
            assert late_in_time
        elevated = [a for a in fired if a.case_id == case and a.reason == "no-eta-or-workaround"]
        el = st.clock("elevation")
        if elevated:
            assert el is None or el.state == "breached" or _priority_changed(s)
        if el is not None and el.state == "breached":
            assert elevated
        if st.resolved:
            assert all(c.state != "running" for c in st.clocks)


def _priority_changed(s: CaseState) -> bool:
    return len({p for _, _, p in s.priorities}) > 1


def test_engine_status_needs_an_opened_case() -> None:
    engine = Engine(DEFAULT_POLICY)
    s, _ = engine.apply(None, note("N", 0), at(0))
    assert case_status(engine, s, at(1)) is None
