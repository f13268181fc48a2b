"""A scenario's live alerts against replay of the exact bytes its producers sent.

`compare_with_replay` runs the fault checks with what was sent for a failing case, checks that
no alert fell due after its case was resolved, and records the alert figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.timeutil import to_us
from tests.integration.deployment import Deployment
from tests.integration.expectations import (
    MARGIN_US,
    describe,
    due,
    expected_alerts,
    fired,
    load_test_policy,
    percentile,
)
from tests.integration.fault_checks import OutageReport, check_faults
from tests.integration.faults.figures import Figures
from tests.integration.scripts import Sent
from tests.integration.times import US


def expected_for(dep: Deployment, sent: Iterable[Sent], horizon_us: int) -> list[dict[str, Any]]:
    """expectations.expected_alerts over messages from several producers, in the order made."""
    return expected_alerts(dep, sorted(sent, key=lambda s: s.at_us), horizon_us)


def resolutions(dep: Deployment, sent: Iterable[Sent]) -> dict[str, int]:
    """Case -> when it was resolved (the earliest valid case-resolved's occurred_at)."""
    policy = load_test_policy(dep)
    out: dict[str, int] = {}
    for s in sent:
        if s.value is None or not s.topic.endswith("case-resolved"):
            continue
        try:
            ev = decode_event(s.value, policy, key=s.key)
        except Rejected:
            continue
        t = to_us(ev.occurred_at)
        out[ev.case_id] = min(out.get(ev.case_id, t), t)
    return out


def after_resolution(
    live: Iterable[Mapping[str, Any]], resolved: Mapping[str, int]
) -> list[Mapping[str, Any]]:
    """Live alerts due after their case was resolved (there must be none)."""
    return [a for a in live if a["case_id"] in resolved and due(a) > resolved[a["case_id"]]]


def compare_with_replay(
    dep: Deployment,
    sent: Sequence[Sent],
    live: Sequence[Mapping[str, Any]],
    figures: Figures,
    *,
    t0_us: int,
    cutoff_us: int,
    faults_us: Sequence[int] = (),
    outages: Sequence[tuple[int, int]] = (),
    logs: Iterable[Path] = (),
    takeover: Callable[[int, str], tuple[int, int] | None] | None = None,
) -> tuple[list[dict[str, Any]], OutageReport]:
    """The live alerts against replay of the exact bytes `sent` (fault_checks.check_faults, with
    what was sent for a failing case, and `takeover` for its no-storm check), and none due
    after its case was resolved; records alert_figures and the resolutions. Returns replay's
    alerts and the report."""
    expected = expected_for(dep, sent, cutoff_us)
    report = check_faults(
        live,
        expected,
        t0_us=t0_us,
        faults_us=faults_us,
        cutoff_us=cutoff_us,
        context="worker logs: " + ", ".join(map(str, logs)),
        explain=history(sent, t0_us),
        takeover=takeover,
    )
    figures.update(**alert_figures(live, expected, report, cutoff_us=cutoff_us, outages=outages))
    resolved = resolutions(dep, sent)
    late_ones = after_resolution(live, resolved)
    figures.update(resolved_cases=len(resolved), alerts_after_resolution=len(late_ones))
    assert not late_ones, describe(late_ones, t0_us)
    return expected, report


def history(sent: Sequence[Sent], t0_us: int) -> Callable[[str], str]:
    """For check_faults' `explain`: the messages sent for a case, one a line (topic,
    partition@offset, seconds after t0, label, the event's fields)."""

    def explain(case_id: str) -> str:
        key = case_id.encode()
        lines = []
        for s in sent:
            if s.key != key:
                continue
            try:
                doc = orjson.loads(s.value or b"")
            except orjson.JSONDecodeError:
                doc = {}
            fields = {k: v for k, v in doc.items() if k not in ("case_id", "occurred_at")}
            lines.append(
                f"  {s.topic.split('-', 1)[-1]:<16} "
                f"{s.partition}@{s.offset:<6} {(s.at_us - t0_us) / US:8.3f}s "
                f"{s.label:<14} {fields}"
            )
        return "\n".join(lines) or "  (nothing)"

    return explain


def alert_figures(
    live: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    report: OutageReport,
    *,
    cutoff_us: int,
    outages: Sequence[tuple[int, int]] = (),
) -> dict[str, Any]:
    """Alerts expected (replay, due before the compared horizon) and delivered, repeats,
    catch-ups and what they stood for, and the lateness of the alerts that fell due while the
    service was up (outside every (start - margin, end) of `outages`: an alert due just before
    a fault may not have been evaluated when it struck). Lateness is measured from when replay
    fires the alert: its due_at, or the fact that made it due when that came later (a priority
    raised after the deadline), as the worker's own lateness histogram does."""
    upto = cutoff_us - MARGIN_US
    when = {a["alert_id"]: fired(a) for a in expected if due(a) <= upto}
    first: dict[str, Mapping[str, Any]] = {}
    for a in sorted(live, key=fired):
        first.setdefault(a["alert_id"], a)

    def late(a: Mapping[str, Any]) -> float:
        return (fired(a) - when[a["alert_id"]]) / US

    up_alerts = [
        a
        for a in first.values()
        if a["alert_id"] in when
        and not any(s - MARGIN_US <= when[a["alert_id"]] <= e for s, e in outages)
    ]
    up = [late(a) for a in up_alerts]
    worst = max(up_alerts, key=late, default=None)
    return {
        "alerts_expected": len(when),
        "alerts_delivered": len(when.keys() & first.keys()),
        "stood_for_by_catch_up": report.skipped,
        "alert_copies": len(live),
        "repeats": report.repeats,
        "catch_ups": report.catch_ups,
        "lateness_up_s": {
            "alerts": len(up),
            "p50": round(percentile(up, 50), 3) if up else None,
            "p99": round(percentile(up, 99), 3) if up else None,
            "max": round(max(up), 3) if up else None,
            "latest": None
            if worst is None
            else {k: worst[k] for k in ("case_id", "type", "stage", "due_at", "fired_at")},
        },
    }
