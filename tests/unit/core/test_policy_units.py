"""Policy windows in business days, days refused where they are ambiguous, and the bounds on
every window (issue 21): what a policy author writes, what loads, and what the error says."""

from __future__ import annotations

from dataclasses import replace

import pytest

from caseclock.core.calendars import TWENTY_FOUR_SEVEN
from caseclock.core.policy import (
    MAX_WINDOW_US,
    WINDOWS,
    Policy,
    PolicyError,
    PriorityRule,
    load_policy,
    policy_fingerprint,
    policy_from_toml,
)
from tests.unit.core.test_calendars import BERLIN, NEW_YORK, local

US = 10**6
H = 3600 * US
DAY = 24 * H

CALENDARS = """
[calendars.emea-business]
timezone = "Europe/Berlin"
hours = { mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", thu = "09:00-17:00", fri = "09:00-13:00" }
holidays = ["2026-12-24", "2026-12-25"]

[calendars.us-business]
timezone = "America/New_York"
hours = { mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", thu = "09:00-17:00", fri = "09:00-17:00" }

[calendars.mondays]
timezone = "UTC"
hours = { mon = "09:00-10:00" }

[calendars.round-the-clock]
timezone = "Europe/Berlin"
hours = { mon = "00:00-24:00", tue = "00:00-24:00", wed = "00:00-24:00", thu = "00:00-24:00", fri = "00:00-24:00", sat = "00:00-24:00", sun = "00:00-24:00" }
"""  # noqa: E501 (calendars as a policy author writes them)


def policy(calendar: str, **windows: str) -> Policy:
    """A policy whose plan "gold" counts in `calendar`, with priority 2's windows."""
    windows.setdefault("acknowledge", "4h")
    windows.setdefault("update_every", "8h")
    lines = "".join(f'{k} = "{v}"\n' for k, v in windows.items())
    return policy_from_toml(
        f'default_plan = "gold"\n{CALENDARS}\n[plans.gold]\ncalendar = "{calendar}"\n'
        f"[plans.gold.priorities.2]\n{lines}",
        "gold.toml",
    )


def rule(calendar: str, **windows: str) -> PriorityRule:
    return policy(calendar, **windows).plans["gold"].priorities[2]


def error(calendar: str, **windows: str) -> str:
    with pytest.raises(PolicyError) as e:
        policy(calendar, **windows)
    return str(e.value)


# --- business days -------------------------------------------------------------------------


def test_business_days_load_with_a_nominal_length_and_their_count() -> None:
    r = rule("emea-business", acknowledge="2bd", update_every="1bd", elevate="3bd")
    assert dict(r.business_days) == {"acknowledge": 2, "update_every": 1, "elevate_after": 3}
    # N x the longest open day (8 h; Friday is shorter), for histogram buckets.
    assert (r.acknowledge, r.update_every, r.elevate_after) == (16 * H, 8 * H, 24 * H)
    assert r.elevate == "after"
    plain = rule("emea-business", acknowledge="16h")
    assert dict(plain.business_days) == {} and plain.acknowledge == 16 * H


def test_window_of_business_days_depends_on_where_it_starts() -> None:
    r = rule("emea-business", acknowledge="2bd", update_every="4h", time_to_open="1bd")
    monday = local(BERLIN, "2026-03-09T10:00")
    assert r.window("acknowledge", monday) == 16 * H  # to Wednesday 10:00
    # Thursday 10:00 to Monday 10:00: 7 h, Friday's 4 h, 1 h.
    thursday = local(BERLIN, "2026-03-12T10:00")
    assert r.window("acknowledge", thursday) == 12 * H
    assert r.calendar.add(thursday, r.window("acknowledge", thursday)) == local(
        BERLIN, "2026-03-16T10:00"
    )
    assert r.window("time_to_open", thursday) == 8 * H  # to Friday 10:00
    late = local(BERLIN, "2026-03-12T15:00")
    assert r.window("time_to_open", late) == 2 * H + 4 * H  # to Friday's 13:00 closing
    # Written in hours, a window is the same wherever it starts.
    assert r.window("update_every", monday) == r.window("update_every", thursday) == 4 * H
    # Holidays are no business days: from Wednesday 23 December (24th and 25th are holidays),
    # two business days end on Tuesday 29th at 10:00.
    wednesday = local(BERLIN, "2026-12-23T10:00")
    assert r.window("acknowledge", wednesday) == 7 * H + 8 * H + H
    assert r.calendar.add(wednesday, r.window("acknowledge", wednesday)) == local(
        BERLIN, "2026-12-29T10:00"
    )


def test_window_of_a_plain_duration_is_the_field() -> None:
    r = load_policy().plans["support-plus"].priorities[2]
    t = local(NEW_YORK, "2026-03-08T01:30")
    assert r.window("acknowledge", t) == r.acknowledge == 4 * H
    assert r.window("update_every", t) == 48 * H
    assert r.window("time_to_open", t) == 4 * H
    assert r.window("elevate_after", t) == 8 * H


