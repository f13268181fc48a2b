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
