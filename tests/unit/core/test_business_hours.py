"""Business hours, holidays and time zones in the engine (docs/semantics.md section 7.1).

Every test states its instants in the calendar's local time and checks the UTC deadline the
alert carries, so a reader can follow the arithmetic with a wall calendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from caseclock.contracts.inbound import decode_event
from caseclock.core.alerts import Alert
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import PolicyError, policy_from_toml
from caseclock.core.timeutil import to_us
from caseclock.replay import replay

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

POLICY_TOML = """
default_plan = "gold"

[calendars.emea]
timezone = "Europe/Berlin"
holidays = ["2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"]
[calendars.emea.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-13:00,14:00-17:00"

[calendars.us-east]
timezone = "America/New_York"
holidays = ["2026-11-26", "2026-12-25"]
[calendars.us-east.hours]
mon = "08:00-18:00"
tue = "08:00-18:00"
wed = "08:00-18:00"
thu = "08:00-18:00"
fri = "08:00-18:00"

[plans.gold]
calendar = "emea"
pause_statuses = ["pending", "on-hold"]

[plans.gold.priorities.1]
calendar = "24x7"
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"

[plans.gold.priorities.2]
time_to_open = "4h"
acknowledge = "4h"
update_every = "8h"
elevate = "8h"

[plans.gold.priorities.3]
acknowledge = "8h"
update_every = "16h"

[plans.silver]
calendar = "us-east"

[plans.silver.priorities.2]
acknowledge = "4h"
update_every = "10h"
"""
POLICY = policy_from_toml(POLICY_TOML, "<test>")
_n = iter(range(10**9))


def local(text: str, zone: ZoneInfo = BERLIN) -> datetime:
    """A local wall-clock time ('2026-01-09 15:00') in the calendar's zone."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(type_: str, case: str, when: datetime, **fields: Any) -> InboundEvent:
    doc = {
        "type": type_,
        "event_id": f"bh-{next(_n)}",
        "case_id": case,
        "occurred_at": when.isoformat(),
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()},
    }
    return decode_event(orjson.dumps(doc), POLICY)


def opened(case: str, when: datetime, priority: int = 2, **kw: Any) -> InboundEvent:
    return event("case-opened", case, when, priority=priority, **kw)


def note(case: str, when: datetime) -> InboundEvent:
    return event("case-noted", case, when, author="support", visibility="public")


def run(events: Sequence[InboundEvent], until: datetime) -> list[Alert]:
    return replay(events, POLICY, until=to_us(until))


def due(alerts: Sequence[Alert], type_: str, stage: str) -> list[datetime]:
    return [a.due_at for a in alerts if a.type == type_ and a.stage == stage]


# --- windows in business time -------------------------------------------------------------------


def test_a_window_across_a_weekend_resumes_on_monday() -> None:
    # Friday 15:00: two hours until 17:00, the other two on Monday from 09:00.
    out = run([opened("C", local("2026-01-09 15:00"))], until=local("2026-01-13 00:00"))
    assert due(out, "ack-due", "breach") == [local("2026-01-12 11:00")]
    assert due(out, "ack-due", "warning") == [local("2026-01-12 10:00")]
    assert all(a.calendar == "emea" for a in out)


def test_a_window_across_holidays_skips_them() -> None:
    # Wednesday 23 December 15:00: 24th-26th are holidays, then the weekend.
    out = run([opened("C", local("2026-12-23 15:00"))], until=local("2026-12-30 00:00"))
    assert due(out, "ack-due", "breach") == [local("2026-12-28 11:00")]


def test_spring_dst_change_keeps_business_hours_in_local_time() -> None:
    # Berlin moves to summer time on Sunday 29 March 2026: Monday 09:00 is 07:00 UTC, not 08:00.
    out = run([opened("C", local("2026-03-27 15:00"))], until=local("2026-04-01 00:00"))
    assert due(out, "ack-due", "breach") == [utc("2026-03-30 09:00")]
    assert local("2026-03-27 15:00").utcoffset() != local("2026-03-30 11:00").utcoffset()


def test_autumn_dst_change_keeps_business_hours_in_local_time() -> None:
    # Berlin returns to standard time on Sunday 25 October 2026: Monday 11:00 is 10:00 UTC.
    out = run([opened("C", local("2026-10-23 15:00"))], until=local("2026-10-28 00:00"))
    assert due(out, "ack-due", "breach") == [utc("2026-10-26 10:00")]


def test_a_window_that_starts_outside_hours_starts_at_the_next_opening() -> None:
    out = run([opened("C", local("2026-01-06 20:00"))], until=local("2026-01-08 00:00"))
    assert due(out, "ack-due", "breach") == [local("2026-01-07 13:00")]
    assert due(out, "ack-due", "warning") == [local("2026-01-07 12:00")]


