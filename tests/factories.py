"""Event builders for tests: hours after a fixed origin, so scenarios read like the plan."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from caseclock.contracts.inbound import decode_event
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy, load_policy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)
DEFAULT_POLICY = load_policy()


def ts(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def hours_of(dt: datetime) -> float:
    return (dt - T0) / timedelta(hours=1)


def ev(
    type_: str, case: str, hours: float, policy: Policy = DEFAULT_POLICY, **fields: Any
) -> InboundEvent:
    doc = {
        "type": type_,
        "event_id": fields.pop("event_id", f"ev-{next(_ids)}"),
        "case_id": case,
        "occurred_at": ts(hours),
        **fields,
    }
    return decode_event(orjson.dumps(doc), policy)


def opened(case: str, hours: float = 0, priority: int = 1, **kw: Any) -> InboundEvent:
    return ev("case-opened", case, hours, priority=priority, **kw)


def note(
    case: str,
    hours: float,
    author: str = "support",
    visibility: str = "public",
    workaround: bool = False,
    **kw: Any,
) -> InboundEvent:
    return ev(
        "case-noted", case, hours, author=author, visibility=visibility, workaround=workaround, **kw
    )


def eta(case: str, hours: float, eta_hours: float, **kw: Any) -> InboundEvent:
    return ev("eta-set", case, hours, eta=ts(eta_hours), **kw)


def resolved(case: str, hours: float, **kw: Any) -> InboundEvent:
    return ev("case-resolved", case, hours, **kw)


def reprioritised(case: str, hours: float, priority: int, **kw: Any) -> InboundEvent:
    return ev("priority-changed", case, hours, priority=priority, **kw)


def status(case: str, hours: float, status: str, **kw: Any) -> InboundEvent:
    return ev("status-changed", case, hours, status=status, **kw)


def reopened(case: str, hours: float, **kw: Any) -> InboundEvent:
    return ev("case-reopened", case, hours, **kw)
