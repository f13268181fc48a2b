"""Clock transitions (core/transitions.py): one record per obligation and change, ids that
repeat across runs, and a late fact that changes an outcome says what it supersedes.

Times are hours after the factories' origin on the built-in support-plus policy."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings

from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy
from caseclock.core.status import case_status
from caseclock.core.transitions import SlaEvent, obligation_of
from caseclock.replay import Replayer
from tests.factories import DEFAULT_POLICY, hours_of, note, opened, resolved, status
from tests.unit.core.test_engine_properties import PROPERTY_POLICY, history
from tests.unit.core.test_pauses_and_reopening import POLICY as PAUSE_POLICY

H = 3600 * 10**6


def run(
    events: Sequence[InboundEvent], extra_h: float = 0, policy: Policy = DEFAULT_POLICY
) -> tuple[Replayer, list[SlaEvent]]:
    r = Replayer(policy, sla_events=True)
    for e in events:
        r.feed(e)
    assert r.now is not None
    r.finish(r.now + round(extra_h * H))
    assert r.sla_events is not None
    return r, list(r.sla_events)


def brief(records: Sequence[SlaEvent]) -> list[tuple[str, str, float]]:
    from caseclock.core.timeutil import from_us

    return [(e.obligation, e.transition, hours_of(from_us(e.at_us))) for e in records]


def test_an_acknowledged_p1_and_its_missed_update() -> None:
    _, records = run([opened("A", 0, 1), note("A", 0.5)], extra_h=5)
    assert brief(records) == [
        ("ack", "started", 0.0),
        ("ack", "fulfilled", 0.5),
        ("update@2026-01-05T09:30:00Z", "started", 0.5),
        ("update@2026-01-05T09:30:00Z", "breached", 4.5),
        ("update@2026-01-05T13:30:00Z", "started", 4.5),
    ]
    fulfilled = records[1]
    assert fulfilled.elapsed_us == H // 2 and fulfilled.target_us == H
    assert fulfilled.deadline_us is not None


def test_a_late_note_in_time_supersedes_the_breach() -> None:
    _, records = run([opened("A", 0, 3), opened("X", 9, 3), note("A", 7)])
    ack = [e for e in records if e.case_id == "A" and e.obligation == "ack"]
    assert [(e.transition, hours_of_us(e.at_us)) for e in ack] == [
        ("started", 0.0),
        ("breached", 8.0),
        ("fulfilled", 7.0),
    ]
    assert ack[2].supersedes == ack[1].event_id


def hours_of_us(us: int) -> float:
    from caseclock.core.timeutil import from_us

    return hours_of(from_us(us))


def test_pauses_resolution_and_the_ids() -> None:
    events = [
        opened("C", 0, 3),
        status("C", 2, "pending"),
        status("C", 5, "open"),
        resolved("C", 6),
    ]
    _, records = run(events, policy=PAUSE_POLICY)
    assert brief(records) == [
        ("ack", "started", 0.0),
        ("ack", "paused", 2.0),
        ("ack", "resumed", 5.0),
        ("ack", "cancelled", 6.0),
    ]
    _, again = run(events, policy=PAUSE_POLICY)
    assert [e.event_id for e in again] == [e.event_id for e in records]
    assert len({e.event_id for e in records}) == len(records)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history())
def test_the_latest_record_of_each_obligation_is_the_final_status(
    events: list[InboundEvent],
) -> None:
    """What a consumer keeping the latest record per obligation ends with is the case's final
    status: for each clock of it, the record of its current obligation says its state."""
    r, records = run(events, extra_h=200, policy=PROPERTY_POLICY)
    assert r.now is not None
    latest: dict[tuple[str, str], SlaEvent] = {}
    for e in records:
        latest[(e.case_id, e.obligation)] = e
    expect = {
        "running": {"started", "resumed"},
        "paused": {"paused"},
        "fulfilled": {"fulfilled"},
        "breached": {"breached"},
        "stopped": {"cancelled"},
    }
    for case, s in r.states.items():
        st = case_status(r.engine, s, r.now)
        if st is None:
            continue
        for c in st.clocks:
            got = latest.get((case, obligation_of(c)))
            assert got is not None, (case, c)
            state = "running" if c.clock == "update" and c.state == "breached" else c.state
            assert got.transition in expect[state], (case, c, got)


def test_attainment_counts_the_latest_outcome_of_each_obligation() -> None:
    """A breach superseded by a note in time counts once, as met."""
    from caseclock.core.transitions import Attainment

    _, records = run(
        [opened("A", 0, 3), opened("B", 0, 3), opened("X", 9, 3), note("A", 7), note("B", 8.5)]
    )
    counted = Attainment()
    for e in records:
        counted.add(e)
    assert counted.counts() == {("support-plus", 3, "ack", "24x7"): (1, 1)}
