"""Offline replay: the engine on a file of events, with a virtual clock.

The virtual clock moves forward through the events' occurred_at (never backwards: an older
event arrives "now") and fires every alert at the instant it falls due, as a continuously
running live service would. Every event that arrives at one virtual instant (its own time, or
the clock's when it is older: a backfill) is applied before anything due at or before that
instant fires, as a live worker applies the facts it reads together: the clock only fires
deadlines strictly before the next event that moves it, and the horizon inclusively.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.alerts import Alert, breach_clock
from caseclock.core.engine import Engine
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy
from caseclock.core.schedule import DeadlineIndex
from caseclock.core.state import CaseState
from caseclock.core.status import CaseStatus, case_status
from caseclock.core.timeutil import to_us
from caseclock.core.transitions import Attainment, AttainmentKey, SlaEvent, transitions


def alert_sort_key(a: Alert) -> tuple[object, ...]:
    return (a.fired_us, a.due_us, a.case_id, a.type, a.stage)


@dataclass
class Summary:
    events: int = 0
    duplicates: int = 0
    invalid: int = 0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    breaches: Counter[int] = field(default_factory=Counter)
    open_breaches: Counter[int] = field(default_factory=Counter)
    invalid_reasons: Counter[str] = field(default_factory=Counter)

    def render(self, cases: int) -> str:
        lines = [
            f"events: {self.events} applied, {self.duplicates} duplicate, {self.invalid} invalid"
        ]
        if self.invalid_reasons:
            lines.append(
                "invalid by reason: "
                + ", ".join(f"{r}={n}" for r, n in sorted(self.invalid_reasons.items()))
            )
        lines.append(f"cases: {cases}")
        lines.append(f"alerts: {sum(self.alerts.values())}")
        for (t, st), n in sorted(self.alerts.items()):
            lines.append(f"  {t} {st}: {n}")
        lines.append(
            "breaches by priority: "
            + (", ".join(f"P{p}={n}" for p, n in sorted(self.breaches.items())) or "none")
        )
        lines.append(
            "time-to-open breaches by priority: "
            + (", ".join(f"P{p}={n}" for p, n in sorted(self.open_breaches.items())) or "none")
        )
        return "\n".join(lines)


class Replayer:
    """Drives the engine over a sequence of events with a virtual clock."""

    def __init__(self, policy: Policy, sla_events: bool = False) -> None:
        self.engine = Engine(policy)
        self.states: dict[str, CaseState] = {}
        self.index = DeadlineIndex()
        self.now: int | None = None
        self.summary = Summary()
        self.sla_events: list[SlaEvent] | None = [] if sla_events else None
        """With sla_events: the clock transitions of every step, in order (core/transitions)."""
        self._statuses: dict[str, CaseStatus] = {}
        """The status each case's transitions were last taken from."""

    def _transitions(self, state: CaseState) -> None:
        """Record what changed in the case's status since its last step."""
        if self.sla_events is None or self.now is None:
            return
        after = case_status(self.engine, state, self.now)
        if after is None:
            return
        self.sla_events.extend(transitions(self._statuses.get(state.case_id), after))
        self._statuses[state.case_id] = after

    def feed(self, ev: InboundEvent) -> list[Alert]:
        """Advance the clock to the event's time, then apply it. Returns the alerts fired."""
        t = to_us(ev.occurred_at)
        # An older event arrives "now", while the clock stands still: it joins the events
        # that arrived at this instant, and all of them are applied before anything due at
        # or before it fires (spec section 4: a backfill loads a case's history without
        # reporting the breaches its own later facts answered). Only an event that moves the
        # clock forward first fires what fell due strictly before it, including what the
        # events of the previous instant made overdue.
        if self.now is None or t > self.now:
            out = self._advance(t, inclusive=False)
            self.now = t
        else:
            out = []
        state = self.states.get(ev.case_id)
        was_open = state is not None and state.opened
        if state is None:
            state, applied = self.engine.apply(None, ev, self.now, t)
            self.states[state.case_id] = state  # one case_id string for the dict and the index
        else:
            state, applied = self.engine.apply(state, ev, self.now, t)
        if not applied:
            self.summary.duplicates += 1
            return out
        self.summary.events += 1
        self._transitions(state)
        if not was_open and state.opened:
            tto = self.engine.time_to_open(state)
            if tto is not None and tto[2]:
                self.summary.open_breaches[tto[0]] += 1
        self.index.schedule(state.case_id, self.engine.next_due(state))
        return out

    def finish(self, horizon: int | None = None) -> list[Alert]:
        """Run the clock up to and including the horizon (default: the current time)."""
        if horizon is None:
            horizon = self.now
        if horizon is None:
            return []
        out = self._advance(horizon, inclusive=True)
        if self.now is None or horizon > self.now:
            self.now = horizon
        return out

    def _advance(self, bound: int, inclusive: bool) -> list[Alert]:
        out: list[Alert] = []
        limit = bound + 1 if inclusive else bound
        while (entry := self.index.pop_before(limit)) is not None:
            due, key = entry
            at = due if self.now is None or due > self.now else self.now
            self.now = at
            state = self.states[key]
            alerts = self.engine.evaluate(state, at)
            nxt = self.engine.next_due(state)
            if not alerts and nxt is not None and nxt <= at:
                raise RuntimeError(f"engine made no progress on case {key!r} at {at}")
            self.index.schedule(key, nxt)
            if alerts:
                self._transitions(state)
            for a in alerts:
                self.summary.alerts[(a.type, a.stage)] += 1
                if breach_clock(a) is not None:
                    self.summary.breaches[a.priority] += 1
            out.extend(alerts)
        return out


