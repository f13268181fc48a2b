"""The demo shows the business-hours plan, pauses and reopens, and names a business calendar."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from caseclock.cli.demo import demo_policy_path, render_alert
from caseclock.cli.simulator import StoryDesk
from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.policy import load_policy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_stories_include_pauses_reopens_and_the_business_hours_plan() -> None:
    policy = load_policy(demo_policy_path())
    desk = StoryDesk(lambda kind: kind, every=1.0, seed=7)
    statuses: Counter[str] = Counter()
    plans: Counter[str] = Counter()
    reopened = 0
    for _ in range(300):
        case, steps = desk.story()
        for _, step in steps:
            _, key, value = desk.materialise(case, step, NOW)
            assert value is not None
            try:
                ev = decode_event(value, policy, key=key)
            except Rejected:
                continue
            if ev.type == "status-changed":
                statuses[ev.status] += 1
            elif ev.type == "case-opened":
                plans[ev.plan or policy.default_plan] += 1
            elif ev.type == "case-reopened":
                reopened += 1
    assert statuses["pending"] == statuses["open"] > 0  # every pause ends
    assert plans["office-hours"] > 0 and plans["support-plus"] > plans["office-hours"]
    assert reopened > 0
    office = policy.plans["office-hours"]
    assert office.priorities[2].calendar.name == "office" and "pending" in office.pause_statuses
    assert office.priorities[1].calendar.name == "24x7"


def test_the_console_names_a_business_calendar() -> None:
    alert = {
        "due_at": "2026-01-05T09:00:00+00:00",
        "fired_at": "2026-01-05T09:00:00.5+00:00",
        "case_id": "DEMO-0001",
        "priority": 2,
        "type": "ack-due",
        "stage": "breach",
        "reason": "no-acknowledgement",
    }
    assert "office hours" in render_alert({**alert, "calendar": "office"})
    assert "hours" not in render_alert({**alert, "calendar": "24x7"})
