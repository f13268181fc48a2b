"""Event contracts: every reason of docs/semantics.md section 5 is recognised and explained."""

from __future__ import annotations

import orjson
import pytest

from caseclock.contracts.alerts import AlertModel
from caseclock.contracts.inbound import REJECT_REASONS, Rejected, decode_event
from caseclock.core.facts import CaseNoted, CaseOpened
from tests.factories import DEFAULT_POLICY

OPEN = {
    "type": "case-opened",
    "event_id": "e1",
    "case_id": "C1",
    "occurred_at": "2026-01-05T09:00:00Z",
    "priority": 1,
}


def raw(**over: object) -> bytes:
    doc = {**OPEN, **over}
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def test_valid_event_decodes_with_offsets_normalised() -> None:
    ev = decode_event(raw(occurred_at="2026-01-05T10:00:00+01:00", extra_field=1), DEFAULT_POLICY)
    assert isinstance(ev, CaseOpened) and ev.plan == "support-plus"
    assert ev.occurred_at.utcoffset() is not None
    assert ev.occurred_at.timestamp() == 1767603600


def test_defaults() -> None:
    ev = decode_event(
        orjson.dumps(
            {
                "type": "case-noted",
                "event_id": "n",
                "case_id": "C",
                "occurred_at": "2026-01-05T09:00:00Z",
                "author": "support",
                "visibility": "public",
            }
        ),
        DEFAULT_POLICY,
    )
    assert isinstance(ev, CaseNoted) and ev.workaround is False


@pytest.mark.parametrize(
    ("message", "reason", "detail"),
    [
        (b"{not json", "invalid-json", "not valid JSON"),
        (b"[1, 2]", "invalid-event", "JSON object"),
        (raw(type=...), "invalid-event", "missing field 'type'"),
        (raw(type="case-closed"), "unknown-type", "case-closed"),
        (raw(case_id=...), "invalid-event", "case_id"),
        (raw(event_id=""), "invalid-event", "event_id"),
        (raw(priority="1"), "invalid-event", "priority"),
        (raw(priority=9), "unknown-priority", "priority 9"),
        (raw(plan="gold"), "unknown-plan", "gold"),
        (raw(occurred_at="2026-01-05T09:00:00"), "naive-timestamp", "occurred_at"),
        (raw(reported_at="2026-01-05 08:00:00"), "naive-timestamp", "reported_at"),
        (raw(occurred_at=1767603600), "invalid-event", "occurred_at"),
        (raw(occurred_at="yesterday"), "invalid-event", "RFC 3339"),
        (raw(occurred_at="2026-02-30T00:00:00Z"), "invalid-event", "occurred_at"),
        (raw(type="priority-changed", priority=7), "unknown-priority", "priority 7"),
        (raw(type="case-noted", author="bot", visibility="public"), "invalid-event", "author"),
        (raw(subject="x" * 70_000), "oversized", "exceeds"),
    ],
)
def test_rejections_carry_reason_and_detail(message: bytes, reason: str, detail: str) -> None:
    with pytest.raises(Rejected) as exc:
        decode_event(message, DEFAULT_POLICY)
    assert exc.value.reason == reason
    assert reason in REJECT_REASONS
    assert detail in exc.value.detail