def test_window_refuses_unknown_names_and_absent_windows() -> None:
    p3 = load_policy().plans["support-plus"].priorities[3]  # elevate = "never"
    with pytest.raises(ValueError, match="priority 3 has no elevate_after window"):
        p3.window("elevate_after", 0)
    with pytest.raises(ValueError, match="unknown window 'priority'"):
        p3.window("priority", 0)
    no_tto = rule("emea-business")
    assert no_tto.time_to_open is None
    with pytest.raises(ValueError, match="no time_to_open window"):
        no_tto.window("time_to_open", 0)


def test_on_24x7_days_weeks_and_business_days_are_24_hours() -> None:
    r = rule("24x7", acknowledge="2d", update_every="1w", time_to_open="3bd")
    assert (r.acknowledge, r.update_every, r.time_to_open) == (2 * DAY, 7 * DAY, 3 * DAY)
    assert dict(r.business_days) == {"time_to_open": 3}
    t = local(BERLIN, "2026-03-28T12:00")  # a DST change in Berlin is nothing to 24x7
    assert r.window("time_to_open", t) == 3 * DAY


def test_a_calendar_where_every_instant_counts_keeps_days() -> None:
    """Round the clock in Berlin: a day of business time is 24 hours, unambiguously; a
    business day runs to the same local time the next day (23 h over the spring change)."""
    r = rule("round-the-clock", acknowledge="1d", update_every="1bd")
    assert r.acknowledge == DAY
    assert r.window("update_every", local(BERLIN, "2026-03-28T12:00")) == 23 * H


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("1bd4h", "business days are written alone"),
        ("4h1bd", "business days are written alone"),
        ("1.5bd", "as a whole number such as '2bd'"),
        ("bd", "business days are written alone"),
        ("0bd", "a number of business days must be at least 1"),
        ("-1bd", "business days are written alone"),
        ("1" * 19 + "bd", "business days are written alone"),
    ],
)
def test_business_days_are_whole_and_alone(written: str, says: str) -> None:
    text = error("emea-business", acknowledge=written)
    assert "\n  plans.gold.priorities.2.acknowledge: " in text and says in text, text


def test_the_elevation_field_is_named_for_business_days_too() -> None:
    text = error("emea-business", elevate="1bd2h")
    assert "plans.gold.priorities.2.elevate: 'immediately', 'never' or a duration" in text
    assert "business days are written alone" in text


# --- days and weeks on a business calendar -------------------------------------------------


def test_days_on_a_business_calendar_are_refused_with_both_readings() -> None:
    text = error("emea-business", acknowledge="2d")
    assert text == (
        "invalid policy gold.toml:\n"
        "  plans.gold.priorities.2.acknowledge: '2d' on business calendar 'emea-business' is "
        "ambiguous: write '2bd' for two business days (the same local time two open days "
        "later) or '16h' for 16 business hours"
    )


@pytest.mark.parametrize(
    ("field", "written", "suggests"),
    [
        ("acknowledge", "1d", "'1bd' for one business day (the same local time one open day"),
        ("update_every", "1w", "'5bd' for five business days"),
        ("update_every", "1w", "'36h' for 36 business hours"),  # 4 x 8 h + Friday's 4 h
        ("time_to_open", "1w2d", "'7bd' for seven business days"),
        ("time_to_open", "1w2d", "'52h' for 52 business hours"),
        ("elevate", "1.5d", "whole business days such as '2bd'"),
        ("elevate", "1.5d", "'12h' for 12 business hours"),
        ("acknowledge", "1d30m", "'8h30m' of business hours"),
        ("acknowledge", "12d", "'12bd' for 12 business days"),
    ],
)
def test_every_window_refuses_days_and_weeks_naming_the_field(
    field: str, written: str, suggests: str
) -> None:
    text = error("emea-business", **{field: written})
    assert f"plans.gold.priorities.2.{field}: '{written}' on business calendar 'emea-business'" in (
        text
    )
    assert suggests in text, text


def test_a_priority_on_24x7_keeps_days_in_a_business_hours_plan() -> None:
    with pytest.raises(PolicyError) as e:
        policy_from_toml(
            f'default_plan = "gold"\n{CALENDARS}\n[plans.gold]\ncalendar = "emea-business"\n'
            '[plans.gold.priorities.1]\ncalendar = "24x7"\nacknowledge = "1d"\n'
            'update_every = "1w"\n[plans.gold.priorities.2]\nacknowledge = "2d"\n'
            'update_every = "1bd"\n'
        )
    lines = str(e.value).splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("  plans.gold.priorities.2.acknowledge: '2d'")
    ok = policy_from_toml(
        f'default_plan = "gold"\n{CALENDARS}\n[plans.gold]\ncalendar = "emea-business"\n'
        '[plans.gold.priorities.1]\ncalendar = "24x7"\nacknowledge = "1d"\nupdate_every = "1w"\n'
        '[plans.gold.priorities.2]\nacknowledge = "2bd"\nupdate_every = "1bd"\n'
    )
    assert ok.plans["gold"].priorities[1].acknowledge == DAY


