"""Business days (`Calendar.open_days_span`, a policy's "2bd") against their definition.

The rules of the module docstring ("Business days") one by one, in Berlin and New York across
their DST changes, with holidays and short days; then hypothesis against a slow reference that
walks local dates with `datetime` and counts real UTC minutes with the minute-stepping
reference of test_calendars.py.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseclock.contracts.inbound import decode_event
from caseclock.core.calendars import DAYS, TWENTY_FOUR_SEVEN, Calendar
from caseclock.core.policy import policy_from_toml
from caseclock.core.timeutil import to_us
from caseclock.replay import replay
from tests.unit.core.test_calendars import (
    BERLIN,
    EMEA,
    NEW_YORK,
    US_BIZ,
    Reference,
    Spec,
    cal,
    changes,
    local,
    spec_and_start,
    utc,
)

US = 10**6
M = 60 * US
H = 60 * M
DAY = 24 * H

WEEKDAYS = DAYS[:5]
NINE_TO_FIVE = cal("Europe/Berlin", (), **dict.fromkeys(WEEKDAYS, "09:00-17:00"))
SHORT_FRIDAY = cal(
    "Europe/Berlin", (), **{**dict.fromkeys(WEEKDAYS, "09:00-17:00"), "fri": "09:00-13:00"}
)


def deadline(c: Calendar, start: int, n: int) -> int:
    """Where a window of n business days opened at start ends (what the engine computes)."""
    return c.add(start, c.open_days_span(start, n))


# --- the rules -------------------------------------------------------------------------------


def test_the_same_local_time_n_open_days_later() -> None:
    monday = local(BERLIN, "2026-03-09T10:00")
    assert NINE_TO_FIVE.open_days_span(monday, 1) == 8 * H
    assert NINE_TO_FIVE.open_days_span(monday, 2) == 16 * H
    assert NINE_TO_FIVE.open_days_span(monday, 2) == NINE_TO_FIVE.elapsed(
        monday, local(BERLIN, "2026-03-11T10:00")
    )
    assert deadline(NINE_TO_FIVE, monday, 2) == local(BERLIN, "2026-03-11T10:00")
    # Not 48 business hours: that would be Tuesday 10:00 of the following week.
    assert NINE_TO_FIVE.add(monday, 48 * H) == local(BERLIN, "2026-03-17T10:00")


def test_a_weekend_is_no_business_day() -> None:
    friday = local(BERLIN, "2026-03-13T10:00")
    assert NINE_TO_FIVE.open_days_span(friday, 1) == 8 * H
    assert deadline(NINE_TO_FIVE, friday, 1) == local(BERLIN, "2026-03-16T10:00")
    assert deadline(NINE_TO_FIVE, friday, 5) == local(BERLIN, "2026-03-20T10:00")
    assert deadline(NINE_TO_FIVE, friday, 6) == local(BERLIN, "2026-03-23T10:00")


def test_a_start_outside_hours_counts_from_the_next_opening() -> None:
    saturday = local(BERLIN, "2026-03-14T12:00")
    assert NINE_TO_FIVE.open_days_span(saturday, 1) == 8 * H  # Monday 09:00 to Tuesday 09:00
    assert deadline(NINE_TO_FIVE, saturday, 1) == local(BERLIN, "2026-03-16T17:00")
    evening = local(BERLIN, "2026-03-16T19:30")  # Monday after closing: Tuesday 09:00 on
    assert NINE_TO_FIVE.open_days_span(evening, 2) == 16 * H
    assert deadline(NINE_TO_FIVE, evening, 2) == local(BERLIN, "2026-03-18T17:00")
    early = local(BERLIN, "2026-03-16T06:00")
    assert NINE_TO_FIVE.open_days_span(early, 1) == 8 * H
    closing = local(BERLIN, "2026-03-16T17:00")  # a closing instant is closed
    assert NINE_TO_FIVE.open_days_span(closing, 1) == 8 * H


def test_holidays_are_skipped() -> None:
    # Wednesday 23 December: 24 and 25 are holidays, 26 and 27 a weekend.
    start = local(BERLIN, "2026-12-23T10:00")
    assert EMEA.open_days_span(start, 1) == 8 * H  # 7 h on Wednesday, 1 h on Monday 28th
    assert deadline(EMEA, start, 1) == local(BERLIN, "2026-12-28T10:00")
    # ... and 1 January: from Wednesday 30 December, two business days end on Monday 4th.
    start = local(BERLIN, "2026-12-30T10:00")
    assert deadline(EMEA, start, 2) == local(BERLIN, "2027-01-04T10:00")
    # Thanksgiving in New York.
    start = local(NEW_YORK, "2026-11-25T10:00")
    assert deadline(US_BIZ, start, 1) == local(NEW_YORK, "2026-11-27T10:00")
    # A start on a holiday counts from the next open day's opening.
    start = local(BERLIN, "2026-12-24T11:00")
    assert EMEA.open_days_span(start, 1) == 8 * H  # Monday 28th 09:00 to Tuesday 09:00


def test_a_target_after_the_days_last_closing_is_that_closing() -> None:
    thursday = local(BERLIN, "2026-03-12T15:00")
    # Friday closes at 13:00: 2 h on Thursday, 4 h on Friday.
    assert SHORT_FRIDAY.open_days_span(thursday, 1) == 6 * H
    assert deadline(SHORT_FRIDAY, thursday, 1) == local(BERLIN, "2026-03-13T13:00")
    assert deadline(SHORT_FRIDAY, thursday, 2) == local(BERLIN, "2026-03-16T15:00")


def test_a_target_before_the_days_first_opening_is_that_opening() -> None:
    c = cal("Europe/Berlin", mon="06:00-14:00", tue="09:00-17:00")
    monday = local(BERLIN, "2026-03-09T07:00")
    # The target, Tuesday 07:00, moves to Tuesday 09:00: only Monday's 7 h count, and the
    # deadline is the last closing before it.
    assert c.open_days_span(monday, 1) == 7 * H
    assert c.open_days_span(monday, 1) == c.elapsed(monday, local(BERLIN, "2026-03-10T09:00"))
    assert deadline(c, monday, 1) == local(BERLIN, "2026-03-09T14:00")
    assert c.open_days_span(monday, 2) == 7 * H + 8 * H + 1 * H  # to Monday 07:00 next week


def test_a_target_in_a_gap_between_ranges_counts_to_the_gap() -> None:
    # The spec's Friday: 09:00-13:00 and 14:00-17:00. Thursday 13:30 + 1 business day.
    thursday = local(BERLIN, "2026-03-12T13:30")
    assert EMEA.open_days_span(thursday, 1) == 3 * H + 30 * M + 4 * H
    assert deadline(EMEA, thursday, 1) == local(BERLIN, "2026-03-13T13:00")
    # From Friday 14:30 (the afternoon range) to Monday 14:30: 2.5 h and 5.5 h.
    assert EMEA.open_days_span(local(BERLIN, "2026-03-13T14:30"), 1) == 8 * H


def test_across_dst_the_same_wall_clock_time() -> None:
    # Berlin springs forward on Sunday 29 March 2026, falls back on Sunday 25 October.
    friday = local(BERLIN, "2026-03-27T10:00")
    assert NINE_TO_FIVE.open_days_span(friday, 1) == 8 * H
    assert deadline(NINE_TO_FIVE, friday, 1) == utc("2026-03-30T08:00")  # 10:00 CEST
    friday = local(BERLIN, "2026-10-23T10:00")
    assert deadline(NINE_TO_FIVE, friday, 1) == utc("2026-10-26T09:00")  # 10:00 CET
    # New York: 8 March and 1 November 2026.
    friday = local(NEW_YORK, "2026-03-06T16:00")
    assert US_BIZ.open_days_span(friday, 1) == 8 * H
    assert deadline(US_BIZ, friday, 1) == utc("2026-03-09T20:00")  # 16:00 EDT
    friday = local(NEW_YORK, "2026-10-30T16:00")
    assert deadline(US_BIZ, friday, 1) == utc("2026-11-02T21:00")  # 16:00 EST


def test_across_dst_round_the_clock_days_are_23_and_25_hours() -> None:
    berlin_all = cal("Europe/Berlin", (), **dict.fromkeys(DAYS, "00:00-24:00"))
    assert berlin_all.always_open
    saturday = local(BERLIN, "2026-03-28T12:00")
    assert berlin_all.open_days_span(saturday, 1) == 23 * H
    assert berlin_all.open_days_span(local(BERLIN, "2026-10-24T12:00"), 1) == 25 * H
    assert berlin_all.open_days_span(local(BERLIN, "2026-06-06T12:00"), 7) == 7 * DAY


def test_a_target_time_the_clock_skips_or_repeats() -> None:
    nights = cal("Europe/Berlin", sat="00:00-06:00", sun="00:00-06:00")
    # Saturday 02:30 + 1: Sunday 29 March has no 02:30; the first instant after the jump
    # (03:00 CEST, 01:00Z) is the target. Saturday 3.5 h, Sunday 00:00-02:00 CET 2 h.
    saturday = local(BERLIN, "2026-03-28T02:30")
    assert nights.open_days_span(saturday, 1) == 5 * H + 30 * M
    assert deadline(nights, saturday, 1) == utc("2026-03-29T01:00")
    # Sunday 25 October shows 02:30 twice: the first (CEST, 00:30Z) is the target.
    saturday = local(BERLIN, "2026-10-24T02:30")
    assert nights.open_days_span(saturday, 1) == 6 * H
    assert deadline(nights, saturday, 1) == utc("2026-10-25T00:30")
    # New York, 8 March 2026: 02:30 does not exist; 1 November: 01:30 exists twice.
    ny_nights = cal("America/New_York", sat="00:00-06:00", sun="00:00-06:00")
    assert deadline(ny_nights, local(NEW_YORK, "2026-03-07T02:30"), 1) == utc("2026-03-08T07:00")
    assert deadline(ny_nights, local(NEW_YORK, "2026-10-31T01:30"), 1) == utc("2026-11-01T05:30")


def test_on_24x7_a_business_day_is_24_hours() -> None:
    t = local(BERLIN, "2026-03-29T01:30")
    assert TWENTY_FOUR_SEVEN.open_days_span(t, 1) == DAY
    assert TWENTY_FOUR_SEVEN.open_days_span(t, 3) == 3 * DAY


@given(st.integers(0, 7 * 10**15), st.integers(1, 1000))
def test_24x7_business_days_property(t: int, n: int) -> None:
    assert TWENTY_FOUR_SEVEN.open_days_span(t, n) == n * DAY


def test_at_least_one_business_day() -> None:
    for n in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            NINE_TO_FIVE.open_days_span(0, n)
        with pytest.raises(ValueError, match="at least 1"):
            TWENTY_FOUR_SEVEN.open_days_span(0, n)


def test_the_calendars_day_figures() -> None:
    assert (EMEA.longest_day_us, EMEA.open_weekdays) == (8 * H, 5)
    assert (SHORT_FRIDAY.longest_day_us, SHORT_FRIDAY.open_weekdays) == (8 * H, 5)
    assert (TWENTY_FOUR_SEVEN.longest_day_us, TWENTY_FOUR_SEVEN.open_weekdays) == (DAY, 7)
    two = cal("Asia/Tokyo", tue="09:00-12:00,13:00-18:00", sat="10:00-12:00")
    assert (two.longest_day_us, two.open_weekdays) == (8 * H, 2)


def test_long_counts_skip_whole_weeks() -> None:
    """A thousand business days (four years of Mondays to Fridays, with the spec's holidays
    each year it names them) are one arithmetic step per holiday-free stretch, not a walk."""
    start = local(BERLIN, "2026-01-05T10:00")
    c = Calendar("fresh", EMEA.timezone, EMEA.hours, EMEA.holidays)
    began = time.perf_counter()
    span = c.open_days_span(start, 1000)
    assert time.perf_counter() - began < 0.5
    # 1000 open days, the holidays on weekdays skipped: the same time of day 1000 open days on.
    day, n = datetime(2026, 1, 5).date(), 0
    while n < 1000:
        day += timedelta(days=1)
        n += day.weekday() < 5 and day not in EMEA.holidays
    assert deadline(c, start, 1000) == local(BERLIN, f"{day.isoformat()}T10:00")
    assert span == c.elapsed(start, local(BERLIN, f"{day.isoformat()}T10:00"))
    assert len(c._cache) < 200  # out of about 1400 days


def test_the_memo_is_bounded_and_answers_as_the_arithmetic_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import caseclock.core.calendars as calendars

    monkeypatch.setattr(calendars, "_MEMO_SIZE", 8)
    c = Calendar("memo", "Europe/Berlin", EMEA.hours, EMEA.holidays)
    fresh = Calendar("fresh", "Europe/Berlin", EMEA.hours, EMEA.holidays)
    starts = [utc("2026-03-27T06:00") + i * 37 * M for i in range(40)]
    first = [c.open_days_span(s, 2) for s in starts]
    assert len(c._days_memo) <= 8
    assert [c.open_days_span(s, 2) for s in starts] == first
    assert first == [fresh.open_days_span(s, 2) for s in starts]


# --- the reference: local dates by datetime, real minutes by the minute reference ------------


def reference_span(spec: Spec, ref: Reference, start: int, n: int) -> int:
    """The definition, read literally: move to the next opening; take its local date and
    time; step to the n-th following local date whose weekday has hours and that is not a
    holiday; find the first UTC minute at which the wall clock shows that date and time or
    later; count the open minutes in between."""
    tz = ZoneInfo(spec.zone)
    s = ref.next_open(start)
    wall = datetime.fromtimestamp(s // US, tz).replace(tzinfo=None)
    day, found = wall.date(), 0
    while found < n:
        day += timedelta(days=1)
        found += bool(spec.hours[day.weekday()]) and day not in spec.holidays
    target = datetime.combine(day, wall.time())
    # No zone is 15 h away from UTC: before this instant every wall clock shows less.
    t = max(s, int((target - datetime(1970, 1, 1)).total_seconds()) * US - 15 * H)
    while datetime.fromtimestamp(t // US, tz).replace(tzinfo=None) < target:
        t += M
    return ref.elapsed(s, t)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_and_start(), st.integers(1, 3), st.integers(0, 3 * 1440))
def test_open_days_span_matches_the_reference(case: tuple[Spec, int], n: int, later: int) -> None:
    spec, start = case
    start += later * M
    calendar = spec.calendar()
    assert calendar.open_days_span(start, n) == reference_span(spec, Reference(spec), start, n)


@st.composite
def targets_near_a_change(draw: st.DrawFn) -> tuple[Spec, int, int]:
    """A start d days before one of the zone's offset changes, near the time of day of the
    change, and n = d: with every day between open, the target's local time is near the
    skipped or repeated hour (where the wall clock and UTC part ways)."""
    spec, _ = draw(spec_and_start())
    near = changes(spec.zone)
    if not near:
        spec, _ = draw(spec_and_start().filter(lambda c: bool(changes(c[0].zone))))
        near = changes(spec.zone)
    d = draw(st.integers(1, 3))
    start = draw(st.sampled_from(near)) - d * 1440 + draw(st.integers(-150, 150))
    if draw(st.booleans()):  # round the clock, so every day is open and the start too
        spec = Spec(spec.zone, tuple(((0, 1440),) for _ in DAYS), spec.holidays)
    return spec, start * M, d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(targets_near_a_change())
def test_open_days_span_matches_the_reference_near_offset_changes(
    case: tuple[Spec, int, int],
) -> None:
    spec, start, n = case
    calendar = spec.calendar()
    assert calendar.open_days_span(start, n) == reference_span(spec, Reference(spec), start, n)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_and_start(), st.integers(0, 7 * 86400 * US), st.integers(1, 30))
def test_open_days_span_laws(case: tuple[Spec, int], micro: int, n: int) -> None:
    """At microsecond resolution: a business day always counts some time, more days count
    no less, and the deadline is where that much counted time has elapsed."""
    spec, start = case
    c = spec.calendar()
    s = start + micro
    span = c.open_days_span(s, n)
    assert span > 0
    assert c.open_days_span(s, n + 1) >= span
    end = c.add(s, span)
    assert c.elapsed(s, end) == span and c.is_open(end - 1)
    # A start inside the same closed stretch gives the same count.
    assert c.open_days_span(c.next_open(s), n) == span


# --- in the engine: a plan written in business days -------------------------------------------

BD_POLICY = """
default_plan = "bd"