@pytest.mark.parametrize(
    ("message", "field", "shown"),
    [
        (raw(occurred_at="9999-12-31T10:00:00Z"), "occurred_at", "9999-12-31T10:00:00Z"),
        (raw(occurred_at="1969-12-31T23:59:59.999999Z"), "occurred_at", "1969-12-31T23:59:59"),
        (raw(occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at", "0001-01-01T00:00:00"),
        (raw(occurred_at="2200-01-01T00:00:00Z"), "occurred_at", "2200-01-01T00:00:00Z"),
        # an offset carries an instant across a bound: the instant counts, not the digits
        (raw(occurred_at="1970-01-01T00:30:00+01:00"), "occurred_at", "1970-01-01T00:30:00+01"),
        (raw(occurred_at="2199-12-31T23:30:00-01:00"), "occurred_at", "2199-12-31T23:30:00-01"),
        (raw(reported_at="1900-01-01T00:00:00Z"), "reported_at", "1900-01-01T00:00:00Z"),
        (
            raw(type="eta-set", eta="9999-12-31T23:59:59-01:00"),
            "eta",
            "9999-12-31T23:59:59-01:00",
        ),
    ],
)
def test_timestamps_outside_the_range_are_refused_naming_the_field(
    message: bytes, field: str, shown: str
) -> None:
    with pytest.raises(Rejected) as exc:
        decode_event(message, DEFAULT_POLICY)
    assert exc.value.reason == "timestamp-out-of-range" and exc.value.reason in REJECT_REASONS
    detail = exc.value.detail
    assert detail.startswith(f"{field} {shown}"), detail
    assert detail.endswith(" is outside 1970-01-01T00:00:00Z..2200-01-01T00:00:00Z"), detail


def test_the_detail_of_an_out_of_range_timestamp_reads_as_the_contract_says() -> None:
    with pytest.raises(Rejected) as exc:
        decode_event(raw(occurred_at="9999-12-31T10:00:00Z"), DEFAULT_POLICY)
    assert exc.value.detail == (
        "occurred_at 9999-12-31T10:00:00Z is outside 1970-01-01T00:00:00Z..2200-01-01T00:00:00Z"
    )


@pytest.mark.parametrize(
    "instant",
    [
        "1970-01-01T00:00:00Z",  # the first instant is in
        "1970-01-01T01:00:00+01:00",  # the same instant
        "2199-12-31T23:59:59.999999Z",  # the last microsecond is in
        "2200-01-01T00:59:59+01:00",  # 2199-12-31T23:59:59Z
    ],
)
def test_the_bounds_of_the_range(instant: str) -> None:
    from caseclock.core.timeutil import MAX_INSTANT_US, MIN_INSTANT_US, to_us

    for message in (
        raw(occurred_at=instant),
        raw(reported_at=instant),
        raw(type="eta-set", eta=instant),
    ):
        ev = decode_event(message, DEFAULT_POLICY)
        assert MIN_INSTANT_US <= to_us(ev.occurred_at) < MAX_INSTANT_US


def test_a_case_opened_in_the_year_9999_is_dead_lettered_not_a_crash_of_replay() -> None:
    """Schema-valid, but beyond the calendars' arithmetic: on a business calendar replay used
    to die with "year 10000 is out of range". Now it is one invalid line, and the rest of the
    history is replayed."""
    import io

    from caseclock.core.policy import policy_from_toml
    from caseclock.replay import run_replay

    policy = policy_from_toml(
        'default_plan = "gold"\n[calendars.emea]\ntimezone = "Europe/Berlin"\n'
        '[calendars.emea.hours]\nmon = "09:00-17:00"\nfri = "09:00-17:00"\n'
        '[plans.gold]\ncalendar = "emea"\n[plans.gold.priorities.1]\nacknowledge = "4h"\n'
        'update_every = "8h"\n'
    )
    lines = [
        raw(case_id="far", occurred_at="9999-12-31T10:00:00Z"),
        raw(case_id="near", event_id="e2", occurred_at="2026-01-05T09:00:00Z"),
        raw(case_id="near", event_id="e3", occurred_at="2026-01-06T09:00:00Z"),
    ]
    out, err = io.BytesIO(), io.StringIO()
    summary = run_replay(lines, policy, out, err)
    assert summary.invalid == 1
    assert dict(summary.invalid_reasons) == {"timestamp-out-of-range": 1}
    assert "line 1: timestamp-out-of-range: occurred_at 9999-12-31T10:00:00Z is outside" in (
        err.getvalue()
    )
    alerts = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert {(a["case_id"], a["type"], a["stage"]) for a in alerts} >= {
        ("near", "ack-due", "breach")
    }


def test_key_must_match_case_id() -> None:
    assert decode_event(raw(), DEFAULT_POLICY, key=b"C1").case_id == "C1"
    with pytest.raises(Rejected) as exc:
        decode_event(raw(), DEFAULT_POLICY, key=b"C2")
    assert exc.value.reason == "key-mismatch"


def test_alert_json_uses_utc_z() -> None:
    from datetime import UTC, datetime

    t = datetime(2026, 1, 5, 9, tzinfo=UTC)
    a = AlertModel(
        alert_id="x",
        type="ack-due",
        stage="breach",
        reason="no-acknowledgement",
        case_id="C",
        priority=1,
        plan="support-plus",
        due_at=t,
        fired_at=t,
        opened_at=t,
    )
    doc = orjson.loads(a.to_json())
    assert doc["due_at"] == "2026-01-05T09:00:00Z" and doc["catch_up"] is False


def test_engine_alert_record_serialises_to_the_contract() -> None:
    from caseclock.core.timeutil import to_us
    from caseclock.replay import replay
    from tests.factories import T0, eta, note, opened

    alerts = replay(
        [opened("C", 0, 1, customer_id="acme", subject="down"), note("C", 0.5), eta("C", 1, 3)],
        DEFAULT_POLICY,
        until=to_us(T0) + 4 * 3600 * 10**6,
    )
    alerts += replay([opened("D", 0, 2), note("D", 20)], DEFAULT_POLICY)
    assert {a.type for a in alerts} == {"ack-due", "update-due", "elevate-to-l2"}
    for a in alerts:
        model = AlertModel.model_validate_json(a.to_json())
        assert model.model_dump() == a.to_dict()
        assert orjson.loads(a.to_json()) == orjson.loads(model.to_json())
