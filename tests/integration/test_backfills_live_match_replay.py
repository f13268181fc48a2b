"""Backfills on a real worker: live and replay agree when a case's history arrives late, at once.

A backfill is a case's history produced long after it happened (a migration, an upstream
system catching up): several older facts read one after another while the clock stands still.
The contract (spec sections 4 and 7, as amended for issue 21) says they are all applied before
anything due at or before that instant fires, and that a case paused now holds every point,
also one that fell due before the pause began: it comes out with the catch-up rule when the
pause ends. The live worker gets there by holding a case whose deadline is already past for
CASECLOCK_INPUT_SKEW (0.25 s) after a fact, so that its facts on the other input topics come
first; replay by applying every event of one virtual instant before firing. These tests play
backfills to a real worker and compare its alerts with `caseclock replay` of the exact bytes
sent (fed in the order they were sent, each at its occurred_at, on a clock that never goes
back), as test_live_matches_replay.py does for live histories.

Test 3 (issue 21, examples 3 and 4) checks deadlines as well: long histories (20 pauses in
one update window, 10 resolve/reopen cycles before an acknowledgement) sent as a backfill
dated so that the breach they extend is just past, whose due_at must be exact; and a pause
learned late that begins exactly at an update deadline already emitted, on windows of
seconds, which owes the moved point again.

Alerts of a backfill are catch-ups emitted at arrival: live stamps them with its wall clock,
replay with its virtual one, so they are compared by `alert_key` (no fired_at).

What keeps latency out of the outcome (the model test's MARGIN rule, for backfills):

* Replay's clock stands at the latest event it was fed, so a burst arrives, in replay, at the
  instant of the last message before it that moved the clock (test 1: the opening of X, 2 s
  earlier; test 2 sends each burst right after a note on its CLOCK case, occurred as sent).
* A deadline that falls between a burst's arrival in replay and its evaluation live (a skew
  after its arrival, plus latency) is inherently racy: on time in one, part of a catch-up in
  the other. Test 1's deadlines are hours from now. Test 2's histories put every instant on a
  whole minute, like every calendar boundary and window, so all their deadlines in the present
  fall on whole minutes, and no message is sent within 1.6 s of one (the deadlines of its
  TIMER case are 4 s after its burst).
* A case's bursts and live facts are 1.6 s apart or more: each burst is evaluated before the
  case's next facts arrive, live as in replay; and test 2 sends the messages of one instant
  together (`play_together`), so a burst reaches the worker well within the skew.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from caseclock.core.policy import Policy, policy_from_toml
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import (
    MARGIN_US,
    alert_key,
    describe,
    due,
    expected_alerts,
    fired,
)
from tests.integration.kafka_io import read_alerts
from tests.integration.scripts import Script, Sent, play
from tests.integration.times import US, iso, now_us, sleep_until, ts_us

MINUTE = 60 * US
HOUR = 60 * MINUTE
SUPPORT = {"author": "support", "visibility": "public"}

Alert = dict[str, Any]


def key(a: Mapping[str, Any]) -> tuple[Any, ...]:
    """What live and replay must agree on: the alert without fired_at, and its calendar."""
    return (*alert_key(a), a["calendar"])


def occurred(s: Sent) -> int:
    """The occurred_at of a message sent (microseconds)."""
    assert s.value is not None
    return ts_us(orjson.loads(s.value)["occurred_at"])


@dataclass
class Outcome:
    t0: int
    cutoff: int
    sent: list[Sent]
    live: list[Alert]
    """The live alerts due by cutoff - MARGIN_US."""
    replay: list[Alert]
    """The same for replay."""


def play_and_compare(
    dep: Deployment,
    build: Callable[[int], tuple[Script, int]],
    context: str = "",
    precondition: Callable[[list[Sent]], None] | None = None,
    player: Callable[[str, int, Script], Awaitable[list[Sent]]] = play,
) -> Outcome:
    """Start a worker, play `build(t0)` (the script and the cutoff) from t0, read the alerts
    at the cutoff, and check them against replay of the exact bytes sent: the same alerts
    due by cutoff - MARGIN_US (by `key`), none repeated, none fired before it was due.
    `precondition(sent)` checks first that the messages went out as the comparison needs."""
    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
        t0 = now_us() + 300_000
        script, cutoff = build(t0)
        sent: list[Sent] = run(player(dep.bootstrap, t0, script))
        sleep_until(cutoff)
        live: list[Alert] = run(read_alerts(dep.bootstrap, dep, idle=0.5))
        assert w.proc is not None and w.proc.poll() is None, w.log_tail()
        log = w.log_tail()
    if precondition is not None:
        precondition(sent)
    expected = expected_alerts(dep, sent, cutoff)
    compared_until = cutoff - MARGIN_US
    live_cmp = [a for a in live if due(a) <= compared_until]
    exp_cmp = [a for a in expected if due(a) <= compared_until]
    repeated = [k for k, n in Counter(a["alert_id"] for a in live).items() if n > 1]
    assert not repeated, f"repeated alerts: {repeated}{context}\n{describe(live, t0)}"
    assert all(fired(a) >= due(a) for a in live), f"{context}\n{describe(live, t0)}"
    assert sorted(map(key, live_cmp)) == sorted(map(key, exp_cmp)), (
        f"live and replay disagree{context}\nlive:\n{describe(live_cmp, t0)}\n"
        f"replay:\n{describe(exp_cmp, t0)}\n{log}"
    )
    return Outcome(t0, cutoff, sent, live_cmp, exp_cmp)


# --- 1. a backfill burst (issue 21, examples 1 and 2) -------------------------------------------

HOURS_POLICY = """
# The built-in support-plus windows (24x7, in hours), with a pause status.
[plans.support-plus]
warn_fraction = 0.75
pause_statuses = ["pending"]
[plans.support-plus.priorities.1]
time_to_open = "1h"
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"
[plans.support-plus.priorities.2]
time_to_open = "4h"
acknowledge = "4h"
update_every = "48h"
elevate = "8h"
[plans.support-plus.priorities.3]
time_to_open = "8h"
acknowledge = "8h"
update_every = "120h"
elevate = "never"
"""
BURST_S = 2.0
RESUME_S = 6.0
BURST_CUTOFF_S = 9.0


def ago(d_us: int) -> Callable[[int], str]:
    """An occurred_at `d_us` before the instant the message is sent."""
    return lambda t: iso(t - d_us)


def build_burst_script(dep: Deployment) -> Script:
    """Timeline (seconds after t0; "ago" is before the message is sent):

    X  P3 opened at 0 (moves replay's clock to the present)       nothing
    A  burst at 2: P1 opened 2 h ago, acked 1 h 40 min ago, resolved 1 h 20 min ago
                                                                  nothing
    B  burst at 2: P3 opened 10 h ago, never acknowledged         ack breach (catch-up) due
                                                                  8 h after the opening
    C  burst at 2: P1 opened 2 h ago, pending 30 min ago; open at 6 (live)
                                                                  at 6: elevation due at the
                                                                  opening, ack breach
                                                                  (catch-up) due 1 h after it
    D  burst at 2, topics shuffled: the ack note (1 h 50 min ago), P2 opened 2 h ago, an
       ETA set 1 h 45 min ago for 3 h from now                    nothing
    """
    s = Script(dep)
    s.event(0.0, "case-opened", "X", priority=3)
    s.event(BURST_S, "case-opened", "A", priority=1, occurred_at=ago(2 * HOUR))
    s.event(BURST_S, "case-noted", "A", occurred_at=ago(100 * MINUTE), **SUPPORT)
    s.event(BURST_S, "case-resolved", "A", occurred_at=ago(80 * MINUTE))
    s.event(BURST_S, "case-opened", "B", priority=3, label="B-open", occurred_at=ago(10 * HOUR))
    s.event(BURST_S, "case-opened", "C", priority=1, label="C-open", occurred_at=ago(2 * HOUR))
    s.event(BURST_S, "status-changed", "C", status="pending", occurred_at=ago(30 * MINUTE))
    s.event(BURST_S, "case-noted", "D", occurred_at=ago(110 * MINUTE), **SUPPORT)
    s.event(BURST_S, "case-opened", "D", priority=2, occurred_at=ago(2 * HOUR))
    s.event(
        BURST_S,
        "eta-set",
        "D",
        occurred_at=ago(105 * MINUTE),
        eta=lambda t: iso(t + 3 * HOUR),
    )
    s.event(RESUME_S, "status-changed", "C", status="open", label="C-resume")
    return s


def test_a_backfill_burst_live_matches_replay(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, policy=HOURS_POLICY)
    script = build_burst_script(dep)
    out = play_and_compare(dep, lambda t0: (script, t0 + round(BURST_CUTOFF_S * US)))

    # The scenario exercised what it claims to, on both sides.
    by = {x.label: x for x in out.sent if x.label}
    b_open, c_open = occurred(by["B-open"]), occurred(by["C-open"])
    resumed = by["C-resume"].at_us
    for side, alerts in (("replay", out.replay), ("live", out.live)):
        msg = f"{side}:\n{describe(alerts, out.t0)}"

        def of(case: str, alerts: list[Alert] = alerts) -> list[tuple[Any, ...]]:
            return sorted(
                (a["type"], a["stage"], a["reason"], due(a), bool(a["catch_up"]))
                for a in alerts
                if a["case_id"] == case
            )

        # A: opened, acknowledged and resolved long ago: its own later facts answered it.
        assert of("A") == [], msg
        # B: warning and breach both past on arrival: only the breach, as a catch-up.
        assert of("B") == [("ack-due", "breach", "no-acknowledgement", b_open + 8 * HOUR, True)], (
            msg
        )
        # C: everything held while pending (also what fell due before the pause), then out
        # at the resume: the elevation due at the opening and one catch-up ack breach.
        assert of("C") == [
            ("ack-due", "breach", "no-acknowledgement", c_open + HOUR, True),
            ("elevate-to-l2", "action", "priority-1", c_open, False),
        ], msg
        assert all(fired(a) >= resumed for a in alerts if a["case_id"] == "C"), msg
        assert of("D") == [], msg
        assert of("X") == [], msg


# --- 2. random histories in business hours, across DST changes, sent as late bursts ------------

CALENDAR_POLICY = """
default_plan = "emea"

# Business hours in four zones. The Sunday-night standby hours of Berlin, New York and Sydney
# span their DST changes (a missing or a repeated local hour), and the holidays lie inside
# the histories, so the windows count across both.
[calendars.berlin]
timezone = "Europe/Berlin"
holidays = ["2026-03-30", "2026-04-03", "2026-04-06"]
[calendars.berlin.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-13:00,14:00-17:00"
sun = "00:00-06:00"

[calendars.new-york]
timezone = "America/New_York"
holidays = ["2026-03-09", "2026-11-03"]
[calendars.new-york.hours]
mon = "08:00-18:00"
tue = "08:00-18:00"
wed = "08:00-18:00"
thu = "08:00-18:00"
fri = "08:00-18:00"
sun = "00:30-04:00"

[calendars.sydney]
timezone = "Australia/Sydney"
holidays = ["2026-04-03", "2026-04-06", "2026-10-05"]
[calendars.sydney.hours]
mon = "08:30-17:30"
tue = "08:30-17:30"
wed = "08:30-17:30"
thu = "08:30-17:30"
fri = "08:30-17:30"
sat = "10:00-14:00"
sun = "01:00-04:00"

[calendars.kolkata]
timezone = "Asia/Kolkata"
holidays = ["2026-03-04", "2026-10-02"]
[calendars.kolkata.hours]
mon = "10:00-19:00"
tue = "10:00-19:00"
wed = "10:00-19:00"
thu = "10:00-19:00"
fri = "10:00-19:00"
sat = "10:00-14:00"

[plans.emea]
calendar = "berlin"
warn_fraction = 0.75
pause_statuses = ["pending", "on-hold"]
[plans.emea.priorities.1]
calendar = "24x7"
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"
[plans.emea.priorities.2]
acknowledge = "4h"
update_every = "8h"
elevate = "6h"
[plans.emea.priorities.3]
acknowledge = "8h"
update_every = "16h"
elevate = "never"

[plans.amer]
calendar = "new-york"
warn_fraction = 0.5
pause_statuses = ["pending"]
[plans.amer.priorities.1]
acknowledge = "2h"
update_every = "4h"
elevate = "immediately"
[plans.amer.priorities.2]
acknowledge = "3h"
update_every = "6h"
elevate = "5h"
[plans.amer.priorities.3]
acknowledge = "6h"
update_every = "12h"
elevate = "never"

[plans.apac]
calendar = "sydney"
warn_fraction = 0.75
pause_statuses = ["pending", "on-hold"]
[plans.apac.priorities.1]
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"
[plans.apac.priorities.2]
acknowledge = "2h"
update_every = "6h"
elevate = "4h"
[plans.apac.priorities.3]
acknowledge = "8h"
update_every = "16h"
elevate = "never"

[plans.india]
calendar = "kolkata"
warn_fraction = 0.5
pause_statuses = ["pending"]
[plans.india.priorities.1]
calendar = "24x7"
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"
[plans.india.priorities.2]
acknowledge = "4h"
update_every = "8h"
elevate = "8h"
[plans.india.priorities.3]
acknowledge = "8h"
update_every = "16h"
elevate = "never"
"""


def _utc(y: int, mo: int, d: int, h: int) -> int:
    return round(datetime(y, mo, d, h, tzinfo=UTC).timestamp() * US)


ANCHORS: dict[str, list[int]] = {
    # The instants histories are dated around, per plan: the zone's DST changes (UTC), and
    # Kolkata's holidays (it has no DST).
    "emea": [_utc(2026, 3, 29, 1)],
    "amer": [_utc(2026, 3, 8, 7), _utc(2026, 11, 1, 6)],
    "apac": [_utc(2026, 4, 4, 16), _utc(2026, 10, 3, 16)],
    "india": [_utc(2026, 3, 4, 6), _utc(2026, 10, 2, 6)],
}
KINDS = (
    "warned-then-paused",  # no ack, paused between the ack warning and breach; resumed live
    "held-past-breach",  # no ack, paused after the ack breach (issue 21 ex. 2); resumed live
    "eta-passes-paused",  # an ETA that passed while the case is paused: eta-passed
    "silent",  # never acknowledged: ack breach (catch-up), elevation
    "acked-then-silent",  # acknowledged, then never updated: update breach (catch-up)
    "answered",  # acknowledged and resolved (issue 21 ex. 1): nothing
    "raised",  # a P3 raised to P1 (in the history or live): elevation priority-1
    "cycles",  # resolved and reopened, paused and resumed
    "random",  # any facts in any order
)
FIRST_BURST_S = (0.4, 2.4)
"""Offsets (s after t0) of a case's first burst; a second one comes at least GAP_S later,
by LAST_BURST_S."""
LAST_BURST_S = 4.0
GAP_S = 1.6
"""Between a case's bursts and live events: more than the skew plus the worker's latency, so
a case's burst is evaluated before its next facts arrive, as replay evaluates it (on the
next later event) and the MARGIN rule of the model test."""
GRID_S = 0.2
CUTOFF_AFTER_S = 3.0
"""The cutoff comes this long after the last live event: alerts due at it (an elevation at
a raise, points held by a pause) are compared."""
N_CASES = 20
TIMER_BURST_S = 1.0
DEFAULT_SEED = 20261208


@dataclass
class Fact:
    type: str
    at: int | None
    """occurred_at (microseconds, whole minutes), or None for a live fact (sent now)."""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class History:
    case_id: str
    kind: str
    plan: str
    bursts: list[list[Fact]]
    live: list[Fact]
    burst_at: list[float] = field(default_factory=list)
    live_at: list[float] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"{self.case_id} ({self.kind}, {self.plan}):"]
        for at, burst in zip(self.burst_at, self.bursts, strict=True):
            lines.append(f"  burst at {at:.1f} s (planned):")
            lines.extend(f"    {_show(f)}" for f in burst)
        for at, f in zip(self.live_at, self.live, strict=True):
            lines.append(f"  live at {at:.1f} s (planned): {_show(f)}")
        return "\n".join(lines)


def _show(f: Fact) -> str:
    when = "now" if f.at is None else iso(f.at)
    fields = {k: (iso(v) if k == "eta" else v) for k, v in f.fields.items()}
    return f"{when} {f.type} {fields}"


class HistoryGen:
    """Random case histories of one policy, dated in the past around the plans' ANCHORS.

    Every historic instant (occurred_at, ETA) is a whole minute, and so is every boundary of
    the calendars, their zones' UTC offsets and every window: whatever a history's deadlines
    are, in the past or now, they fall on whole minutes (or, after a live fact, on its own
    instant or at least a minute later). The test keeps its sends away from whole minutes
    (`avoid_whole_minutes`), so no deadline falls between a burst's arrival and its
    evaluation, nor close to a live fact: which of the fact and the deadline comes first
    never depends on latency."""

    def __init__(self, rng: random.Random, policy: Policy) -> None:
        self.rng = rng
        self.policy = policy

    def minutes(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi) * MINUTE

    def ack_points(self, plan: str, prio: int, opened: int) -> tuple[int, int]:
        """(warning, breach) of the acknowledge window of a case opened at `opened`."""
        p = self.policy.plans[plan]
        rule = p.priorities[prio]
        assert p.warn_fraction is not None
        warn = rule.calendar.add(opened, round(p.warn_fraction * rule.acknowledge))
        return warn, rule.calendar.add(opened, rule.acknowledge)

    def history(self, case_id: str, kind: str, plan: str) -> History:
        rng = self.rng
        start = rng.choice(ANCHORS[plan]) + self.minutes(-72 * 60, 36 * 60)
        prio = rng.choice([1, 2, 3])
        facts: list[Fact] = []
        live: list[Fact] = []

        def opened(at: int, priority: int) -> None:
            fields = {"priority": priority, "plan": plan, "customer_id": f"cust-{plan}"}
            facts.append(Fact("case-opened", at, fields))

        def add(type_: str, at: int, **fields: Any) -> None:
            facts.append(Fact(type_, at, fields))

        pause = rng.choice(["pending", "on-hold"]) if plan in ("emea", "apac") else "pending"
        # Histories whose outcome the test asserts keep it whatever the split into bursts:
        # a split that leaves the case-opened to the last burst changes nothing.
        opening_last = kind in (
            "warned-then-paused",
            "held-past-breach",
            "eta-passes-paused",
            "answered",
        )
        if kind == "warned-then-paused":
            prio = 2  # (a P1 held this way: "held-past-breach")
            opened(start, prio)
            warn, breach = self.ack_points(plan, prio, start)
            if rng.random() < 0.5:
                add("case-noted", warn, author="customer", visibility="public")
            add(
                "status-changed",
                warn + self.minutes(1, (breach - warn) // MINUTE - 1),
                status=pause,
            )
            live.append(Fact("status-changed", None, {"status": "open"}))
        elif kind == "held-past-breach":
            prio = rng.choice([1, 2])
            opened(start, prio)
            _, breach = self.ack_points(plan, prio, start)
            add("status-changed", breach + self.minutes(1, 48 * 60), status=pause)
            live.append(Fact("status-changed", None, {"status": "open"}))
        elif kind == "eta-passes-paused":
            opened(start, prio)
            note = start + self.minutes(5, 50)
            add("case-noted", note, **SUPPORT)
            eta_set = note + self.minutes(10, 300)
            eta = eta_set + self.minutes(120, 1800)
            add("eta-set", eta_set, eta=eta)
            add(
                "status-changed",
                eta_set + self.minutes(1, (eta - eta_set) // MINUTE - 1),
                status=pause,
            )
        elif kind == "silent":
            prio = 2  # timed elevation too; silent P1 and P3 come from "random"
            opened(start, prio)
            for _ in range(rng.randint(0, 2)):
                who = rng.choice([("customer", "public"), ("support", "internal")])
                add("case-noted", start + self.minutes(1, 3000), author=who[0], visibility=who[1])
        elif kind == "acked-then-silent":
            opened(start, prio)
            add("case-noted", start + self.minutes(1, 600), **SUPPORT)
            if rng.random() < 0.5:
                add(
                    "case-noted",
                    start + self.minutes(600, 3000),
                    author="customer",
                    visibility="public",
                )
        elif kind == "answered":
            opened(start, prio)
            note = start + self.minutes(5, 50)
            add("case-noted", note, **SUPPORT)
            if rng.random() < 0.5:
                add("eta-set", note + self.minutes(5, 60), eta=note + self.minutes(120, 600))
            add("case-resolved", note + self.minutes(61, 180), resolution="fixed")
        elif kind == "raised":
            prio = 3
            opened(start, prio)
            add("case-noted", start + self.minutes(5, 200), **SUPPORT)
            if rng.random() < 0.5:
                add("priority-changed", start + self.minutes(201, 3000), priority=1)
            else:
                live.append(Fact("priority-changed", None, {"priority": 1}))
        elif kind == "cycles":
            opened(start, prio)
            t = start + self.minutes(5, 300)
            add("case-noted", t, **SUPPORT)
            for _ in range(rng.randint(1, 3)):
                t += self.minutes(30, 1500)
                stop, resume = rng.choice(
                    [("case-resolved", "case-reopened"), ("status-changed", "status-changed")]
                )
                if stop == "status-changed":
                    add(stop, t, status=pause)
                    t += self.minutes(30, 1500)
                    add(resume, t, status="open")
                else:
                    add(stop, t)
                    t += self.minutes(30, 1500)
                    add(resume, t)
                if rng.random() < 0.4:
                    t += self.minutes(10, 600)
                    add("case-noted", t, **SUPPORT)
        else:  # random
            opened(start, prio)
            t = start
            for _ in range(rng.randint(2, 8)):
                t += self.minutes(5, 1800)
                self.random_fact(add, t, pause)
            if rng.random() < 0.3:  # a fact dated before the opening
                self.random_fact(add, start - self.minutes(1, 300), pause)

        if kind not in ("warned-then-paused", "held-past-breach") and rng.random() < 0.4:
            live.extend(self.live_facts())
        bursts = self.split(facts, opening_last)
        for b in bursts:
            if rng.random() < 0.5:  # the facts of a burst on their topics in any order
                rng.shuffle(b)
        return History(case_id, kind, plan, bursts, live)

    def random_fact(self, add: Callable[..., None], t: int, pause: str) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.25:
            add("case-noted", t, workaround=rng.random() < 0.2, **SUPPORT)
        elif r < 0.35:
            who = rng.choice(
                [("customer", "public"), ("support", "internal"), ("system", "public")]
            )
            add("case-noted", t, author=who[0], visibility=who[1])
        elif r < 0.5:
            add("eta-set", t, eta=t + self.minutes(-60, 2880))
        elif r < 0.7:
            add("status-changed", t, status=rng.choice([pause, "open", "in-progress", "pending"]))
        elif r < 0.8:
            add("case-resolved", t)
        elif r < 0.9:
            add("case-reopened", t)
        else:
            add("priority-changed", t, priority=rng.choice([1, 2, 3]))

    def live_facts(self) -> list[Fact]:
        """One or two facts sent live (occurred now), at most one of which starts or ends a
        stop (status, resolve, reopen): a live stop's length would move the case's later
        deadlines off whole minutes."""
        rng = self.rng
        stops = [
            Fact("status-changed", None, {"status": "open"}),
            Fact("status-changed", None, {"status": "pending"}),
            Fact("case-resolved", None, {}),
            Fact("case-reopened", None, {}),
        ]
        others = [
            Fact("case-noted", None, dict(SUPPORT)),
            Fact("case-noted", None, {"author": "customer", "visibility": "public"}),
            Fact("priority-changed", None, {"priority": rng.choice([1, 2, 3])}),
        ]
        n = rng.randint(1, 2)
        picked = [rng.choice(stops)] if rng.random() < 0.6 else []
        while len(picked) < n:
            picked.append(rng.choice(others))
        rng.shuffle(picked)
        return picked

    def split(self, facts: list[Fact], opening_last: bool) -> list[list[Fact]]:
        """One burst, or two: a prefix of the history (by occurred_at) and the rest, or with
        `opening_last` any facts first and the case-opened with the others after."""
        rng = self.rng
        if len(facts) < 2 or rng.random() < 0.55:
            return [list(facts)]
        if opening_last:
            rest = [f for f in facts if f.type != "case-opened"]
            first = rng.sample(rest, rng.randint(1, len(rest)))
            return [first, [f for f in facts if not any(f is g for g in first)]]
        ordered = sorted(facts, key=lambda f: f.at or 0)
        i = rng.randint(1, len(ordered) - 1)
        return [ordered[:i], ordered[i:]]

    def schedule(self, h: History) -> None:
        """Offsets of the case's bursts and live facts (s after t0, on a GRID_S grid)."""
        rng = self.rng

        def grid(lo: float, hi: float) -> float:
            steps = max(0, int((hi - lo) / GRID_S + 1e-9))
            return round(lo + GRID_S * rng.randint(0, steps), 3)

        first = grid(*FIRST_BURST_S)
        h.burst_at = [first]
        if len(h.bursts) > 1:
            h.burst_at.append(grid(first + GAP_S, max(first + GAP_S, LAST_BURST_S)))
        at = h.burst_at[-1]
        for _ in h.live:
            at = grid(at + GAP_S, at + GAP_S + 2.0)
            h.live_at.append(at)


def generate(seed: int, policy: Policy) -> list[History]:
    """N_CASES histories: one of each kind first (so every run has them), the rest random,
    over the four plans in turn."""
    rng = random.Random(seed)
    gen = HistoryGen(rng, policy)
    plans = list(ANCHORS)
    kinds = [
        *KINDS,
        *(rng.choice([*KINDS, "random", "random"]) for _ in range(N_CASES - len(KINDS))),
    ]
    out = []
    for i, kind in enumerate(kinds):
        h = gen.history(f"H{i:02d}", kind, plans[i % len(plans)])
        gen.schedule(h)
        out.append(h)
    return out


def avoid_whole_minutes(
    t0: int, offsets: Sequence[float], guard_s: float
) -> Callable[[float], float]:
    """A monotone shift of offsets (s after t0) that keeps every send at least `guard_s` from
    a whole minute: the first one whose instant lies within it and every later one move
    past it by 2 x `guard_s`. (The schedule spans less than a minute: one mark at most.)"""
    latest = max(offsets)
    mark = -(-(t0 - round(guard_s * US)) // MINUTE) * MINUTE  # first whole minute near t0
    start = (mark - t0) / US - guard_s
    if start > latest:  # no send near it
        return lambda off: off

    def shift(off: float) -> float:
        return round(off + 2 * guard_s, 3) if off >= start else off

    return shift


def build_history_script(dep: Deployment, hs: list[History], t0: int) -> tuple[Script, float]:
    """The histories as a script from t0, and its last offset.

    Before each burst, a customer note on the case CLOCK (opened at t0; it changes nothing)
    occurred now: replay's clock stands at the latest event it was fed, so without it a
    burst would arrive, in replay, at the instant of whatever was sent before it (up to
    seconds earlier), where the live worker judges it on arrival, and a deadline in between
    would be a warning in one and part of a catch-up in the other."""
    offsets = [a for h in hs for a in (*h.burst_at, *h.live_at)]
    shift = avoid_whole_minutes(t0, offsets, GAP_S)
    timer_burst = shift(TIMER_BURST_S)
    # (offset, order at that offset, case, type, fields, label): ticks first, then bursts,
    # then live facts (labelled case-live0, case-live1); a stable sort keeps each burst
    # together and in its order.
    steps: list[tuple[float, int, str, str, dict[str, Any], str]] = []
    for at in sorted({*(shift(a) for h in hs for a in h.burst_at), timer_burst}):
        tick = {"author": "customer", "visibility": "public"}
        steps.append((at, 0, "CLOCK", "case-noted", tick, ""))
    # TIMER: a P1 on 24x7 time acknowledged long ago, loaded by a backfill 4 s before its
    # update warning falls due (at microseconds, not a whole minute): the backfill catches
    # up the last breach, then the timer fires the warning on time, live as in replay.
    warn_at = t0 + round((timer_burst + 4.0) * US)
    acked = warn_at - 3 * HOUR - 1500 * 4 * HOUR
    timer: list[tuple[str, dict[str, Any]]] = [
        ("case-opened", {"priority": 1, "plan": "emea", "occurred_at": iso(acked - 20 * MINUTE)}),
        ("case-noted", {**SUPPORT, "occurred_at": iso(acked)}),
    ]
    for type_, fields in timer:
        steps.append((timer_burst, 1, "TIMER", type_, fields, f"TIMER-{type_}"))
    for h in hs:
        for order, at, f, label in [
            *((1, at, f, "") for at, b in zip(h.burst_at, h.bursts, strict=True) for f in b),
            *(
                (2, at, f, f"{h.case_id}-live{j}")
                for j, (at, f) in enumerate(zip(h.live_at, h.live, strict=True))
            ),
        ]:
            fields = dict(f.fields)
            if "eta" in fields:
                fields["eta"] = iso(fields["eta"])
            if f.at is not None:
                fields["occurred_at"] = iso(f.at)
            steps.append((shift(at), order, h.case_id, f.type, fields, label))
    s = Script(dep)
    s.event(0.0, "case-opened", "CLOCK", priority=3, plan="emea")
    for at, _, case_id, type_, fields, label in sorted(steps, key=lambda x: (x[0], x[1])):
        s.event(at, type_, case_id, label=label, **fields)
    return s, max(*(x[0] for x in steps), timer_burst + 4.0)


async def play_together(bootstrap: str, t0_us: int, script: Script) -> list[Sent]:
    """`scripts.play`, but the messages of one offset go out together (all handed to the
    producer, then their acknowledgements awaited), so a burst of a dozen facts reaches the
    broker within one round trip rather than a dozen: well inside the worker's skew on a
    loaded machine too. Sent in script order, which is the order replay is fed."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    sent: list[Sent] = []
    longest = 0
    try:
        steps = sorted(script.steps, key=lambda s: s.offset_s)
        for offset_s, group in groupby(steps, key=lambda s: s.offset_s):
            delay = (t0_us + round(offset_s * US) - now_us()) / US
            if delay > 0:
                await asyncio.sleep(delay)
            at = now_us()
            pending = []
            for step in group:
                assert step.doc is not None, "events only"
                doc = {k: (v(at) if callable(v) else v) for k, v in step.doc.items()}
                doc.setdefault("occurred_at", iso(at))
                value = orjson.dumps(doc)
                pending.append((step, value, await p.send(step.topic, value, key=step.key)))
            for step, value, ack in pending:
                md = await ack
                sent.append(
                    Sent(md.topic, md.partition, md.offset, step.key, value, at, step.label)
                )
            longest = max(longest, now_us() - at)
    finally:
        await p.stop()
    print(f"\nlongest send of the messages of one instant: {longest / US:.3f} s")
    return sent


def check_timing(hs: list[History], sent: list[Sent], context: str) -> None:
    """The timing the comparison relies on held (a test precondition, not the property under
    test): each case's bursts (each sent at once, `play_together`) and live facts went out
    at least a skew and the worker's latency apart, and none close to a whole minute (where
    its history's deadlines may fall)."""
    by_case: dict[bytes, list[int]] = {}
    for s in sent:
        if s.key is not None:
            by_case.setdefault(s.key, []).append(s.at_us)
    problems = []
    least_gap = float("inf")
    for h in hs:
        times = sorted(set(by_case[h.case_id.encode()]))
        gaps = [(b - a) / US for a, b in pairwise(times)]
        least_gap = min(least_gap, *gaps, least_gap)
        if len(times) != len(h.bursts) + len(h.live) or min(gaps, default=9) < 1.2:
            problems.append(f"{h.case_id}: sent at {[(t - times[0]) / US for t in times]}")
        if [t for t in times if min(t % MINUTE, MINUTE - t % MINUTE) < 1_200_000]:
            problems.append(f"{h.case_id}: sent within 1.2 s of a whole minute")
    print(f"\ntiming: shortest gap between the sends of a case {least_gap:.3f} s")
    assert not problems, f"the sends did not keep the planned timing{context}: {problems}"


def test_random_calendar_histories_live_match_replay(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    """N_CASES random histories (`generate`: seeded, CASECLOCK_TEST_SEED to change it) on
    business hours in four zones, dated around DST changes and holidays, with pauses,
    resolutions and reopenings, each sent as one or two late bursts within 4 s of the start
    (facts before their case-opened, topics in any order), some cases then getting a live
    fact or two; plus TIMER, a backfill whose next point then falls due on the live timer.
    Live must match replay, and the histories must have produced every kind of alert,
    catch-ups, and what each kind of history is there for."""
    seed = int(os.environ.get("CASECLOCK_TEST_SEED", DEFAULT_SEED))
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, policy=CALENDAR_POLICY)
    hs = generate(seed, policy_from_toml(CALENDAR_POLICY))
    context = f" (seed {seed}: CASECLOCK_TEST_SEED={seed} to run it again)"

    def build(t0: int) -> tuple[Script, int]:
        script, last = build_history_script(dep, hs, t0)
        return script, t0 + round((last + CUTOFF_AFTER_S) * US)

    def histories() -> str:
        return "\n".join(h.describe() for h in hs)

    try:
        out = play_and_compare(
            dep, build, context, lambda sent: check_timing(hs, sent, context), play_together
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\nhistories{context}:\n{histories()}") from None
    check_histories(hs, out.sent, out.replay, out.t0, context)
    print(
        f"\nseed {seed}: {len(out.replay)} alerts compared, "
        f"{sum(bool(a['catch_up']) for a in out.replay)} catch-ups, "
        f"{len(out.sent)} messages sent"
    )


def check_histories(
    hs: list[History], sent: list[Sent], exp: list[Alert], t0: int, context: str
) -> None:
    """The histories produced what they are there for (on replay's side; live agrees), so
    the comparison is not vacuous."""
    msg = f"{context}\n{describe(exp, t0)}\n" + "\n".join(h.describe() for h in hs)
    kinds = {(a["type"], a["stage"], a["reason"]) for a in exp}
    for k in [
        ("ack-due", "warning", "no-acknowledgement"),
        ("ack-due", "breach", "no-acknowledgement"),
        ("update-due", "breach", "interval"),
        ("update-due", "breach", "eta-passed"),
        ("elevate-to-l2", "action", "priority-1"),
        ("elevate-to-l2", "action", "no-eta-or-workaround"),
    ]:
        assert k in kinds, f"no {k}{msg}"
    assert len(exp) >= 15, f"only {len(exp)} alerts{msg}"
    assert any(a["catch_up"] for a in exp), f"no catch-up{msg}"
    assert {"berlin", "new-york", "sydney", "kolkata"} <= {a["calendar"] for a in exp}, msg

    def of(h: History) -> list[Alert]:
        return [a for a in exp if a["case_id"] == h.case_id]

    by_label = {x.label: x for x in sent if x.label}
    opened, acked = occurred(by_label["TIMER-case-opened"]), occurred(by_label["TIMER-case-noted"])
    warn_at = acked + 1500 * 4 * HOUR + 3 * HOUR
    assert sorted(
        (a["type"], a["stage"], a["reason"], due(a), bool(a["catch_up"]))
        for a in exp
        if a["case_id"] == "TIMER"
    ) == [
        ("elevate-to-l2", "action", "priority-1", opened, False),
        ("update-due", "breach", "interval", warn_at - 3 * HOUR, True),
        ("update-due", "warning", "interval", warn_at, False),
    ], msg

    live_at = {label: x.at_us for label, x in by_label.items()}
    for h in hs:
        got = sorted((a["type"], a["stage"], a["reason"], bool(a["catch_up"])) for a in of(h))
        where = f"{h.case_id}: {got}{msg}"
        if h.kind == "warned-then-paused":  # the warning alone, when the pause ends
            assert ("ack-due", "warning", "no-acknowledgement", False) in got, where
            assert not [k for k in got if k[:2] == ("ack-due", "breach")], where
        if h.kind in ("warned-then-paused", "held-past-breach"):  # nothing while paused
            resumed = live_at[f"{h.case_id}-live0"]  # status open
            assert all(fired(a) >= resumed for a in of(h)), where
        if h.kind == "held-past-breach":
            assert ("ack-due", "breach", "no-acknowledgement", True) in got, where
        if h.kind == "eta-passes-paused":
            assert ("update-due", "breach", "eta-passed", False) in got, where
        if h.kind == "answered" and len(h.bursts) == 1 and not h.live:
            assert got == [], where


# --- 3. long histories, and a late pause at an emitted deadline (issue 21, examples 3, 4) --------

LATE_PAUSE_POLICY = (
    HOURS_POLICY
    + """
# Windows of seconds, for the late pauses: P1 on a calendar open around the clock (a holiday
# far away keeps it off the 24x7 fast path, so the worker runs the calendar arithmetic), P2
# the same windows on 24x7.
[calendars.round-the-clock]
timezone = "Europe/Berlin"
holidays = ["2099-01-01"]
[calendars.round-the-clock.hours]
mon = "00:00-24:00"
tue = "00:00-24:00"
wed = "00:00-24:00"
thu = "00:00-24:00"
fri = "00:00-24:00"
sat = "00:00-24:00"
sun = "00:00-24:00"

[plans.fast]
warn_fraction = 0.5
calendar = "round-the-clock"
pause_statuses = ["pending"]
[plans.fast.priorities.1]
acknowledge = "8s"
update_every = "12s"
elevate = "immediately"
[plans.fast.priorities.2]
calendar = "24x7"
acknowledge = "8s"
update_every = "12s"
elevate = "immediately"
"""
)
LONG_BURST_S = 2.0
DUE_AGO = 5 * MINUTE
"""The long histories are dated so that their extended deadline falls this long before the
burst that brings them: a catch-up on arrival, whose due_at the test checks exactly."""
PAUSES, PAUSE = 20, 30 * MINUTE
CYCLES, RESOLVED = 10, HOUR
CYCLES_ACK_S = LONG_BURST_S + 2.0
P3_ACK, P3_UPDATE = 8 * HOUR, 120 * HOUR
"""HOURS_POLICY's P3 windows."""
FAST_OPEN_S = 0.3
FAST_ACK_S = 1.3
FAST_WINDOW = 12 * US
"""plans.fast's update window: warning at 6 s, breach at 12 s after the acknowledgement."""
D_S = FAST_ACK_S + FAST_WINDOW / US
"""D: the first update breach of the fast cases (t0 + 13.3 s)."""
LATE_AT = {"AT": 2.0, "BEFORE": 4.0}
"""When (s after D) the late pause of each twin is sent, with a note on CLOCK."""
PAUSE_FROM = {"AT": 0, "BEFORE": -US}
"""Where (after D) each twin's late pause begins; both end at D + 1 s."""
LATE_CUTOFF_S = D_S + 10.0
SKEW = 250_000
"""CASECLOCK_INPUT_SKEW (the default, 0.25 s): a deadline already past when a fact is
applied is evaluated that long after it."""
LATE_GUARD = 1_200_000
"""A late pause is sent at least this long after D and before the next deadline it could move
(the twins' update warning at D + 6 s): the precondition `check_late_timing` checks."""
FAST_CASES = {"AT": 1, "BEFORE": 1, "AT-24x7": 2, "BEFORE-24x7": 2}
"""The late-pause cases and their priorities in plans.fast."""


def twin(case: str) -> str:
    return case.removesuffix("-24x7")


def build_long_and_late_script(dep: Deployment, t0: int) -> Script:
    """Timeline (seconds after t0; D = 13.3; "ago" is before the burst is sent):

    CLOCK   P3 opened at 0; a customer note before each burst and late pause (nothing)
    PAUSES  burst at 2: P3 acknowledged 130 h 5 min ago, then 20 pauses of 30 min (pending
            1 h after the acknowledgement, open 30 min later, every hour), opened 10 min
            before the acknowledgement          update breach (catch-up) due 120 h + 10 h
                                                after the acknowledgement: 5 min ago
    CYCLES  burst at 2: P3 opened 18 h 5 min ago, resolved 20 min later and reopened an hour
            after that, 10 times (every 80 min)  ack breach (catch-up) due 8 h + 10 h after
                                                the opening: 5 min ago
            acknowledged at 4 (live)            nothing more (updates owed 120 h later)
    AT      P1 opened at 0.3, acknowledged at 1.3 (occurred_at exactly t0 + 1.3 s)
                                                elevation 0.3; update w7.3 b13.3 (= D)
            at D + 2: pending occurred at D exactly, open at D + 1 s
                                                a second breach due D + 1, at once; w20.3
    BEFORE  the same, the late pause from D - 1 s to D + 1 s, sent at D + 4
                                                a second breach due D + 2, at once; w21.3
    AT-24x7, BEFORE-24x7  the same twins on P2: the same windows on 24x7

    In each burst a case's facts come first and its case-opened last: the worker evaluates a
    case only once it is opened, so the skew after its last fact covers facts on the other
    topics read a batch later, however many there are."""
    s = Script(dep)
    tick = {"author": "customer", "visibility": "public"}
    s.event(0.0, "case-opened", "CLOCK", priority=3)

    # Example 3: long histories, dated so that their extended deadlines are past at the burst.
    s.event(LONG_BURST_S, "case-noted", "CLOCK", **tick)
    acked = P3_UPDATE + PAUSES * PAUSE + DUE_AGO  # how long before the burst PAUSES was acked
    for i in range(PAUSES):
        pending = acked - HOUR - i * HOUR
        s.event(
            LONG_BURST_S, "status-changed", "PAUSES", status="pending", occurred_at=ago(pending)
        )
        s.event(
            LONG_BURST_S,
            "status-changed",
            "PAUSES",
            status="open",
            occurred_at=ago(pending - PAUSE),
        )
    s.event(LONG_BURST_S, "case-noted", "PAUSES", occurred_at=ago(acked), **SUPPORT)
    s.event(LONG_BURST_S, "case-opened", "PAUSES", priority=3, occurred_at=ago(acked + 10 * MINUTE))
    opened = P3_ACK + CYCLES * RESOLVED + DUE_AGO  # how long before the burst CYCLES opened
    for i in range(CYCLES):
        resolved = opened - 20 * MINUTE - i * (RESOLVED + 20 * MINUTE)
        s.event(LONG_BURST_S, "case-resolved", "CYCLES", occurred_at=ago(resolved))
        s.event(LONG_BURST_S, "case-reopened", "CYCLES", occurred_at=ago(resolved - RESOLVED))
    s.event(LONG_BURST_S, "case-opened", "CYCLES", priority=3, occurred_at=ago(opened))
    # Acknowledged live, once the burst was judged: a late acknowledgement in the burst itself
    # would answer the ack clock before it fires (section 4.1: a backfill is judged on its
    # whole history, and the acknowledge window ends at any acknowledgement), leaving no
    # deadline to check.
    s.event(CYCLES_ACK_S, "case-noted", "CYCLES", label="CYCLES-ack", **SUPPORT)

    # Example 4: acknowledged live; the first update breach fires live at D, then a pause
    # learned late that begins at (or 1 s before) D and ends at D + 1 s.
    ack = t0 + round(FAST_ACK_S * US)
    d = ack + FAST_WINDOW
    for case, priority in FAST_CASES.items():
        s.event(
            FAST_OPEN_S, "case-opened", case, priority=priority, plan="fast", label=f"{case}-open"
        )
        s.event(
            FAST_ACK_S, "case-noted", case, occurred_at=iso(ack), label=f"{case}-ack", **SUPPORT
        )
    for name, after_d in LATE_AT.items():
        at = round(D_S + after_d, 3)
        s.event(at, "case-noted", "CLOCK", **tick)
        for case in FAST_CASES:
            if twin(case) == name:
                begins = iso(d + PAUSE_FROM[name])
                s.event(
                    at,
                    "status-changed",
                    case,
                    status="pending",
                    occurred_at=begins,
                    label=f"{case}-pending",
                )
                s.event(
                    at,
                    "status-changed",
                    case,
                    status="open",
                    occurred_at=iso(d + US),
                    label=f"{case}-resume",
                )
    return s


def docs_of(sent: list[Sent], case: str) -> list[dict[str, Any]]:
    """The events sent for `case`, as sent."""
    return [orjson.loads(x.value) for x in sent if x.key == case.encode() and x.value is not None]


def stretches(docs: list[dict[str, Any]], stop: Callable[[dict[str, Any]], bool]) -> list[int]:
    """The lengths of the stretches a case's facts (alternately a stop and its end, as these
    histories are) spend stopped, in order."""
    facts = sorted((ts_us(d["occurred_at"]), stop(d)) for d in docs)
    assert [s for _, s in facts] == [True, False] * (len(facts) // 2), facts
    return [b - a for (a, _), (b, _) in zip(facts[::2], facts[1::2], strict=True)]


def outline(alerts: list[Alert], case: str) -> list[tuple[Any, ...]]:
    return sorted(
        (a["type"], a["stage"], a["reason"], due(a), bool(a["catch_up"]), a["calendar"])
        for a in alerts
        if a["case_id"] == case
    )


def check_late_timing(sent: list[Sent], t0: int) -> None:
    """The timing the comparison relies on held (a precondition): each twin's acknowledgement
    went out close to its occurred_at, and its late pause at least LATE_GUARD after D (the
    breach at D fired before the pause was known, live as in replay) and before the update
    warning at D + 6 s it would move."""
    by = {x.label: x for x in sent if x.label}
    d = t0 + round(FAST_ACK_S * US) + FAST_WINDOW
    problems = []
    for case in FAST_CASES:
        ack = by[f"{case}-ack"]
        if abs(ack.at_us - occurred(ack)) > LATE_GUARD:
            problems.append(
                f"{case}: acknowledgement sent {(ack.at_us - occurred(ack)) / US} s late"
            )
        late = by[f"{case}-pending"].at_us - d
        if not LATE_GUARD <= late <= FAST_WINDOW // 2 - LATE_GUARD:
            problems.append(f"{case}: late pause sent at D + {late / US} s")
    assert not problems, f"the sends did not keep the planned timing: {problems}"


def test_long_histories_and_a_late_pause_at_a_deadline_live_match_replay(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    """Issue 21, examples 3 and 4, on a real worker.

    3. Long histories are counted exactly: a case with 20 pauses in one update window and a
       case with 10 resolve/reopen cycles before its acknowledgement, sent as a backfill
       dated so that the deadline they extend is 5 minutes past at the burst. Both sides
       must emit the catch-up breach due exactly where every pause or resolved stretch
       extended its window by its length. (Before the fix the state kept the latest 32
       status and 16 resolve/reopen facts, so the oldest 4 pauses and 2 cycles were
       forgotten and both breaches came 2 h early.)
    4. A pause learned late that begins exactly at an emitted update deadline D moves that
       point to the pause's end: a new obligation (its id includes its deadline), owed at
       once, as for the twin whose late pause begins 1 s before D.

    Why example 4 is not racy: the breach at D fires live on the timer 2 s (4 s for BEFORE)
    before the late pause is sent, and replay fires it too before it applies the pause,
    since a note on CLOCK, occurred as sent, goes first in the same send and moves replay's
    clock to the present; both facts of the pause go in that one send (one topic, one
    partition, in order, well within the worker's skew), and the breach they create is
    already past due when they arrive, so it fires after the skew, live as in replay, and
    the next point they move (the warning at D + 6 s) is 2 s or more away. Example 3's
    deadlines are minutes in the past or days in the future."""
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, policy=LATE_PAUSE_POLICY)
    t0_of: list[int] = []

    def build(t0: int) -> tuple[Script, int]:
        t0_of.append(t0)
        return build_long_and_late_script(dep, t0), t0 + round(LATE_CUTOFF_S * US)

    out = play_and_compare(
        dep,
        build,
        precondition=lambda sent: check_late_timing(sent, t0_of[0]),
        player=play_together,
    )

    # The exact deadlines, computed here from the histories sent.
    burst = next(x.at_us for x in out.sent if x.key == b"PAUSES")
    pauses = docs_of(out.sent, "PAUSES")
    acked = next(ts_us(d["occurred_at"]) for d in pauses if d["type"] == "case-noted")
    paused = stretches(
        [d for d in pauses if d["type"] == "status-changed"], lambda d: d["status"] == "pending"
    )
    assert paused == [PAUSE] * PAUSES, paused
    assert all(ts_us(d["occurred_at"]) < acked + P3_UPDATE for d in pauses)  # in one window
    update_breach = acked + P3_UPDATE + sum(paused)  # each pause extends it by its length
    cycles = docs_of(out.sent, "CYCLES")
    opened = next(ts_us(d["occurred_at"]) for d in cycles if d["type"] == "case-opened")
    resolved = stretches(
        [d for d in cycles if d["type"] in ("case-resolved", "case-reopened")],
        lambda d: d["type"] == "case-resolved",
    )
    assert resolved == [RESOLVED] * CYCLES, resolved
    ack_breach = opened + P3_ACK + sum(resolved)  # each resolved stretch extends it
    assert update_breach == ack_breach == burst - DUE_AGO  # the plan: past at the burst

    by = {x.label: x for x in out.sent if x.label}
    d = occurred(by["AT-ack"]) + FAST_WINDOW  # integer microseconds, as the engine counts
    after = {
        a["case_id"]: (fired(a) - by[f"{a['case_id']}-pending"].at_us) / US
        for a in out.live
        if a["case_id"] in FAST_CASES and a["stage"] == "breach" and due(a) > d
    }
    print(f"\nlive: the moved breaches fired {after} s after their late pause was sent")
    for side, alerts in (("replay", out.replay), ("live", out.live)):
        msg = f"{side}:\n{describe(alerts, out.t0)}"
        assert all(fired(a) >= due(a) for a in alerts), msg
        assert outline(alerts, "PAUSES") == [
            ("update-due", "breach", "interval", update_breach, True, "24x7")
        ], msg
        assert outline(alerts, "CYCLES") == [
            ("ack-due", "breach", "no-acknowledgement", ack_breach, True, "24x7")
        ], msg
        # ... before its acknowledgement (sent 2 s after the burst) was known.
        assert all(fired(a) < by["CYCLES-ack"].at_us for a in alerts if a["case_id"] == "CYCLES"), (
            msg
        )
        assert outline(alerts, "CLOCK") == [], msg
        for case, priority in FAST_CASES.items():
            name = twin(case)
            cal = "round-the-clock" if priority == 1 else "24x7"
            late = by[f"{case}-pending"]
            assert occurred(late) == d + PAUSE_FROM[name], msg
            assert occurred(by[f"{case}-resume"]) == d + US, msg
            assert occurred(by[f"{case}-ack"]) + FAST_WINDOW == d, msg
            moved = d + (US - PAUSE_FROM[name])  # the window extended by the pause's length
            assert outline(alerts, case) == sorted(
                [
                    (
                        "elevate-to-l2",
                        "action",
                        f"priority-{priority}",
                        occurred(by[f"{case}-open"]),
                        False,
                        cal,
                    ),
                    ("update-due", "warning", "interval", d - FAST_WINDOW // 2, False, cal),
                    ("update-due", "breach", "interval", d, False, cal),
                    ("update-due", "breach", "interval", moved, False, cal),
                    ("update-due", "warning", "interval", moved + FAST_WINDOW // 2, False, cal),
                ]
            ), f"{case}: {msg}"
            breaches = {
                due(a): a for a in alerts if a["case_id"] == case and a["stage"] == "breach"
            }
            # The breach at D went out before the pause was known; the moved one is a new
            # obligation (another id), emitted once the pause was, already past due then.
            assert breaches[d]["alert_id"] != breaches[moved]["alert_id"], msg
            assert fired(breaches[d]) < late.at_us <= fired(breaches[moved]), msg
            assert moved < late.at_us, msg
            if side == "live":  # at once: after the skew, not at the case's next deadline
                at_once = fired(breaches[moved])
                assert late.at_us + SKEW <= at_once < d + FAST_WINDOW // 2, f"{case}: {msg}"