# --- bounds --------------------------------------------------------------------------------


def test_a_window_longer_than_a_year_and_a_day_is_refused_naming_the_field() -> None:
    text = error("emea-business", acknowledge="100000000h")
    assert text == (
        "invalid policy gold.toml:\n"
        "  plans.gold.priorities.2.acknowledge: '100000000h' is longer than the longest window "
        "caseclock accepts (366 days of counted time)"
    )
    assert rule("24x7", update_every="366d").update_every == MAX_WINDOW_US
    assert "update_every: '366d1ms' is longer than the longest window" in error(
        "24x7", update_every="366d1ms"
    )
    assert "time_to_open: '8785h' is longer" in error("24x7", time_to_open="8785h")
    assert "elevate: '9000h' is longer" in error("us-business", elevate="9000h")
    # 366 days of 8-hour days is 1098 business days; one more is too long.
    assert rule("us-business", acknowledge="1098bd").acknowledge == MAX_WINDOW_US
    assert "acknowledge: '1099bd' is longer than the longest window" in error(
        "us-business", acknowledge="1099bd"
    )
    assert "acknowledge: '367bd' is longer" in error("24x7", acknowledge="367bd")


def test_a_window_that_would_take_more_than_ten_years_of_calendar_is_refused() -> None:
    # One hour open a week: 521 h take 3647 days, 522 h take 3654.
    assert rule("mondays", acknowledge="521h").acknowledge == 521 * H
    assert error("mondays", acknowledge="522h") == (
        "invalid policy gold.toml:\n"
        "  plans.gold.priorities.2.acknowledge: '522h' on calendar 'mondays' (1h open a week) "
        "takes 3654 days of calendar time: longer than the longest window caseclock accepts "
        "(3650 days, 10 years, of calendar time)"
    )
    # One open day a week: 521 business days take 3647 days.
    assert dict(rule("mondays", update_every="521bd").business_days) == {"update_every": 521}
    assert "update_every: '522bd' on calendar 'mondays' (1 day open a week) takes 3654 days" in (
        error("mondays", update_every="522bd")
    )
    # Within a year of counted time on a normal office calendar: 2000 h take about 7 years.
    assert rule("us-business", acknowledge="2000h").acknowledge == 2000 * H


@pytest.mark.parametrize("absurd", ["9" * 400 + "h", "1e400h", "99999999999999999999ms"])
def test_absurd_numbers_are_an_error_naming_the_field_not_an_overflow(absurd: str) -> None:
    assert "\n  plans.gold.priorities.2.update_every: invalid duration" in error(
        "24x7", update_every=absurd
    )


def test_every_window_error_is_reported_at_once() -> None:
    text = error("emea-business", acknowledge="2d", update_every="100000000h", time_to_open="1w")
    lines = text.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "plans.gold.priorities.2.acknowledge",
        "plans.gold.priorities.2.update_every",
        "plans.gold.priorities.2.time_to_open",
    ]


def test_shipped_policies_still_load() -> None:
    from pathlib import Path

    import yaml

    for name in ("support-plus", "demo"):
        assert load_policy(f"builtin:{name}").plans
    root = Path(__file__).resolve().parents[3]
    doc = yaml.safe_load((root / "deploy/k8s/configmap-policy.yaml").read_text())
    assert policy_from_toml(doc["data"]["policy.toml"]).plans["support-plus"]


# --- the rule itself -----------------------------------------------------------------------


def test_the_fingerprint_tells_two_business_days_from_sixteen_hours() -> None:
    days = policy("emea-business", acknowledge="2bd")
    hours = policy("emea-business", acknowledge="16h")
    # The same nominal microseconds: only the business days tell them apart.
    assert days.plans["gold"].priorities[2].acknowledge == 16 * H
    assert days != hours
    assert policy_fingerprint(days) != policy_fingerprint(hours)
    assert policy_fingerprint(days) == policy_fingerprint(
        policy("emea-business", acknowledge="2bd")
    )
    assert policy_fingerprint(policy("emea-business", update_every="2bd")) != (
        policy_fingerprint(days)
    )


def test_a_rule_built_in_code_checks_its_business_days() -> None:
    base = PriorityRule(2, H, 4 * H, None, "never", None, TWENTY_FOUR_SEVEN)
    assert dict(base.business_days) == {} and hash(base) == hash(replace(base))
    two = replace(base, business_days={"acknowledge": 2})
    assert two.window("acknowledge", 0) == 2 * DAY and two != base
    assert hash(two) == hash(base)  # the mapping is compared, not hashed
    with pytest.raises(TypeError):
        two.business_days["acknowledge"] = 3  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown window 'ack'"):
        replace(base, business_days={"ack": 2})
    with pytest.raises(ValueError, match=">= 1"):
        replace(base, business_days={"acknowledge": 0})
    with pytest.raises(ValueError, match="no such window"):
        replace(base, business_days={"time_to_open": 1})
    assert set(WINDOWS) == {"acknowledge", "update_every", "time_to_open", "elevate_after"}