[calendars.berlin]
timezone = "Europe/Berlin"
holidays = ["2026-03-11"]
[calendars.berlin.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-13:00"

[plans.bd]
calendar = "berlin"
warn_fraction = 0.5
pause_statuses = ["pending"]
[plans.bd.priorities.2]
acknowledge = "2bd"
update_every = "1bd"
elevate = "3bd"
"""


def _replay(lines: list[dict[str, object]], until: str) -> list[tuple[str, str, str]]:
    """(type, stage, due_at in Berlin local time) of the alerts of a history."""
    policy = policy_from_toml(BD_POLICY, "<bd>")
    events = [
        decode_event(orjson.dumps({"event_id": f"e{i}", "case_id": "C", **d}), policy)
        for i, d in enumerate(lines)
    ]
    horizon = to_us(datetime.fromisoformat(until).replace(tzinfo=ZoneInfo("Europe/Berlin")))
    return [
        (a.type, a.stage, a.due_at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %d %H:%M"))
        for a in replay(events, policy, until=horizon)
    ]


def _at(text: str) -> str:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin")).isoformat()


def test_an_acknowledgement_within_two_business_days() -> None:
    """Monday 10:00 + 2bd is Wednesday 10:00, and Wednesday 11 March is a holiday: Thursday
    10:00. Half of it (the warning) is 8 business hours: Tuesday 10:00. The elevation (3bd)
    is Friday 10:00."""
    opened: dict[str, object] = {
        "type": "case-opened",
        "occurred_at": _at("2026-03-09T10:00"),
        "priority": 2,
    }
    assert _replay([opened], until="2026-03-16T09:00") == [
        ("ack-due", "warning", "Tue 10 10:00"),
        ("ack-due", "breach", "Thu 12 10:00"),
        ("elevate-to-l2", "action", "Fri 13 10:00"),
    ]


def test_business_day_updates_and_a_pause_that_extends_one() -> None:
    """Acknowledged Monday 10:00: an update is owed Tuesday 10:00 (warning at 14:00 on
    Monday); the next window repeats that counted length (8 business hours) from the missed
    deadline. A pause of two business hours on Thursday moves the third window's warning and
    breach by two (from Thursday 14:00 and Friday 10:00)."""
    history: list[dict[str, object]] = [
        {"type": "case-opened", "occurred_at": _at("2026-03-09T09:30"), "priority": 2},
        {
            "type": "case-noted",
            "occurred_at": _at("2026-03-09T10:00"),
            "author": "support",
            "visibility": "public",
            "workaround": True,
        },
        {"type": "status-changed", "occurred_at": _at("2026-03-12T11:00"), "status": "pending"},
        {"type": "status-changed", "occurred_at": _at("2026-03-12T13:00"), "status": "open"},
    ]
    updates = [a for a in _replay(history, until="2026-03-13T13:00") if a[0] == "update-due"]
    assert updates == [
        ("update-due", "warning", "Mon 09 14:00"),
        ("update-due", "breach", "Tue 10 10:00"),
        ("update-due", "warning", "Tue 10 14:00"),
        ("update-due", "breach", "Thu 12 10:00"),  # Wednesday is a holiday
        ("update-due", "warning", "Thu 12 16:00"),
        ("update-due", "breach", "Fri 13 12:00"),
    ]
