"""No input makes replay (or the worker's engine) raise: a policy is accepted or refused with
a PolicyError naming the field, an event is accepted or rejected with a reason, and whatever
is accepted replays to the end (issue 21: "no input, event or policy, makes replay or the
worker raise"). Random policies and events at the edges of what the contract allows."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy, PolicyError, policy_from_mapping
from caseclock.replay import Replayer

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Pacific/Chatham"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

good_durations = st.one_of(
    st.sampled_from(["1ms", "1s", "59m", "1h", "8h", "1bd", "2bd", "8784h", "366bd"]),
    st.integers(1, 10**6).map(lambda n: f"{n}m"),
)
# Periodic windows of an hour or more: a policy owing an update every millisecond is valid, and
# replaying a year of it is a year of alerts a millisecond apart, not a crash to look for.
good_periods = st.one_of(
    st.sampled_from(["1h", "8h", "1bd", "2bd", "8784h", "366bd"]),
    st.integers(60, 10**6).map(lambda n: f"{n}m"),
)
bad_durations = st.sampled_from(
    ["100000000h", "1e400h", "9" * 400 + "h", "0h", "-1h", "", "h", "1bd4h", "2d", "1w", "367d"]
)
good_ranges = st.sampled_from(
    ["09:00-17:00", "00:00-24:00", "23:59-24:00", "00:00-00:01", "09:00-12:00,13:00-17:00"]
)
bad_ranges = st.sampled_from(["09:00-09:00", "00:00-00:00", "17:00-09:00", "", "25:00-26:00"])


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid policies (so that events get replayed), now and then a broken field."""
    broken = draw(st.integers(0, 9)) == 0
    durations = st.one_of(good_durations, bad_durations) if broken else good_durations
    periods = st.one_of(good_periods, bad_durations) if broken else good_periods
    ranges = st.one_of(good_ranges, bad_ranges) if broken else good_ranges
    days = draw(st.lists(st.sampled_from(DAYS), unique=True, min_size=1))
    calendar: dict[str, Any] = {
        "timezone": draw(st.sampled_from(ZONES)),
        "hours": {d: draw(ranges) for d in days},
        "holidays": draw(st.lists(st.sampled_from(["2026-12-25", "1970-01-01", "2199-12-31"]))),
    }
    prio: dict[str, Any] = {
        "acknowledge": draw(durations),
        "update_every": draw(periods),
        "elevate": draw(st.one_of(st.sampled_from(["immediately", "never"]), durations)),
    }
    if draw(st.booleans()):
        prio["time_to_open"] = draw(durations)
    return {
        "default_plan": "p",
        "calendars": {"c": calendar},
        "plans": {
            "p": {
                "calendar": draw(st.sampled_from(["c", "24x7"])),
                "pause_statuses": ["pending"],
                "warn_fraction": draw(st.sampled_from([0.5, 0.999999, False])),
                "priorities": {"1": prio},
            }
        },
    }


instants = st.sampled_from(
    [
        "1970-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+14:00",
        "2026-03-29T01:30:00Z",
        "2026-12-08T10:00:00Z",
        "2199-12-31T23:59:59.999999Z",
        "2200-01-01T00:00:00Z",
        "9999-12-31T10:00:00Z",
        "0001-01-01T00:00:00Z",
    ]
)


@st.composite
def raw_events(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "case-opened",
                "case-noted",
                "eta-set",
                "case-resolved",
                "case-reopened",
                "priority-changed",
                "status-changed",
            ]
        )
    )
    doc: dict[str, Any] = {
        "event_id": f"e{draw(st.integers(0, 10**6))}",
        "type": kind,
        "case_id": draw(st.sampled_from(["A", "B"])),
        "occurred_at": draw(instants),
    }
    if kind == "case-opened":
        doc["priority"] = 1
        if draw(st.booleans()):
            doc["reported_at"] = draw(instants)
    elif kind == "case-noted":
        doc["author"] = "support"
        doc["visibility"] = "public"
        doc["workaround"] = draw(st.booleans())
    elif kind == "eta-set":
        doc["eta"] = draw(instants)
    elif kind == "priority-changed":
        doc["priority"] = 1
    elif kind == "status-changed":
        doc["status"] = draw(st.sampled_from(["pending", "open"]))
    return orjson.dumps(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(), st.lists(raw_events(), min_size=1, max_size=12))
def test_any_policy_is_refused_or_replays_any_events_to_the_end(
    doc: dict[str, Any], raws: list[bytes]
) -> None:
    try:
        policy: Policy = policy_from_mapping(doc, "<fuzz>")
    except PolicyError as e:
        assert "plans." in str(e) or "calendars." in str(e), e  # names the field
        return
    event("policy accepted")
    r = Replayer(policy)
    accepted: list[InboundEvent] = []
    for raw in raws:
        try:
            accepted.append(decode_event(raw, policy))
        except Rejected as e:
            assert e.reason in ("timestamp-out-of-range", "naive-timestamp", "invalid-event"), e
    for ev in accepted:
        r.feed(ev)
    if r.now is not None:
        r.finish(r.now + 60 * 24 * 3600 * 10**6)