def test_a_deadline_exactly_at_closing_time_is_that_instant() -> None:
    out = run([opened("C", local("2026-01-05 13:00"))], until=local("2026-01-07 00:00"))
    assert due(out, "ack-due", "breach") == [local("2026-01-05 17:00")]
    fired = [a.fired_at for a in out if a.stage == "breach"]
    assert fired == [local("2026-01-05 17:00")]  # fires at 17:00, not at the next opening


def test_the_lunch_gap_between_ranges_does_not_count() -> None:
    # Friday 11:00 + 4 h: 11-13, then 14-16 (13:00-14:00 is closed).
    out = run([opened("C", local("2026-01-09 11:00"))], until=local("2026-01-10 00:00"))
    assert due(out, "ack-due", "breach") == [local("2026-01-09 16:00")]


def test_a_priority_can_name_its_own_calendar() -> None:
    # P1 counts 24x7 inside a business-hours plan: a Saturday-night case is due within the hour.
    out = run([opened("C", local("2026-01-10 23:00"), 1)], until=local("2026-01-11 03:00"))
    assert due(out, "ack-due", "breach") == [local("2026-01-11 00:00")]
    assert due(out, "elevate-to-l2", "action") == [local("2026-01-10 23:00")]
    assert {a.calendar for a in out} == {"24x7"}


def test_timed_elevation_counts_in_business_time() -> None:
    # 8 business hours after Monday 13:00: Monday 13-17, Tuesday 09-13.
    out = run([opened("C", local("2026-01-05 13:00"))], until=local("2026-01-08 00:00"))
    assert due(out, "elevate-to-l2", "action") == [local("2026-01-06 13:00")]


def test_update_windows_count_in_business_time() -> None:
    # P3, acknowledged Thursday 15:00: 16 business hours = Thu 2 h + Fri 7 h + Mon 7 h.
    events = [opened("C", local("2026-01-08 14:00"), 3), note("C", local("2026-01-08 15:00"))]
    out = run(events, until=local("2026-01-13 00:00"))
    assert due(out, "update-due", "breach")[0] == local("2026-01-12 16:00")
    # The warning at 12 business hours: Thu 2 h + Fri 7 h + Mon 3 h.
    assert due(out, "update-due", "warning")[0] == local("2026-01-12 12:00")


def test_eta_passed_fires_at_the_eta_even_outside_hours() -> None:
    events = [
        opened("C", local("2026-01-05 10:00"), 3),
        event("eta-set", "C", local("2026-01-05 11:00"), eta=local("2026-01-05 21:00")),
    ]
    out = run(events, until=local("2026-01-08 00:00"))
    passed = [a for a in out if a.reason == "eta-passed"]
    assert [a.due_at for a in passed] == [local("2026-01-05 21:00")]
    assert passed[0].fired_at == local("2026-01-05 21:00")
    # The next update window counts in the calendar from the ETA: Tue 8 h + Wed 8 h.
    assert due(out, "update-due", "breach")[1] == local("2026-01-07 17:00")


def test_time_to_open_counts_in_business_time() -> None:
    from caseclock.core.engine import Engine

    engine = Engine(POLICY)
    # Reported Friday 16:00, opened Monday 11:00: 3 business hours, within the 4 h window.
    ev = opened("C", local("2026-01-12 11:00"), reported_at=local("2026-01-09 16:00"))
    state, _ = engine.apply(None, ev, to_us(local("2026-01-12 11:00")))
    assert engine.time_to_open(state) == (2, 3 * 3600 * 10**6, False)


def test_a_second_zone_with_its_own_holiday() -> None:
    # New York, Wednesday 25 November 2026 16:00 EST: 2 h that day, Thanksgiving closed,
    # 2 h on Friday from 08:00.
    ev = opened("U", local("2026-11-25 16:00", NEW_YORK), plan="silver")
    out = run([ev], until=local("2026-11-28 00:00", NEW_YORK))
    assert due(out, "ack-due", "breach") == [local("2026-11-27 10:00", NEW_YORK)]
    assert {a.calendar for a in out} == {"us-east"}


