"""Business-time arithmetic (caseclock.core.calendars) against the rules of spec section 6.

Unit tests per rule in two zones with DST (Europe/Berlin, America/New_York), then hypothesis
properties: ``add`` and ``elapsed`` against a slow, obviously correct reference that steps real
UTC minutes and asks of each "does the local wall clock show a time within hours?", and the
laws the module docstring states.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseclock.core.calendars import (
    BUILTIN_24X7,
    DAYS,
    TWENTY_FOUR_SEVEN,
    Calendar,
    lookup_calendar,
    parse_calendars,
)
from caseclock.core.policy import PolicyError
from caseclock.core.timeutil import to_us

US = 10**6
M = 60 * US
H = 60 * M

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, text: str) -> int:
    """A local wall-clock time (first occurrence when ambiguous) as epoch microseconds."""
    return to_us(datetime.fromisoformat(text).replace(tzinfo=zone))


def utc(text: str) -> int:
    return to_us(datetime.fromisoformat(text).replace(tzinfo=UTC))


# The spec's example calendar, and the same hours in New York.
SPEC_TOML = """
[calendars.emea-business]
timezone = "Europe/Berlin"
hours = { mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", thu = "09:00-17:00", fri = "09:00-13:00,14:00-17:00" }
holidays = ["2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"]

[calendars.us-business]
timezone = "America/New_York"
hours = { mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", thu = "09:00-17:00", fri = "09:00-17:00" }
holidays = [2026-11-26, 2026-12-25]
"""  # noqa: E501 (the spec's line, verbatim)

CALENDARS = parse_calendars(tomllib.loads(SPEC_TOML)["calendars"])
EMEA = CALENDARS["emea-business"]
US_BIZ = CALENDARS["us-business"]


def cal(zone: str, holidays: tuple[str, ...] = (), **hours: str) -> Calendar:
    doc = {"timezone": zone, "hours": hours, "holidays": list(holidays)}
    return parse_calendars({"test": doc})["test"]


# --- the rules -------------------------------------------------------------------------------


def test_a_window_across_a_weekend() -> None:
    # Friday 15:00 in Berlin: two hours left that day (14:00-17:00), two more on Monday.
    start = local(BERLIN, "2026-03-13T15:00")
    assert EMEA.add(start, 4 * H) == local(BERLIN, "2026-03-16T11:00")
    assert EMEA.elapsed(start, local(BERLIN, "2026-03-16T11:00")) == 4 * H
    # New York, Friday 16:00 + 3h: 1h on Friday, Monday 09:00-11:00.
    start = local(NEW_YORK, "2026-05-15T16:00")
    assert US_BIZ.add(start, 3 * H) == local(NEW_YORK, "2026-05-18T11:00")


def test_holidays_are_whole_local_days() -> None:
    # Wed 23 Dec 16:00: 1 h that day; 24 and 25 Dec are holidays, 26-27 a weekend.
    start = local(BERLIN, "2026-12-23T16:00")
    assert EMEA.add(start, 2 * H) == local(BERLIN, "2026-12-28T10:00")
    assert EMEA.elapsed(local(BERLIN, "2026-12-24T00:00"), local(BERLIN, "2026-12-26T00:00")) == 0
    assert not EMEA.is_open(local(BERLIN, "2026-12-24T10:00"))
    # Thanksgiving in New York: Wednesday 16:00 + 2 h is Friday 10:00.
    start = local(NEW_YORK, "2026-11-25T16:00")
    assert US_BIZ.add(start, 2 * H) == local(NEW_YORK, "2026-11-27T10:00")
    # A holiday is the local date: 26 Nov 22:00 in New York is 27 Nov in UTC and still closed
    # in New York's calendar (nights are closed anyway); 27 Nov 09:00 local is open.
    assert US_BIZ.next_open(local(NEW_YORK, "2026-11-26T10:00")) == local(
        NEW_YORK, "2026-11-27T09:00"
    )


def test_dst_spring_forward_business_hours_follow_the_wall_clock() -> None:
    # Berlin moves from +01:00 to +02:00 on Sunday 29 March 2026.
    start = local(BERLIN, "2026-03-27T16:00")  # 15:00Z
    deadline = EMEA.add(start, 2 * H)
    assert deadline == local(BERLIN, "2026-03-30T10:00") == utc("2026-03-30T08:00")
    assert EMEA.elapsed(start, deadline) == 2 * H
    # New York moves from -05:00 to -04:00 on Sunday 8 March 2026.
    start = local(NEW_YORK, "2026-03-06T16:00")  # 21:00Z
    assert US_BIZ.add(start, 2 * H) == utc("2026-03-09T14:00")  # Monday 10:00 EDT


def test_dst_autumn_business_hours_follow_the_wall_clock() -> None:
    start = local(BERLIN, "2026-10-23T16:00")  # 14:00Z, +02:00
    assert EMEA.add(start, 2 * H) == utc("2026-10-26T09:00")  # Monday 10:00, +01:00
    start = local(NEW_YORK, "2026-10-30T16:00")  # 20:00Z, -04:00
    assert US_BIZ.add(start, 2 * H) == utc("2026-11-02T15:00")  # Monday 10:00, -05:00


def test_dst_real_elapsed_time_counts_in_the_skipped_and_repeated_hour() -> None:
    nights = cal("Europe/Berlin", sun="00:00-06:00")

    def sunday(d: str) -> tuple[int, int]:
        return local(BERLIN, f"{d}T00:00"), local(BERLIN, f"{d}T12:00")

    assert nights.elapsed(*sunday("2026-03-22")) == 6 * H
    assert nights.elapsed(*sunday("2026-03-29")) == 5 * H  # 02:00-03:00 does not exist
    assert nights.elapsed(*sunday("2026-10-25")) == 7 * H  # 02:00-03:00 happens twice
    # 4 h of the spring night: 00:00-02:00, then 03:00-05:00 (summer time).
    assert nights.add(sunday("2026-03-29")[0], 4 * H) == local(BERLIN, "2026-03-29T05:00")
    # 4 h of the autumn night are 4 real hours: the clock then reads 03:00 (standard time).
    assert nights.add(sunday("2026-10-25")[0], 4 * H) == utc("2026-10-25T02:00")

    whole_sunday = cal("America/New_York", sun="00:00-24:00")

    def ny(d: str) -> tuple[int, int]:
        return local(NEW_YORK, f"{d}T00:00"), local(NEW_YORK, f"{d}T23:59") + M

    assert whole_sunday.elapsed(*ny("2026-03-08")) == 23 * H
    assert whole_sunday.elapsed(*ny("2026-11-01")) == 25 * H


def test_dst_a_range_boundary_inside_the_changed_hour() -> None:
    # New York, 8 March 2026: 02:30 never shows; the range opens at 03:00 EDT (07:00Z).
    early = cal("America/New_York", sun="02:30-05:00")
    assert early.next_open(local(NEW_YORK, "2026-03-08T00:00")) == utc("2026-03-08T07:00")
    assert not early.is_open(utc("2026-03-08T06:59"))
    assert early.elapsed(utc("2026-03-08T00:00"), utc("2026-03-09T00:00")) == 2 * H
    # New York, 1 November 2026: 01:00-02:00 happens twice (EDT, then EST). "01:30-03:00" is
    # open 01:30-02:00 EDT (05:30-06:00Z), closed 01:00-01:30 EST, open 01:30-03:00 EST.
    late = cal("America/New_York", sun="01:30-03:00")
    assert late.elapsed(utc("2026-11-01T00:00"), utc("2026-11-02T00:00")) == 2 * H
    assert late.is_open(utc("2026-11-01T05:45"))
    assert not late.is_open(utc("2026-11-01T06:15"))  # 01:15 EST
    assert late.is_open(utc("2026-11-01T06:30"))  # 01:30 EST
    assert late.add(utc("2026-11-01T05:30"), 45 * M) == utc("2026-11-01T06:45")
    # Berlin, 25 October 2026, the module docstring's example: 3 h instead of 2.5 h.
    berlin = cal("Europe/Berlin", sun="02:30-05:00")
    assert berlin.elapsed(utc("2026-10-24T12:00"), utc("2026-10-25T12:00")) == 3 * H


def test_a_window_that_starts_outside_hours_starts_at_the_next_opening() -> None:
    assert EMEA.add(local(BERLIN, "2026-03-16T07:00"), H) == local(BERLIN, "2026-03-16T10:00")
    assert EMEA.add(local(BERLIN, "2026-03-14T12:00"), H) == local(BERLIN, "2026-03-16T10:00")
    assert EMEA.add(local(BERLIN, "2026-03-16T17:00"), H) == local(BERLIN, "2026-03-17T10:00")
    # The lunch gap on Friday.
    assert EMEA.add(local(BERLIN, "2026-03-20T13:30"), H) == local(BERLIN, "2026-03-20T15:00")
    assert EMEA.next_open(local(BERLIN, "2026-03-20T13:30")) == local(BERLIN, "2026-03-20T14:00")


def test_a_deadline_exactly_at_closing_time_is_the_closing_instant() -> None:
    monday = local(BERLIN, "2026-03-16T09:00")
    assert EMEA.add(monday, 8 * H) == local(BERLIN, "2026-03-16T17:00")
    assert EMEA.add(local(BERLIN, "2026-03-16T16:00"), H) == local(BERLIN, "2026-03-16T17:00")
    # Friday's first range closes at 13:00: 4 h from 09:00 ends there, not at 14:00.
    friday = local(BERLIN, "2026-03-20T09:00")
    assert EMEA.add(friday, 4 * H) == local(BERLIN, "2026-03-20T13:00")
    assert EMEA.add(friday, 4 * H + 1) == local(BERLIN, "2026-03-20T14:00") + 1
    # Closing instants are closed, openings open ([start, end) ranges).
    assert not EMEA.is_open(local(BERLIN, "2026-03-16T17:00"))
    assert EMEA.is_open(local(BERLIN, "2026-03-16T17:00") - 1)
    assert EMEA.is_open(local(BERLIN, "2026-03-16T09:00"))
    # Across the weekend, a whole week of business time from Monday 09:00 ends Friday 17:00.
    assert EMEA.add(monday, EMEA.weekly_us) == local(BERLIN, "2026-03-20T17:00")
    assert EMEA.add(monday, 2 * EMEA.weekly_us) == local(BERLIN, "2026-03-27T17:00")


def test_several_ranges_a_day() -> None:
    friday = local(BERLIN, "2026-03-20T00:00")
    assert EMEA.elapsed(friday, friday + 24 * H) == 7 * H
    assert EMEA.add(local(BERLIN, "2026-03-20T12:00"), 2 * H) == local(BERLIN, "2026-03-20T15:00")
    three = cal("Asia/Kolkata", mon="08:00-10:00, 11:00-12:00 ,13:30-17:30")
    mon = local(ZoneInfo("Asia/Kolkata"), "2026-06-01T00:00")
    assert three.elapsed(mon, mon + 24 * H) == 7 * H
    assert three.add(mon, 3 * H + 30 * M) == mon + 14 * H  # 2 h + 1 h + 30 min from 13:30


def test_touching_ranges_count_as_one() -> None:
    split = cal("Europe/Berlin", mon="08:00-12:00,12:00-17:00")
    whole = cal("Europe/Berlin", mon="08:00-17:00")
    t = local(BERLIN, "2026-03-16T10:00")
    assert split.add(t, 4 * H) == whole.add(t, 4 * H) == local(BERLIN, "2026-03-16T14:00")
    assert split.is_open(local(BERLIN, "2026-03-16T12:00"))


def test_duration_zero_is_the_start_itself() -> None:
    for t in (
        local(BERLIN, "2026-03-16T10:00"),  # open
        local(BERLIN, "2026-03-16T17:00"),  # closing instant
        local(BERLIN, "2026-03-14T12:00"),  # weekend
        local(BERLIN, "2026-12-24T10:00"),  # holiday
    ):
        assert EMEA.add(t, 0) == t
        assert EMEA.elapsed(t, t) == 0


def test_elapsed_is_zero_backwards_and_negative_durations_are_refused() -> None:
    a = local(BERLIN, "2026-03-16T10:00")
    assert EMEA.elapsed(a + H, a) == 0
    with pytest.raises(ValueError, match="negative"):
        EMEA.add(a, -1)
    with pytest.raises(ValueError, match="negative"):
        TWENTY_FOUR_SEVEN.add(a, -1)


def test_24x7_is_the_identity() -> None:
    assert CALENDARS[BUILTIN_24X7] is TWENTY_FOUR_SEVEN
    assert TWENTY_FOUR_SEVEN.always_open
    t = local(BERLIN, "2026-03-29T01:30")
    assert TWENTY_FOUR_SEVEN.add(t, 4 * H) == t + 4 * H
    assert TWENTY_FOUR_SEVEN.elapsed(t, t + 7 * H + 3) == 7 * H + 3
    assert TWENTY_FOUR_SEVEN.is_open(t) and TWENTY_FOUR_SEVEN.next_open(t) == t
    # Round the clock in a DST zone is every instant too, so it takes the same fast path.
    round_the_clock: dict[str, str] = dict.fromkeys(DAYS, "00:00-24:00")
    berlin_all = cal("Europe/Berlin", (), **round_the_clock)
    assert berlin_all.always_open
    assert berlin_all.add(t, 4 * H) == t + 4 * H


@given(st.integers(-(10**17), 10**17), st.integers(0, 10**14), st.integers(-(10**14), 10**14))
def test_24x7_identity_property(t: int, d: int, span: int) -> None:
    assert TWENTY_FOUR_SEVEN.add(t, d) == t + d
    assert TWENTY_FOUR_SEVEN.elapsed(t, t + span) == max(0, span)


def test_long_windows_skip_whole_weeks_and_agree_with_short_steps() -> None:
    """A year of business time: the week-skipping path equals 8-hour steps (which never skip),
    across two DST changes and the Christmas holidays, and computes few days."""
    start = local(BERLIN, "2026-01-05T09:00")
    EMEA._cache.clear()
    deadline = EMEA.add(start, 52 * EMEA.weekly_us)
    assert len(EMEA._cache) < 80  # out of 371 days: no day-by-day walk
    assert EMEA.elapsed(start, deadline) == 52 * EMEA.weekly_us
    t = start
    for _ in range(52 * EMEA.weekly_us // (8 * H)):
        t = EMEA.add(t, 8 * H)
    assert EMEA.add(t, 52 * EMEA.weekly_us % (8 * H)) == deadline
    # 52 weeks of 39 h would end on Friday 1 January 2027 at 17:00; the holidays that fall on
    # working days (Thu 24 Dec 8 h, Fri 25 Dec 7 h, Fri 1 Jan 7 h) push it 22 h further.
    assert deadline == local(BERLIN, "2027-01-06T15:00")


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "Pacific/Chatham", "Asia/Tokyo", "Asia/Kolkata"]
)
def test_skipping_whole_weeks_equals_walking_next_to_holidays_and_dst_changes(zone: str) -> None:
    """Long windows skip whole weeks; 4-hour steps never do. With a holiday on each date of
    five weeks of March 2026 (a DST change in three of the zones; Tokyo and Kolkata, east of
    UTC, put the start of a holiday's wall date before the UTC midnight that ends a week), both
    ways give the same deadlines, and elapsed over the span equals the sum of its days."""
    tz = ZoneInfo(zone)
    nights = "00:00-02:30,09:00-17:00,22:00-24:00"
    hours = {**dict.fromkeys(DAYS[:5], nights), "sat": "00:00-03:00"}
    first = date(2026, 3, 2)  # a Monday
    for holiday in (first + timedelta(days=n) for n in range(35)):
        c = cal(zone, (holiday.isoformat(),), **hours)
        for start in (local(tz, "2026-03-02T10:00"), utc("2026-03-04T00:00")):
            d = 3 * c.weekly_us
            t = start
            for _ in range(d // (4 * H)):
                t = c.add(t, 4 * H)
            assert c.add(start, d) == c.add(t, d % (4 * H)), (holiday, start)
            days = range(start, start + 35 * 86400 * US + 1, 86400 * US)
            total = sum(c.elapsed(a, b) for a, b in pairwise(days))
            assert c.elapsed(start, days[-1]) == total, (holiday, start)


def test_whole_weeks_from_a_closed_start_end_at_the_last_closing() -> None:
    saturday = local(BERLIN, "2026-03-14T12:00")
    assert EMEA.add(saturday, EMEA.weekly_us) == local(BERLIN, "2026-03-20T17:00")
    assert EMEA.add(saturday, 2 * EMEA.weekly_us) == local(BERLIN, "2026-03-27T17:00")
    assert EMEA.add(saturday, 3 * EMEA.weekly_us) == local(BERLIN, "2026-04-03T17:00")


def test_works_without_a_system_zone_database() -> None:
    """With no zone directory to search, zoneinfo falls back to the tzdata package, a
    dependency of caseclock: the same deadline comes out."""
    code = (
        "import zoneinfo, sys; assert zoneinfo.TZPATH == (), zoneinfo.TZPATH\n"
        "from caseclock.core.calendars import parse_calendars\n"
        "c = parse_calendars({'x': {'timezone': 'Europe/Berlin', 'hours': {'fri': '09:00-17:00',"
        " 'mon': '09:00-17:00'}}})['x']\n"
        f"print(c.add({local(BERLIN, '2026-03-27T16:00')}, {2 * H}))\n"
    )
    env = {**os.environ, "PYTHONTZPATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == local(BERLIN, "2026-03-30T10:00")


# --- parsing ---------------------------------------------------------------------------------


def test_the_spec_example_parses() -> None:
    assert EMEA.name == "emea-business"
    assert EMEA.timezone == "Europe/Berlin"
    assert EMEA.hours[4] == ((540, 780), (840, 1020))
    assert EMEA.hours[5] == EMEA.hours[6] == ()  # days not listed are closed
    assert date(2026, 12, 24) in EMEA.holidays
    assert EMEA.weekly_us == 39 * H
    assert US_BIZ.holidays == {date(2026, 11, 26), date(2026, 12, 25)}  # TOML local dates


def test_lists_of_ranges_and_empty_days_are_accepted() -> None:
    doc = {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": "09:00-17:00",
            "tue": "09:00-17:00",
            "wed": "09:00-17:00",
            "thu": "09:00-17:00",
            "fri": ["09:00-13:00", "14:00-17:00"],
            "sat": "",
            "sun": [],
        },
        "holidays": ["2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"],
    }
    again = parse_calendars({"emea-business": doc})["emea-business"]
    assert again == EMEA
    assert hash(again) == hash(EMEA)


def _error(doc: object) -> str:
    with pytest.raises(PolicyError) as e:
        parse_calendars({"emea": doc})
    return str(e.value)


GOOD = {"timezone": "Europe/Berlin", "hours": {"mon": "09:00-17:00"}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"hours": {"mon": "08:00-12:00,13:00-12:00"}},
            "calendars.emea.hours.mon[1]: invalid range '13:00-12:00' (the end must be after",
        ),
        ({"hours": {"mon": "17:00-09:00"}}, "calendars.emea.hours.mon: invalid range '17:00-09"),
        (
            {"hours": {"mon": "09:00-09:00"}},
            "calendars.emea.hours.mon: invalid range '09:00-09:00' (a range must not be empty; "
            "a whole day is '00:00-24:00')",
        ),
        (
            {"hours": {"mon": "09:00-17:00", "sun": "08:00-12:00, 00:00-00:00"}},
            "calendars.emea.hours.sun[1]: invalid range '00:00-00:00' (a range must not be "
            "empty; a whole day is '00:00-24:00')",
        ),
        (
            {"hours": {"mon": "22:00-06:00"}},
            "calendars.emea.hours.mon: invalid range '22:00-06:00' (the end must be after the "
            "start; a range cannot cross midnight: split it, e.g. '22:00-24:00' and "
            "'00:00-06:00' on the next day)",
        ),
        ({"hours": {"mon": ["9-17"]}}, "calendars.emea.hours.mon: invalid range '9-17' (use"),
        ({"hours": {"mon": "09:00-24:30"}}, "hours.mon: invalid range '09:00-24:30' (hours 00"),
        ({"hours": {"mon": "09:00-25:00"}}, "hours.mon: invalid range '09:00-25:00'"),
        ({"hours": {"mon": "09:00-17:00,"}}, "hours.mon[1]: invalid range ''"),
        (
            {"hours": {"mon": "08:00-12:00,11:00-14:00"}},
            "calendars.emea.hours.mon[1]: range '11:00-14:00' overlaps '08:00-12:00'",
        ),
        (
            {"hours": {"tue": ["13:00-17:00", "09:00-13:30"]}},
            "calendars.emea.hours.tue[0]: range '13:00-17:00' overlaps '09:00-13:30'",
        ),
        ({"hours": {"mon": 9}}, "calendars.emea.hours.mon: expected ranges such as"),
        ({"hours": {"monday": "09:00-17:00"}}, "calendars.emea.hours.monday: unknown day"),
        ({"hours": {"mon": "", "sat": []}}, "calendars.emea.hours: no open time in the week"),
        ({"hours": {}}, "calendars.emea.hours: no open time in the week"),
        ({"hours": "09:00-17:00"}, "calendars.emea.hours: expected a table of weekdays"),
        ({"timezone": "Europe/Berln"}, "calendars.emea.timezone: unknown time zone 'Europe/Berln'"),
        ({"timezone": "../../etc/passwd"}, "calendars.emea.timezone: unknown time zone"),
        ({"timezone": 1}, "calendars.emea.timezone: expected an IANA zone name"),
        ({"holidays": ["2026-13-01"]}, "calendars.emea.holidays[0]: invalid date '2026-13-01'"),
        ({"holidays": ["25.12.2026"]}, "calendars.emea.holidays[0]: invalid date '25.12.2026'"),
        ({"holidays": "2026-12-25"}, "calendars.emea.holidays: expected a list of local dates"),
        (
            {"holidays": [datetime(2026, 12, 25, tzinfo=UTC)]},
            "calendars.emea.holidays[0]: invalid date",
        ),
        ({"colour": "blue"}, "calendars.emea.colour: unknown key (allowed: timezone, hours,"),
    ],
)
def test_policy_errors_name_the_field(change: dict[str, object], message: str) -> None:
    assert message in _error({**GOOD, **change})


@pytest.mark.parametrize("empty", ["09:00-09:00", "00:00-00:00", "9:30-09:30"])
def test_an_empty_range_is_not_told_about_midnight(empty: str) -> None:
    """Who writes "00:00-00:00" meant a whole day, not a night shift: the hint says how."""
    text = _error({**GOOD, "hours": {"mon": empty}})
    assert "a range must not be empty; a whole day is '00:00-24:00'" in text
    assert "midnight" not in text


def test_missing_fields_and_non_tables() -> None:
    assert "calendars.emea.timezone: missing" in _error({"hours": {"mon": "09:00-17:00"}})
    assert "calendars.emea.hours: missing" in _error({"timezone": "UTC"})
    assert "calendars.emea: expected a table" in _error("Europe/Berlin")
    with pytest.raises(PolicyError, match=r"^calendars: expected tables"):
        parse_calendars(["emea"])
    with pytest.raises(PolicyError, match=r"^policy\.calendars\.24x7: '24x7' is the built-in"):
        parse_calendars({"24x7": GOOD}, where="policy.calendars")


def test_every_error_is_reported_at_once() -> None:
    text = _error(
        {
            "timezone": "Mars/Olympus",
            "hours": {"mon": "13:00-12:00", "fri": "09:00-13:00,12:00-17:00"},
            "holidays": ["someday"],
        }
    )
    lines = text.splitlines()
    assert len(lines) == 4
    assert all(line.startswith("calendars.emea.") for line in lines)


def test_no_calendars_gives_the_builtin_and_lookups_name_the_field() -> None:
    assert parse_calendars(None) == {BUILTIN_24X7: TWENTY_FOUR_SEVEN}
    assert lookup_calendar(CALENDARS, "emea-business", "plans.gold.calendar") is EMEA
    with pytest.raises(PolicyError, match=r"^plans\.gold\.calendar: unknown calendar 'emea'"):
        lookup_calendar(CALENDARS, "emea", "plans.gold.calendar")


def test_the_constructor_checks_programmatic_calendars() -> None:
    week: list[tuple[tuple[int, int], ...]] = [() for _ in DAYS]
    with pytest.raises(ValueError, match="no open time"):
        Calendar("x", "UTC", tuple(week))
    week[0] = ((600, 540),)
    with pytest.raises(ValueError, match="mon: invalid range '10:00-09:00'"):
        Calendar("x", "UTC", tuple(week))
    week[0] = ((540, 720), (700, 800))
    with pytest.raises(ValueError, match="overlaps"):
        Calendar("x", "UTC", tuple(week))
    with pytest.raises(ValueError, match="unknown time zone"):
        Calendar("x", "Nowhere/Town", tuple(((540, 600),) for _ in DAYS))
    with pytest.raises(ValueError, match="7 days"):
        Calendar("x", "UTC", (((540, 600),),))


# --- the reference: step real UTC minutes, ask the wall clock --------------------------------


@dataclass(frozen=True)
class Spec:
    """A calendar as plain data, read by the reference without the module's help."""

    zone: str
    hours: tuple[tuple[tuple[int, int], ...], ...]  # Monday first, minutes since midnight
    holidays: frozenset[date]

    def calendar(self) -> Calendar:
        return Calendar("random", self.zone, self.hours, self.holidays)


class Reference:
    """Business time by brute force: a UTC minute is open iff the local wall clock at its
    start shows a non-holiday date and a time within that weekday's ranges. Exact for the
    zones below in the years used: their offsets and changes are whole minutes."""

    LIMIT = 60 * 24 * 400  # minutes; no window in these tests needs more

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.tz = ZoneInfo(spec.zone)
        self.memo: dict[int, bool] = {}

    def open_minute(self, t: int) -> bool:
        got = self.memo.get(t)
        if got is None:
            wall = datetime.fromtimestamp(t // US, self.tz)
            minute = wall.hour * 60 + wall.minute
            got = wall.date() not in self.spec.holidays and any(
                a <= minute < b for a, b in self.spec.hours[wall.weekday()]
            )
            self.memo[t] = got
        return got

    def add(self, start: int, d: int) -> int:
        assert start % M == 0 and d % M == 0
        if d == 0:
            return start
        counted = 0
        t = start
        for _ in range(self.LIMIT):
            if self.open_minute(t):
                counted += M
                if counted == d:
                    return t + M
            t += M
        raise AssertionError("reference ran out of minutes")

    def elapsed(self, a: int, b: int) -> int:
        return sum(M for t in range(a, b, M) if self.open_minute(t))

    def next_open(self, t: int) -> int:
        for _ in range(self.LIMIT):
            if self.open_minute(t):
                return t
            t += M
        raise AssertionError("reference ran out of minutes")


# Zones with DST, half- and quarter-hour offsets (Kolkata, Chatham, Lord Howe's 30-minute
# DST), changes at midnight (Sao Paulo until 2019, Santiago), and Goose Bay, whose clock fell
# back at 00:01 until 2010 (a few minutes of Sunday before a second Saturday 23:01).
ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Goose_Bay",
)
PERIOD = (utc("2008-01-01T00:00") // M, utc("2027-01-01T00:00") // M)  # in minutes


@cache
def changes(zone: str) -> tuple[int, ...]:
    """Offset changes of a zone in PERIOD, in minutes (to aim some starts near them): daily
    probes, then bisection to the minute."""
    tz = ZoneInfo(zone)

    def off(minute: int) -> timedelta | None:
        return datetime.fromtimestamp(minute * 60, tz).utcoffset()

    out = []
    for a, b in pairwise(range(PERIOD[0], PERIOD[1], 1440)):
        if off(a) != off(b):
            while b - a > 1:
                m = (a + b) // 2
                a, b = (m, b) if off(m) == off(a) else (a, m)
            out.append(b)
    return tuple(out)


clock_minutes = st.one_of(
    st.integers(0, 1440),
    st.integers(0, 96).map(lambda q: q * 15),
    st.sampled_from([0, 60, 90, 120, 150, 180, 1380, 1440]),  # near the usual change hours
)


@st.composite
def day_hours(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    """Random ranges of one day: pieces between sorted clock points, each open or not (so
    adjacent open pieces are touching ranges); about one day in four closed."""
    if draw(st.integers(0, 3)) == 0:
        return ()
    points = sorted(draw(st.sets(clock_minutes, min_size=2, max_size=7)))
    pieces = list(pairwise(points))
    keep = draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
    keep[draw(st.integers(0, len(pieces) - 1))] = True
    return tuple(p for p, k in zip(pieces, keep, strict=True) if k)


@st.composite
def spec_and_start(draw: st.DrawFn) -> tuple[Spec, int]:
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        hours = [draw(day_hours()) for _ in DAYS]
    else:  # an office week: the same hours on the first n days, the rest closed
        workday = draw(day_hours().filter(lambda h: bool(h)))
        n = draw(st.integers(1, 7))
        hours = [workday if i < n else () for i in range(7)]
    if not any(hours):
        hours[draw(st.integers(0, 6))] = ((540, 1020),)
    near = changes(zone)
    aim_near_a_change = draw(st.booleans())
    if near and aim_near_a_change:
        start = draw(st.sampled_from(near)) + draw(st.integers(-3 * 1440, 3 * 1440))
    else:
        start = draw(st.integers(*PERIOD))
    first = datetime.fromtimestamp(start * 60, UTC).date()
    holidays = draw(
        st.one_of(
            st.just(frozenset[date]()),
            st.frozensets(st.integers(-2, 40).map(lambda n: first + timedelta(days=n)), max_size=6),
        )
    )
    return Spec(zone, tuple(hours), holidays), start * M


def weekly_minutes(spec: Spec) -> int:
    return sum(b - a for day in spec.hours for a, b in day)


def durations(weekly: int) -> st.SearchStrategy[int]:
    """Up to three weeks of the calendar's business time, in minutes: short windows, and
    multi-week ones (which skip whole weeks)."""
    return st.one_of(
        st.integers(1, min(weekly, 600)),
        st.integers(weekly, 3 * weekly),
        st.integers(0, 3 * weekly),
        st.integers(1, 3).map(lambda n: n * weekly),  # whole weeks: deadlines at a closing
    )


reference_settings = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@reference_settings
@given(spec_and_start(), st.data())
def test_add_and_elapsed_match_the_minute_stepping_reference(
    case: tuple[Spec, int], data: st.DataObject
) -> None:
    spec, start = case
    calendar = spec.calendar()
    ref = Reference(spec)
    weekly = weekly_minutes(spec)
    d = data.draw(durations(weekly), label="minutes") * M
    deadline = calendar.add(start, d)
    assert deadline == ref.add(start, d)
    assert calendar.elapsed(start, deadline) == d
    # elapsed between instants the reference has seen (or beyond, on a few minutes more)
    span = (deadline - start) // M + 60
    a = start + data.draw(st.integers(0, span), label="a") * M
    b = start + data.draw(st.integers(0, span), label="b") * M
    assert calendar.elapsed(a, b) == ref.elapsed(a, b)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_and_start(), st.lists(st.integers(0, 30 * 1440), min_size=1, max_size=8))
def test_is_open_and_next_open_match_the_reference(
    case: tuple[Spec, int], offsets: list[int]
) -> None:
    spec, start = case
    calendar = spec.calendar()
    ref = Reference(spec)
    for o in offsets:
        t = start + o * M
        assert calendar.is_open(t) == ref.open_minute(t)
        assert calendar.next_open(t) == ref.next_open(t)


# --- laws, at microsecond resolution ---------------------------------------------------------


@st.composite
def law_case(draw: st.DrawFn) -> tuple[Calendar, int, int, int]:
    spec, start = draw(spec_and_start())
    micro = durations(weekly_minutes(spec)).flatmap(lambda m: st.integers(0, m * M))
    return spec.calendar(), start + draw(st.integers(0, 7 * 86400 * US)), draw(micro), draw(micro)


law_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@law_settings
@given(law_case())
def test_add_laws(case: tuple[Calendar, int, int, int]) -> None:
    c, s, d1, d2 = case
    t1 = c.add(s, d1)
    # exact inverse, and the deadline is the earliest such instant
    assert c.elapsed(s, t1) == d1
    if d1 > 0:
        assert c.is_open(t1 - 1)
        assert c.elapsed(s, t1 - 1) == d1 - 1
        assert c.add(c.next_open(s), d1) == t1
    # strictly increasing in the duration, composition of windows
    t2 = c.add(s, d1 + d2)
    assert (t2 > t1) if d2 > 0 else (t2 == t1)
    assert c.add(t1, d2) == t2
    # business time never exceeds real time
    assert t1 >= s + d1
    # non-decreasing in the start
    assert c.add(s + d2, d1) >= t1


@law_settings
@given(law_case())
def test_elapsed_laws(case: tuple[Calendar, int, int, int]) -> None:
    c, a, x, y = case
    b, end = a + x, a + x + y
    assert c.elapsed(a, end) == c.elapsed(a, b) + c.elapsed(b, end)
    assert 0 <= c.elapsed(a, b) <= b - a
    back = c.add(a, c.elapsed(a, b))
    assert back <= b
    if c.is_open(b - 1) and b > a:
        assert back == b
    n = c.next_open(a)
    assert n >= a and c.is_open(n) and c.elapsed(a, n) == 0


def test_the_add_memo_is_bounded_and_answers_as_the_arithmetic_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """add() remembers its answers (the engine repeats questions after every fact that moves
    no starting point); the memo never changes an answer and is cleared when full."""
    import caseclock.core.calendars as calendars

    monkeypatch.setattr(calendars, "_MEMO_SIZE", 8)
    cal = Calendar("memo", "Europe/Berlin", EMEA.hours, EMEA.holidays)
    starts = [utc("2026-03-27T14:00") + i * 37 * M for i in range(40)]
    first = [cal.add(s, 4 * H) for s in starts]
    assert len(cal._memo) <= 8
    assert [cal.add(s, 4 * H) for s in starts] == first == [cal._add(s, 4 * H) for s in starts]
