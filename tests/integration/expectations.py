"""What the alerts should be: replay of the exact bytes sent, and the alerts' fields read back.

The live worker must agree with `caseclock replay` over the same messages; these predict the
alerts, compare them by content (`alert_key`), read their times and describe them for an
assertion's message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from caseclock.contracts.inbound import DEFAULT_MAX_MESSAGE_BYTES, Rejected, decode_event
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy, load_policy
from caseclock.replay import replay
from tests.integration.deployment import Deployment
from tests.integration.scripts import Sent
from tests.integration.times import US, ts_us

MARGIN_US = 1_500_000
"""Alerts due this close to a cut-off may still be in flight: they are not compared."""

ALERT_FIELDS = ("alert_id", "type", "stage", "reason", "case_id", "priority", "due_at")


def load_test_policy(dep: Deployment) -> Policy:
    return load_policy(str(dep.policy_path))


def accepted_events(dep: Deployment, sent: Iterable[Sent]) -> list[InboundEvent]:
    """The events of the messages sent, in order, without those the worker rejects (same
    checks: key, size limit), as the worker leaves them out."""
    policy = load_test_policy(dep)
    limit = int(dep.extra_env.get("CASECLOCK_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES))
    events = []
    for s in sent:
        if s.value is None:
            continue
        try:
            events.append(decode_event(s.value, policy, key=s.key, max_bytes=limit))
        except Rejected:
            continue
    return events


def expected_alerts(dep: Deployment, sent: Iterable[Sent], horizon_us: int) -> list[dict[str, Any]]:
    """What `caseclock replay` says for the exact bytes sent, up to and including the horizon,
    as alert documents (serialised as the worker serialises them), over `accepted_events`."""
    events = accepted_events(dep, sent)
    policy = load_test_policy(dep)
    return [orjson.loads(a.to_json()) for a in replay(events, policy, until=horizon_us)]


def alert_key(a: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(ts_us(a[f]) if f == "due_at" else a[f] for f in ALERT_FIELDS)


def due(a: Mapping[str, Any]) -> int:
    return ts_us(a["due_at"])


def fired(a: Mapping[str, Any]) -> int:
    return ts_us(a["fired_at"])


def lateness_s(a: Mapping[str, Any]) -> float:
    return (fired(a) - due(a)) / US


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def describe(alerts: Iterable[Mapping[str, Any]], t0_us: int) -> str:
    """Alerts as readable lines, times as seconds after t0 (for assertion messages)."""
    rows = sorted(alerts, key=lambda a: (a["case_id"], due(a), a["type"], a["stage"]))
    return "\n".join(
        f"  {a['case_id']:<12} {a['type']:<13} {a['stage']:<7} {a['reason']:<20} "
        f"P{a['priority']} due={(due(a) - t0_us) / US:7.3f}"
        + (f" fired={(fired(a) - t0_us) / US:7.3f}" if "fired_at" in a else "")
        + (" catch-up" if a.get("catch_up") else "")
        for a in rows
    )