def test_two_zones_with_holidays_replay_a_generated_history() -> None:
    """The issue's "done when": a business-hours policy with holidays in two zones replays a
    generated history, and every alert is where the spec puts it (checked independently with
    the calendar's add(), which is tested against a minute-stepping reference)."""
    import random

    rng = random.Random(10)
    cals = {"gold": POLICY.plans["gold"], "silver": POLICY.plans["silver"]}
    start = to_us(utc("2026-11-20 00:00"))
    events: list[InboundEvent] = []
    expected: set[tuple[str, str, datetime]] = set()
    for i in range(200):
        plan = rng.choice(["gold", "silver"])
        prio = 2 if plan == "silver" else rng.choice([2, 3])
        t0 = start + rng.randrange(40 * 24 * 3600) * 10**6
        case = f"G{i}"
        when = datetime.fromtimestamp(t0 / 1e6, UTC)
        events.append(opened(case, when, prio, plan=plan))
        rule = cals[plan].priorities[prio]
        ack = rule.calendar.add(t0, rule.acknowledge)
        if rng.random() < 0.5:  # acknowledged in time, half a window in
            t_ack = rule.calendar.add(t0, rule.acknowledge // 2)
            events.append(note(case, datetime.fromtimestamp(t_ack / 1e6, UTC)))
            first_update = rule.calendar.add(t_ack, rule.update_every)
            expected.add((case, "update-breach", datetime.fromtimestamp(first_update / 1e6, UTC)))
        else:
            expected.add((case, "ack-breach", datetime.fromtimestamp(ack / 1e6, UTC)))
    events.sort(key=lambda e: e.occurred_at)
    out = run(events, until=utc("2027-02-01 00:00"))
    got = {
        (a.case_id, f"{a.type.split('-')[0]}-breach", a.due_at)
        for a in out
        if a.stage == "breach" and a.reason in ("no-acknowledgement", "interval")
    }
    assert expected <= got
    # Every breach is at an instant whose previous microsecond is business time.
    for a in out:
        if a.stage == "breach" and a.reason != "eta-passed":
            cal = POLICY.plans[a.plan].priorities[a.priority].calendar
            assert cal.is_open(to_us(a.due_at) - 1)
    assert any(a.calendar == "us-east" for a in out) and any(a.calendar == "emea" for a in out)


# --- policy errors name the field -------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (('calendar = "emea"', 'calendar = "nowhere"'), "plans.gold.calendar"),
        (
            ('1]\ncalendar = "24x7"', '1]\ncalendar = "x"'),
            "plans.gold.priorities.1.calendar",
        ),
        (("Europe/Berlin", "Europe/Atlantis"), "calendars.emea.timezone"),
        (("13:00,14:00", "13:00,12:00"), "calendars.emea.hours.fri"),
        (("2027-01-01", "2027-13-01"), "calendars.emea.holidays"),
        (('pause_statuses = ["pending", "on-hold"]', 'pause_statuses = [""]'), "pause_statuses"),
    ],
)
def test_policy_errors_name_the_field(edit: tuple[str, str], field: str) -> None:
    text = POLICY_TOML.replace(*edit)
    assert text != POLICY_TOML
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        policy_from_toml(text, "<test>")


def test_a_calendar_with_no_open_time_is_a_policy_error() -> None:
    text = POLICY_TOML + '\n[calendars.never]\ntimezone = "UTC"\nhours = {}\n'
    with pytest.raises(PolicyError, match=r"calendars\.never\.hours"):
        policy_from_toml(text, "<test>")


def test_the_built_in_policy_counts_24x7() -> None:
    from caseclock.core.policy import load_policy

    policy = load_policy()
    rules = [r for p in policy.plans.values() for r in p.priorities.values()]
    assert {r.calendar.name for r in rules} == {"24x7"}
    assert all(r.calendar.always_open for r in rules)


def test_time_to_acknowledge_counts_in_business_time() -> None:
    from caseclock.core.engine import Engine

    engine = Engine(POLICY)
    # Opened Friday 16:00, acknowledged Monday 11:00: 3 business hours, within the 4 h window.
    state, _ = engine.apply(None, opened("C", local("2026-01-09 16:00")), 0)
    engine.apply(state, note("C", local("2026-01-12 11:00")), 0)
    assert engine.time_to_acknowledge(state) == (3 * 3600 * 10**6, True)
    engine.apply(state, note("C", local("2026-01-12 10:00")), 0)  # an earlier one: 2 h
    assert engine.time_to_acknowledge(state) == (2 * 3600 * 10**6, True)
    late, _ = engine.apply(None, opened("L", local("2026-01-09 16:00")), 0)
    engine.apply(late, note("L", local("2026-01-12 12:00:01")), 0)
    assert engine.time_to_acknowledge(late) == (4 * 3600 * 10**6 + 10**6, False)


def test_every_unknown_calendar_is_reported_at_once() -> None:
    text = POLICY_TOML.replace('calendar = "emea"', 'calendar = "nowhere"').replace(
        '1]\ncalendar = "24x7"', '1]\ncalendar = "elsewhere"'
    )
    with pytest.raises(PolicyError) as err:
        policy_from_toml(text, "<test>")
    assert "plans.gold.calendar: unknown calendar 'nowhere'" in str(err.value)
    assert "plans.gold.priorities.1.calendar: unknown calendar 'elsewhere'" in str(err.value)
