"""The demo desk's stories are valid under the demo policy and show pauses and business hours."""

from __future__ import annotations

from collections import Counter

from caseclock.cli.demo import Desk, demo_policy_path, render_alert
from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.policy import load_policy


def test_stories_decode_and_include_pauses_and_the_business_hours_plan() -> None:
    policy = load_policy(demo_policy_path())
    desk = Desk(seed=7)
    kinds: Counter[str] = Counter()
    plans: Counter[str] = Counter()
    for _ in range(300):
        case, steps = desk.story()
        for _, step in steps:
            kind, raw = desk.materialise(case, step)
            try:
                ev = decode_event(raw, policy, key=case.encode())
            except Rejected:
                assert isinstance(step, bytes)  # only the deliberately malformed ones
                continue
            kinds[kind] += 1
            if ev.type == "case-opened":
                plans[ev.plan or policy.default_plan] += 1
    assert kinds["status-changed"] > 0 and kinds["status-changed"] % 2 == 0  # pending, open
    assert plans["office-hours"] > 0 and plans["support-plus"] > plans["office-hours"]
    office = policy.plans["office-hours"]
    assert office.priorities[2].calendar.name == "office" and "pending" in office.pause_statuses


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
