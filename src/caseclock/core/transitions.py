"""Clock transitions: what changed in a case's SLA status, one record per obligation and step.

A record is the difference between two statuses of a case (core/status.py), before and after
one step of the engine (facts applied, or an evaluation that emitted alerts). Obligations are
the acknowledgement, the timed elevation, the time to open, and each update window (its
identity: the instant it started). Transitions: ``started``, ``paused``, ``resumed``,
``fulfilled``, ``breached``, ``cancelled`` (resolved, or no longer owed).

Each record's id is deterministic (the case, the obligation, the transition and its instant),
so a consumer drops repeats as for alerts. A late fact that changes an outcome yields a record
naming the one it ``supersedes`` (a breach reported at the time, then a note that turns out to
have been in time): a consumer that keeps the latest record per obligation has the truth.
Live and replay step differently (the live worker applies what it reads together), so their
intermediate records may differ; the latest record of each obligation does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from caseclock.core.status import CaseStatus, ClockState, ClockStatus
from caseclock.core.timeutil import format_instant

Transition = Literal["started", "paused", "resumed", "fulfilled", "breached", "cancelled"]
TRANSITIONS: Final = ("started", "paused", "resumed", "fulfilled", "breached", "cancelled")

_BY_STATE: Final[dict[ClockState, Transition]] = {
    "paused": "paused",
    "fulfilled": "fulfilled",
    "breached": "breached",
    "stopped": "cancelled",
}


@dataclass(frozen=True, slots=True)
class SlaEvent:
    event_id: str
    case_id: str
    obligation: str
    """`ack`, `elevation`, `time_to_open`, or `update@<start, RFC 3339>` for an update window."""
    clock: str
    transition: Transition
    at_us: int
    """When it happened, in event time (the communication, the deadline, the pause's start)."""
    deadline_us: int | None
    target_us: int
    elapsed_us: int
    """Counted time of the obligation at `at` (business time on a business calendar)."""
    calendar: str
    plan: str
    priority: int
    supersedes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "case_id": self.case_id,
            "obligation": self.obligation,
            "clock": self.clock,
            "transition": self.transition,
            "at": format_instant(self.at_us),
            "deadline": None if self.deadline_us is None else format_instant(self.deadline_us),
            "target_seconds": self.target_us / 1e6,
            "elapsed_seconds": self.elapsed_us / 1e6,
            "calendar": self.calendar,
            "plan": self.plan,
            "priority": self.priority,
            "supersedes": self.supersedes,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


def obligation_of(c: ClockStatus) -> str:
    return f"update@{format_instant(c.started_us)}" if c.clock == "update" else c.clock


def record_id(case_id: str, obligation: str, transition: str, at_us: int) -> str:
    digest = hashlib.blake2b(
        f"{case_id}\x1f{obligation}\x1f{transition}\x1f{at_us}".encode(), digest_size=16
    ).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def transitions(before: CaseStatus | None, after: CaseStatus) -> list[SlaEvent]:
    """The records that take a case from `before` (None: not opened yet) to `after`."""
    out: list[SlaEvent] = []
    old = {} if before is None else {c.clock: c for c in before.clocks}
    for c in after.clocks:
        prev = old.pop(c.clock, None)
        if c.clock == "update":
            prev, c = _update_windows(after, prev, c, out)
        out.extend(_step(after, prev, c))
    for prev in old.values():  # a clock that is gone: no longer owed
        if prev.state in ("running", "paused"):
            out.append(_record(after, prev, "cancelled", after.as_of_us))
    return out


def _update_windows(
    after: CaseStatus, prev: ClockStatus | None, c: ClockStatus, out: list[SlaEvent]
) -> tuple[ClockStatus | None, ClockStatus]:
    """The update clock is a run of windows, each its own obligation. A status's update clock
    is its current window; "breached" there means the window before it was missed (that
    window's record), while the current one runs. Records the windows that ended between the
    two statuses; returns the previous and current window as plain clocks to step."""
    if c.state == "breached" and c.at_us is not None and c.missed_started_us is not None:
        missed = ClockStatus(
            "update",
            "breached",
            c.target_us,
            c.missed_started_us,
            c.at_us,
            at_us=c.at_us,
            calendar=c.calendar,
            elapsed_us=c.target_us,
        )
        if prev is None or obligation_of(prev) != obligation_of(missed) or prev.state != "breached":
            sup = None
            if prev is not None and obligation_of(prev) == obligation_of(missed):
                sup = _superseded(after, prev)
            out.append(_record(after, missed, "breached", c.at_us, sup))
        if prev is not None and obligation_of(prev) == obligation_of(missed):
            prev = None
        c = _close(c, "running", None)
    if prev is not None and obligation_of(prev) != obligation_of(c):
        # The window before gave way to this one: closed by a communication (this window
        # starts at it) unless its breach was recorded above.
        if prev.state in ("running", "paused"):
            closed = _close(prev, "fulfilled", c.started_us)
            out.append(_record(after, closed, "fulfilled", c.started_us))
        prev = None
    return prev, c


def _superseded(after: CaseStatus, prev: ClockStatus) -> str | None:
    """The id of the outcome record `prev` stands for, when it had one."""
    if prev.state not in ("fulfilled", "breached"):
        return None
    at = prev.at_us if prev.at_us is not None else after.as_of_us
    return record_id(after.case_id, obligation_of(prev), _BY_STATE[prev.state], at)


def _close(c: ClockStatus, state: ClockState, at: int | None) -> ClockStatus:
    return ClockStatus(
        c.clock,
        state,
        c.target_us,
        c.started_us,
        c.deadline_us,
        at_us=at,
        calendar=c.calendar,
        elapsed_us=c.elapsed_us,
    )


def _step(after: CaseStatus, prev: ClockStatus | None, c: ClockStatus) -> list[SlaEvent]:
    out: list[SlaEvent] = []
    if prev is None:
        out.append(_record(after, c, "started", c.started_us))
        if c.state == "running":
            return out
    elif prev.state == c.state and prev.at_us == c.at_us:
        return out
    if c.state == "running":
        if prev is not None and prev.state == "paused":
            at = after.resumed_us if after.resumed_us is not None else after.as_of_us
            out.append(_record(after, c, "resumed", at))
        return out
    if c.state == "paused":
        at = after.paused_since_us if after.paused_since_us is not None else after.as_of_us
        out.append(_record(after, c, "paused", at))
        return out
    transition = _BY_STATE[c.state]
    at = c.at_us if c.at_us is not None else after.as_of_us
    supersedes = None
    if prev is not None and prev.state != c.state:
        supersedes = _superseded(after, prev)
    out.append(_record(after, c, transition, at, supersedes))
    return out


def _record(
    st: CaseStatus, c: ClockStatus, transition: Transition, at: int | None, sup: str | None = None
) -> SlaEvent:
    when = st.as_of_us if at is None else at
    obligation = obligation_of(c)
    return SlaEvent(
        record_id(st.case_id, obligation, transition, when),
        st.case_id,
        obligation,
        c.clock,
        transition,
        when,
        c.deadline_us,
        c.target_us,
        c.elapsed_us,
        c.calendar,
        st.plan,
        st.priority,
        sup,
    )


AttainmentKey = tuple[str, int, str, str]
"""(plan, priority, clock, calendar): the labels attainment is counted by (no case)."""


class Attainment:
    """Obligations met in time and missed, from the latest record of each obligation: what a
    consumer of the transitions topic computes, so a breach superseded by a fulfilment counts
    once, as met. Feed it records in order (`add`); read `counts`."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], SlaEvent] = {}

    def add(self, e: SlaEvent) -> None:
        self._latest[(e.case_id, e.obligation)] = e

    def counts(self) -> dict[AttainmentKey, tuple[int, int]]:
        out: dict[AttainmentKey, tuple[int, int]] = {}
        for e in self._latest.values():
            if e.transition not in ("fulfilled", "breached"):
                continue
            key = (e.plan, e.priority, e.clock, e.calendar)
            met, missed = out.get(key, (0, 0))
            out[key] = (met + 1, missed) if e.transition == "fulfilled" else (met, missed + 1)
        return out
