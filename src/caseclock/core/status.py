"""A case's SLA status: every clock's state, deadline and time left, derived from its facts.

What a ticketing system shows on a ticket ("first response due in 35 minutes", "paused:
waiting on customer") and what attainment counts (an obligation fulfilled or breached). Like
every clock of the engine it is derived, never stored: the same facts, policy and instant give
the same status in the live worker and in replay (issue 22; docs/semantics.md, section 8).

The clocks, each in one of five states:

* ``running``: its window counts; ``deadline`` is when it falls due, ``left_us`` the counted
  time left (negative once overdue and not yet reported).
* ``paused``: the case is paused now (its latest status is a pause status); the window stands
  still, ``left_us`` is what will be left when it resumes.
* ``fulfilled``: met in time (``at``: the communication, the ETA or workaround, the opening).
* ``breached``: missed (``at``: the deadline that passed). For updates: a window was missed
  and no communication came since, so the customer is owed one now; ``deadline`` is then the
  next window's.
* ``stopped``: the case is resolved with the obligation open (``at``: the resolution).

Clocks: ``ack`` (from the opening), ``update`` (from the acknowledgement, while the case is
open), ``elevation`` (a timed elevation only: an immediate one is an action, reported by the
``elevated`` flag and its alert), ``time_to_open`` (when the opening says when the problem
was reported).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from caseclock.core.counted import NO_STOPS, Stops, add, elapsed
from caseclock.core.state import ACK_BREACHED, ELEVATED, ELEVATED_TIMED, CaseState
from caseclock.core.timeutil import format_instant

if TYPE_CHECKING:
    from caseclock.core.engine import Engine
    from caseclock.core.policy import Plan, PriorityRule

ClockName = Literal["ack", "update", "elevation", "time_to_open"]
ClockState = Literal["running", "paused", "fulfilled", "breached", "stopped"]
CLOCK_STATES: Final = ("running", "paused", "fulfilled", "breached", "stopped")


@dataclass(frozen=True, slots=True)
class ClockStatus:
    clock: ClockName
    state: ClockState
    target_us: int
    """The window's counted length (its calendar's open time)."""
    started_us: int
    """Where the window began: the opening, the update anchor, the reported instant."""
    deadline_us: int | None
    """When it falls (or fell) due; None while a pause that has not ended holds it."""
    warn_us: int | None = None
    """The warning instant of a running or paused window, when the plan warns."""
    at_us: int | None = None
    """When it was fulfilled, breached or stopped."""
    left_us: int | None = None
    """Counted time left before the deadline, as of the status's instant (open clocks)."""
    calendar: str = "24x7"
    elapsed_us: int = 0
    """Counted time from the start to `at` (closed clocks) or to the status's instant."""
    missed_started_us: int | None = None
    """A breached update clock: when the missed window began (`at` is its deadline; the
    current window began there)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": self.clock,
            "state": self.state,
            "deadline": _iso(self.deadline_us),
            "warning": _iso(self.warn_us),
            "at": _iso(self.at_us),
            "started": _iso(self.started_us),
            "target_seconds": self.target_us / 1e6,
            "left_seconds": None if self.left_us is None else self.left_us / 1e6,
            "elapsed_seconds": self.elapsed_us / 1e6,
            "calendar": self.calendar,
        }


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case_id: str
    plan: str
    priority: int
    calendar: str
    opened_us: int
    as_of_us: int
    paused: bool
    resolved: bool
    elevated: bool
    clocks: tuple[ClockStatus, ...]
    customer_id: str | None = None
    paused_since_us: int | None = None
    """When the pause in force began (paused cases)."""
    resumed_us: int | None = None
    """When the latest pause or resolved stretch that ended, ended."""

    def clock(self, name: ClockName) -> ClockStatus | None:
        return next((c for c in self.clocks if c.clock == name), None)

    @property
    def next_deadline_us(self) -> int | None:
        """The earliest deadline of a running clock: what an at-risk list sorts by."""
        dues = [c.deadline_us for c in self.clocks if c.state == "running" and c.deadline_us]
        return min(dues, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "plan": self.plan,
            "priority": self.priority,
            "calendar": self.calendar,
            "customer_id": self.customer_id,
            "opened_at": _iso(self.opened_us),
            "as_of": _iso(self.as_of_us),
            "paused": self.paused,
            "paused_since": _iso(self.paused_since_us),
            "resolved": self.resolved,
            "elevated": self.elevated,
            "clocks": [c.to_dict() for c in self.clocks],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


def _iso(us: int | None) -> str | None:
    return None if us is None else format_instant(us)


def case_status(engine: Engine, s: CaseState, now: int) -> CaseStatus | None:
    """The status of an opened case as of `now` (None for a case not yet opened, or whose
    plan or priority the policy no longer has)."""
    cur = engine.current(s)
    if cur is None or s.opened_at is None:
        return None
    plan, rule, _ = cur
    stops = engine.stops(s, plan) if s.statuses or s.resolutions else NO_STOPS
    resolved = s.resolved
    paused = not resolved and bool(stops) and stops[-1][1] is None
    end = s.resolved_at if resolved else None
    clocks = [_ack(s, plan, rule, stops, now, paused, end)]
    update = _update(engine, s, plan, rule, stops, now, paused, end)
    if update is not None:
        clocks.append(update)
    elevation = _elevation(s, rule, stops, now, paused, end)
    if elevation is not None:
        clocks.append(elevation)
    tto = engine.time_to_open(s)
    first = None if tto is None else plan.priorities.get(tto[0])
    if tto is not None and first is not None and first.time_to_open is not None:
        assert s.reported_at is not None
        limit = first.window("time_to_open", s.reported_at)
        clocks.append(
            ClockStatus(
                "time_to_open",
                "breached" if tto[2] else "fulfilled",
                limit,
                s.reported_at,
                first.calendar.add(s.reported_at, limit),
                at_us=s.opened_at,
                calendar=first.calendar.name,
                elapsed_us=tto[1],
            )
        )
    closed = [hi for _, hi in stops if hi is not None and hi <= now]
    return CaseStatus(
        s.case_id,
        plan.name,
        rule.priority,
        rule.calendar.name,
        s.opened_at,
        now,
        paused,
        resolved,
        bool(s.emitted & ELEVATED),
        tuple(_with_elapsed(c, rule, stops, now) for c in clocks),
        s.customer_id,
        stops[-1][0] if paused else None,
        closed[-1] if closed else None,
    )


def _with_elapsed(c: ClockStatus, rule: PriorityRule, stops: Stops, now: int) -> ClockStatus:
    """The clock with its counted time from its start to its close (or to `now`)."""
    end = now if c.at_us is None else c.at_us
    if c.clock == "time_to_open" or end <= c.started_us:  # time to open: already counted
        return c
    return replace(c, elapsed_us=elapsed(rule.calendar, stops, c.started_us, end))


def _open_state(paused: bool) -> ClockState:
    return "paused" if paused else "running"


def _left(rule: PriorityRule, stops: Stops, start: int, target: int, now: int) -> int:
    """Counted time left of a window of `target` opened at `start`, as of `now`."""
    if now <= start:
        return target
    return target - elapsed(rule.calendar, stops, start, now)


def _ack(
    s: CaseState,
    plan: Plan,
    rule: PriorityRule,
    stops: Stops,
    now: int,
    paused: bool,
    end: int | None,
) -> ClockStatus:
    assert s.opened_at is not None
    opened = s.opened_at
    target = rule.window("acknowledge", opened) if rule.business_days else rule.acknowledge
    deadline = add(rule.calendar, stops, opened, target)
    cal = rule.calendar.name
    if s.comm_first is not None:
        on_time = deadline is None or s.comm_first <= deadline
        return ClockStatus(
            "ack",
            "fulfilled" if on_time else "breached",
            target,
            opened,
            deadline,
            at_us=s.comm_first if on_time else deadline,
            calendar=cal,
        )
    if s.emitted & ACK_BREACHED:
        return ClockStatus(
            "ack", "breached", target, opened, deadline, at_us=deadline, calendar=cal
        )
    if end is not None:
        return ClockStatus("ack", "stopped", target, opened, deadline, at_us=end, calendar=cal)
    warn = None
    if plan.warn_fraction is not None:
        warn = add(rule.calendar, stops, opened, round(plan.warn_fraction * target))
    return ClockStatus(
        "ack",
        _open_state(paused),
        target,
        opened,
        deadline,
        warn_us=warn,
        left_us=_left(rule, stops, opened, target, now),
        calendar=cal,
    )


def _update(
    engine: Engine,
    s: CaseState,
    plan: Plan,
    rule: PriorityRule,
    stops: Stops,
    now: int,
    paused: bool,
    end: int | None,
) -> ClockStatus | None:
    clock = engine.update_clock(s, plan, rule, stops)
    if clock is None:
        return None
    eta_point, anchor, window, warn, _, e_start = clock
    cal = rule.calendar
    if end is not None:
        return ClockStatus("update", "stopped", window, anchor, None, at_us=end, calendar=cal.name)
    if eta_point is not None and s.eta_set_at is not None:
        # An ETA pending: no periodic update is owed; the ETA itself is the next deadline, an
        # instant promised to the customer (it passes even while paused or outside hours).
        return ClockStatus(
            "update",
            _open_state(paused),
            eta_point - s.eta_set_at,
            s.eta_set_at,
            eta_point,
            left_us=eta_point - now,
            calendar=cal.name,
        )
    k = e_start // window + 1  # the window with the first pending breach
    deadline = add(cal, stops, anchor, k * window)
    warn_at = None
    if warn is not None and (k - 1) * window + warn > e_start:
        warn_at = add(cal, stops, anchor, (k - 1) * window + warn)
    started = anchor if k == 1 else add(cal, stops, anchor, (k - 1) * window)
    # A breach already reported since the anchor (the customer still waits): breached.
    missed = k > 1 and s.update_through is not None and s.update_through >= anchor
    left = k * window - (elapsed(cal, stops, anchor, now) if now > anchor else 0)
    return ClockStatus(
        "update",
        "breached" if missed and not paused else _open_state(paused),
        window,
        anchor if started is None else started,
        deadline,
        warn_us=warn_at,
        at_us=add(cal, stops, anchor, (k - 1) * window) if missed else None,
        left_us=left,
        calendar=cal.name,
        missed_started_us=(
            None if not missed else anchor if k == 2 else add(cal, stops, anchor, (k - 2) * window)
        ),
    )


def _elevation(
    s: CaseState,
    rule: PriorityRule,
    stops: Stops,
    now: int,
    paused: bool,
    end: int | None,
) -> ClockStatus | None:
    if rule.elevate != "after" or rule.elevate_after is None:
        return None
    assert s.opened_at is not None
    opened = s.opened_at
    target = rule.window("elevate_after", opened) if rule.business_days else rule.elevate_after
    due = add(rule.calendar, stops, opened, target)
    cal = rule.calendar.name
    w = s.eta_or_workaround
    if w is not None and (due is None or w <= due):
        return ClockStatus("elevation", "fulfilled", target, opened, due, at_us=w, calendar=cal)
    if s.emitted & ELEVATED_TIMED:
        return ClockStatus("elevation", "breached", target, opened, due, at_us=due, calendar=cal)
    if s.emitted & ELEVATED:
        return None  # elevated already, on entering an immediate priority: nothing owed
    if end is not None:
        return ClockStatus("elevation", "stopped", target, opened, due, at_us=end, calendar=cal)
    return ClockStatus(
        "elevation",
        _open_state(paused),
        target,
        opened,
        due,
        left_us=_left(rule, stops, opened, target, now),
        calendar=cal,
    )
