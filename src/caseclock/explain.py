"""Why was a case alerted, or not: its status and timeline, each step in words.

`caseclock explain CASE_ID --history FILE` replays a history (every case: the virtual clock
moves with all of them) and tells one case's story: the facts applied (the latest
MAX_FACTS), the clock transitions and the alerts, each with its reason in words ("ack breach:
no public support note between 10:00 and 11:00 UTC, 1 h on 24x7"), then its status. The case
API of the live worker answers with the same document (issue 22).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

import orjson

from caseclock.core.alerts import Alert
from caseclock.core.facts import CaseNoted, CaseOpened, EtaSet, InboundEvent, StatusChanged
from caseclock.core.policy import Policy
from caseclock.core.status import CaseStatus, case_status
from caseclock.core.timeutil import format_instant, from_us, to_us
from caseclock.core.transitions import SlaEvent
from caseclock.replay import Replayer, Summary, read_events

MAX_FACTS: Final = 200
"""Facts kept in a timeline: the latest, so a case with a monitor posting every minute for
months still gives a readable (and bounded) answer."""


@dataclass
class Explanation:
    case_id: str
    status: CaseStatus | None = None
    facts: deque[tuple[int, InboundEvent, bool]] = field(
        default_factory=lambda: deque(maxlen=MAX_FACTS)
    )
    """(arrival on the virtual clock, event, applied: False for a duplicate)."""
    facts_seen: int = 0
    transitions: list[SlaEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": None if self.status is None else self.status.to_dict(),
            "facts_total": self.facts_seen,
            "facts": [
                {
                    "arrived": format_instant(arrived),
                    "applied": applied,
                    "event": ev.model_dump(mode="json", exclude_none=True),
                    "words": fact_in_words(ev),
                }
                for arrived, ev, applied in self.facts
            ],
            "transitions": [
                {**t.to_dict(), "words": transition_in_words(t)} for t in self.transitions
            ],
            "alerts": [
                {**orjson.loads(a.to_json()), "words": alert_in_words(a, self.transitions)}
                for a in self.alerts
            ],
        }

    def render(self) -> str:
        """The timeline as text, in the order things happened on the virtual clock."""
        lines = [f"case {self.case_id}"]
        if not self.facts_seen:
            return f"case {self.case_id}: no fact of it in the history"
        if self.status is None:
            lines.append("  never opened (facts wait for a case-opened)")
        else:
            st = self.status
            state = "resolved" if st.resolved else "paused" if st.paused else "open"
            lines.append(
                f"  {st.plan} P{st.priority}, {st.calendar}, {state}, opened {_clock(st.opened_us)}"
            )
        shown = len(self.facts)
        lines.append(
            f"facts ({self.facts_seen}{'' if shown == self.facts_seen else f', latest {shown}'}):"
        )
        for arrived, ev, applied in self.facts:
            late = "" if arrived == to_us(ev.occurred_at) else f" (arrived {_clock(arrived)})"
            dup = "" if applied else " [duplicate: changed nothing]"
            lines.append(f"  {_clock(to_us(ev.occurred_at))}  {fact_in_words(ev)}{late}{dup}")
        lines.append("clock transitions:")
        for t in self.transitions:
            lines.append(f"  {_clock(t.at_us)}  {transition_in_words(t)}")
        lines.append("alerts:")
        for a in self.alerts:
            lines.append(f"  {_clock(a.fired_us)}  {alert_in_words(a, self.transitions)}")
        if not self.alerts:
            lines.append("  none")
        if self.status is not None:
            lines.append(f"status as of {_clock(self.status.as_of_us)}:")
            for c in self.status.clocks:
                due = "" if c.deadline_us is None else f", deadline {_clock(c.deadline_us)}"
                left = "" if c.left_us is None else f", {_span(c.left_us)} left"
                lines.append(
                    f"  {c.clock}: {c.state}{due}{left} ({_span(c.target_us)} on {c.calendar})"
                )
        return "\n".join(lines)


def explain(
    events: Iterable[InboundEvent], policy: Policy, case_id: str, until: int | None = None
) -> Explanation:
    """One case's explanation from a whole history, replayed up to `until` (default: the
    latest occurred_at)."""
    r = Replayer(policy, sla_events=True)
    out = Explanation(case_id)
    latest: int | None = None

    def take(alerts: list[Alert]) -> None:
        out.alerts.extend(a for a in alerts if a.case_id == case_id)
        assert r.sla_events is not None
        out.transitions.extend(e for e in r.sla_events if e.case_id == case_id)
        r.sla_events.clear()

    for ev in events:
        t = to_us(ev.occurred_at)
        latest = t if latest is None or t > latest else latest
        before = r.summary.events
        fired = r.feed(ev)
        if ev.case_id == case_id:
            assert r.now is not None
            out.facts.append((r.now, ev, r.summary.events > before))
            out.facts_seen += 1
        take(fired)
    take(r.finish(until if until is not None else latest))
    state = r.states.get(case_id)
    if state is not None and r.now is not None:
        out.status = case_status(r.engine, state, r.now)
    return out


# --- in words ----------------------------------------------------------------------------------


def _clock(us: int) -> str:
    return from_us(us).strftime("%Y-%m-%d %H:%M UTC")


def _hm(us: int) -> str:
    return from_us(us).strftime("%H:%M")


def _span(us: int) -> str:
    """A counted length the way a support manager says it: 1 h, 90 min, 2 h 30 min."""
    sign = "-" if us < 0 else ""
    minutes = abs(us) // 60_000_000
    if minutes < 1:
        return f"{sign}{abs(us) / 1e6:g} s"
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{sign}{h} h {m} min"
    return f"{sign}{h} h" if h else f"{sign}{m} min"


def fact_in_words(ev: InboundEvent) -> str:
    if isinstance(ev, CaseOpened):
        return f"case-opened P{ev.priority} on plan {ev.plan}"
    if isinstance(ev, CaseNoted):
        kind = "communication" if (ev.author, ev.visibility) == ("support", "public") else "note"
        extra = ", with a workaround" if ev.workaround else ""
        return f"case-noted by {ev.author} ({ev.visibility}): {kind}{extra}"
    if isinstance(ev, EtaSet):
        return f"eta-set: ETA {_clock(to_us(ev.eta))} (a communication)"
    if isinstance(ev, StatusChanged):
        return f"status-changed to {ev.status!r}"
    return ev.type


def transition_in_words(t: SlaEvent) -> str:
    if t.clock == "update":
        what = f"update window from {_clock(_start_of(t))}"
    else:
        what = {
            "ack": "acknowledgement",
            "elevation": "elevation unless an ETA or workaround",
            "time_to_open": "time to open",
        }[t.clock]
    due = "" if t.deadline_us is None else f", deadline {_clock(t.deadline_us)}"
    target = f"{_span(t.target_us)} on {t.calendar}"
    if t.transition == "fulfilled":
        return f"{what} fulfilled after {_span(t.elapsed_us)} of {target}{due}"
    if t.transition == "breached":
        return f"{what} breached: {target} elapsed{due}"
    return f"{what} {t.transition} ({target}{due})"


def _start_of(t: SlaEvent) -> int:
    return to_us(datetime.fromisoformat(t.obligation.removeprefix("update@")))


def alert_in_words(a: Alert, transitions: Iterable[SlaEvent] = ()) -> str:
    """The alert's reason in words, with the window it judged (from the case's transitions
    when they are at hand)."""
    records = list(transitions)
    if a.type == "ack-due":
        ack = next((t for t in records if t.obligation == "ack"), None)
        length = "" if ack is None else f", {_span(ack.target_us)} on {a.calendar}"
        if a.stage == "breach":
            return (
                f"ack breach: no public support note between {_hm(a.opened_us)} and "
                f"{_hm(a.due_us)} UTC{length}"
            )
        ends = "" if ack is None or ack.deadline_us is None else f", due {_hm(ack.deadline_us)}"
        return f"ack warning: no public support note since {_hm(a.opened_us)} UTC{ends}{length}"
    if a.type == "update-due":
        if a.reason == "eta-passed":
            return (
                f"update breach: the ETA {_clock(a.due_us)} passed, the case unresolved and "
                "no newer ETA"
            )
        window = next(
            (
                t
                for t in reversed(records)
                if t.clock == "update"
                and t.transition == "started"
                and _start_of(t) < a.due_us
                and (t.deadline_us is None or a.due_us <= t.deadline_us)
            ),
            None,
        )
        since = "" if window is None else f" since {_hm(_start_of(window))}"
        length = "" if window is None else f", {_span(window.target_us)} on {a.calendar}"
        stage = "update breach" if a.stage == "breach" else "update warning"
        return f"{stage}: no update to the customer{since}, due {_hm(a.due_us)} UTC{length}"
    if a.reason == "no-eta-or-workaround":
        return (
            f"elevate to L2: no ETA or workaround between {_hm(a.opened_us)} and "
            f"{_hm(a.due_us)} UTC ({a.calendar})"
        )
    return f"elevate to L2: priority {a.priority} since {_clock(a.due_us)} (elevated at once)"


def main_explain(case_id: str, path: str, policy: Policy, until: int | None, as_json: bool) -> int:
    src = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        errors: IO[str] = sys.stderr
        events = read_events(src, policy, Summary(), errors, strict=False)
        ex = explain(events, policy, case_id, until)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(ex.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(ex.render())
    return 0 if ex.facts_seen else 1