def replay(events: Iterable[InboundEvent], policy: Policy, until: int | None = None) -> list[Alert]:
    """All alerts of a history, in output order. The horizon defaults to the latest event."""
    r = Replayer(policy)
    out: list[Alert] = []
    latest: int | None = None
    for ev in events:
        t = to_us(ev.occurred_at)
        latest = t if latest is None or t > latest else latest
        out.extend(r.feed(ev))
    out.extend(r.finish(until if until is not None else latest))
    out.sort(key=alert_sort_key)
    return out


def read_events(
    lines: Iterable[bytes], policy: Policy, summary: Summary, errors: IO[str], strict: bool
) -> Iterator[InboundEvent]:
    """Decode JSON lines; report invalid ones (line number and reason) and skip them."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield decode_event(line.rstrip(b"\r\n"), policy)
        except Rejected as e:
            summary.invalid += 1
            summary.invalid_reasons[e.reason] += 1
            print(f"line {n}: {e.reason}: {e.detail}", file=errors)
            if strict:
                raise


def run_replay(
    lines: Iterable[bytes],
    policy: Policy,
    out: IO[bytes],
    errors: IO[str],
    *,
    until: int | None = None,
    strict: bool = False,
    status: IO[bytes] | None = None,
    sla_events: IO[bytes] | None = None,
    attainment: bool = False,
) -> Summary:
    """The `caseclock replay` command: alerts as JSON lines on `out`, summary on `errors`,
    and with `status` the final status of every opened case (core/status.py) as JSON lines,
    ordered by case id, as of the horizon; with `sla_events` every clock transition
    (core/transitions.py) as JSON lines, in the order of the steps that made them; with
    `attainment` the obligations met and missed by plan, priority, clock and calendar, beside
    the policy's objectives, in the summary.

    Alerts are written as soon as no later alert can sort before them (fired_at is monotonic
    on the virtual clock), so memory does not grow with the length of the history.
    """
    r = Replayer(policy, sla_events=sla_events is not None or attainment)
    pending: list[Alert] = []
    latest: int | None = None
    counted = Attainment()

    def flush_transitions() -> None:
        if r.sla_events:
            for e in r.sla_events:
                counted.add(e)
                if sla_events is not None:
                    sla_events.write(e.to_json() + b"\n")
            r.sla_events.clear()

    def flush(before: int | None) -> None:
        nonlocal pending
        pending.sort(key=alert_sort_key)
        keep: list[Alert] = []
        for a in pending:
            if before is None or a.fired_us < before:
                out.write(a.to_json() + b"\n")
            else:
                keep.append(a)
        pending = keep

    for ev in read_events(lines, policy, r.summary, errors, strict):
        t = to_us(ev.occurred_at)
        latest = t if latest is None or t > latest else latest
        pending.extend(r.feed(ev))
        if len(pending) > 256:
            flush(r.now)
        flush_transitions()
    pending.extend(r.finish(until if until is not None else latest))
    flush(None)
    flush_transitions()
    if status is not None and r.now is not None:
        for key in sorted(r.states):
            st = case_status(r.engine, r.states[key], r.now)
            if st is not None:
                status.write(st.to_json() + b"\n")
    print(r.summary.render(len(r.states)), file=errors)
    if attainment:
        print(render_attainment(counted.counts(), policy), file=errors)
    return r.summary


def render_attainment(counts: dict[AttainmentKey, tuple[int, int]], policy: Policy) -> str:
    """Attainment lines: met / all, the percentage, and the objective when the policy states
    one (marked when below it)."""
    lines = ["attainment (met in time / judged):"]
    if not counts:
        lines.append("  nothing judged yet")
    for (plan, priority, clock, calendar), (met, missed) in sorted(counts.items()):
        rule = policy.plans[plan].priorities.get(priority) if plan in policy.plans else None
        objective = None if rule is None else rule.objectives.get(clock)
        ratio = met / (met + missed)
        line = f"  {plan} P{priority} {clock} ({calendar}): {met}/{met + missed} = {ratio:.1%}"
        if objective is not None:
            line += f", objective {objective:.1%}" + (" BELOW" if ratio < objective else "")
        lines.append(line)
    return "\n".join(lines)


def main_replay(
    path: str,
    policy: Policy,
    until: int | None,
    strict: bool,
    status_path: str | None = None,
    sla_events_path: str | None = None,
    attainment: bool = False,
) -> int:
    src = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    status = None if status_path is None else open(status_path, "wb")  # noqa: SIM115
    events = None if sla_events_path is None else open(sla_events_path, "wb")  # noqa: SIM115
    try:
        run_replay(
            src,
            policy,
            sys.stdout.buffer,
            sys.stderr,
            until=until,
            strict=strict,
            status=status,
            sla_events=events,
            attainment=attainment,
        )
    except Rejected:
        return 2
    finally:
        if src is not sys.stdin.buffer:
            src.close()
        if status is not None:
            status.close()
        if events is not None:
            events.close()
        sys.stdout.flush()
    return 0
