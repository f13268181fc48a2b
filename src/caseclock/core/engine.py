"""The SLA engine: per-case state from facts, and the alerts those facts make due.

Pure by construction: no Kafka, no Faust, no clock. Callers pass the time in (`now`, integer
microseconds since the epoch). The live service and `caseclock replay` drive this one module, so
they cannot disagree about what is due.

Three ideas carry the design:

* **State is an aggregate of facts, not a log.** Every fact folds into the state with
  min/max-by-(occurred_at, event_id) rules, so the result does not depend on arrival order and a
  repeated event is a no-op (and is recognised by its `event_id` anyway).
* **Clocks are derived, never stored.** Deadlines are recomputed from the facts and the plan on
  every evaluation; the only clock state kept is what was already emitted (flags for the
  once-per-case obligations, a high-water mark for the periodic update clock). A priority change
  or a late fact therefore re-evaluates everything "from the same starting points" for free.
* **Catch-up is a rule of evaluation.** When several points of one clock are past due at `now`,
  only the most recent breach is emitted (marked `catch_up`) and the clock moves past all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from caseclock.core.alerts import Alert, AlertType, Stage, alert_id
from caseclock.core.facts import (
    CaseNoted,
    CaseOpened,
    CaseResolved,
    EtaSet,
    InboundEvent,
    PriorityChanged,
)
from caseclock.core.policy import Plan, Policy, PriorityRule
from caseclock.core.state import (
    ACK_BREACHED,
    ACK_WARNED,
    ELEVATED,
    SEEN_BYTES,
    CaseState,
    add_priority,
    digest,
    seen_in,
    tiebreak,
)
from caseclock.core.timeutil import to_us


def _min(a: int | None, b: int) -> int:
    return b if a is None or b < a else a


def _max(a: int | None, b: int) -> int:
    return b if a is None or b > a else a


@dataclass(frozen=True, slots=True)
class _Point:
    at: int
    type: AlertType
    stage: Stage
    reason: str


class Engine:
    """Applies facts to case states and evaluates what is due. Holds only the policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # --- facts -----------------------------------------------------------------------------

    def apply(
        self, state: CaseState | None, ev: InboundEvent, now: int, t: int | None = None
    ) -> tuple[CaseState, bool]:
        """Fold one event into the case's state (created when None).

        Returns (state, applied); applied is False for a duplicate event_id. The state is
        mutated in place: the caller owns it (a table row, a replay dict entry). `t` is the
        event's occurred_at in microseconds when the caller already has it.
        """
        if state is None:
            state = CaseState(ev.case_id, now)
        d = digest(ev.event_id)
        seen = state.seen
        if seen_in(seen, d):
            return state, False
        seen += d
        state.seen = seen[-SEEN_BYTES:] if len(seen) > SEEN_BYTES else seen
        if t is None:
            t = to_us(ev.occurred_at)
        if isinstance(ev, CaseNoted):
            if ev.author == "support" and ev.visibility == "public":
                self._communication(state, t)
                if ev.workaround:
                    state.eta_or_workaround = _min(state.eta_or_workaround, t)
        elif isinstance(ev, CaseOpened):
            tb = tiebreak(ev.event_id)
            if state.opened_at is None or (t, tb) < (state.opened_at, state.open_tb):
                # The earliest case-opened defines the opening; every one is a priority fact.
                state.opened_at = t
                state.open_tb = tb
                state.plan = ev.plan
                state.reported_at = None if ev.reported_at is None else to_us(ev.reported_at)
                state.customer_id = ev.customer_id
                state.subject = ev.subject
            add_priority(state, t, tb, ev.priority)
        elif isinstance(ev, EtaSet):
            self._communication(state, t)
            state.eta_or_workaround = _min(state.eta_or_workaround, t)
            tb = tiebreak(ev.event_id)
            if state.eta_set_at is None or (t, tb) > (state.eta_set_at, state.eta_tb):
                state.eta_set_at = t
                state.eta_tb = tb
                state.eta = to_us(ev.eta)
        elif isinstance(ev, CaseResolved):
            state.resolved_at = _min(state.resolved_at, t)
        elif isinstance(ev, PriorityChanged):
            add_priority(state, t, tiebreak(ev.event_id), ev.priority)
        return state, True

    @staticmethod
    def _communication(state: CaseState, t: int) -> None:
        state.comm_first = _min(state.comm_first, t)
        state.comm_last = _max(state.comm_last, t)

    # --- derived -----------------------------------------------------------------------------

    def plan_of(self, state: CaseState) -> Plan | None:
        return None if state.plan is None else self.policy.plans.get(state.plan)

    def current(self, state: CaseState) -> tuple[Plan, PriorityRule, int] | None:
        """(plan, rule, since): the case's current priority rule, and when that priority began.

        The current priority is the latest priority fact that the plan knows (a policy change
        can drop a priority; the case then falls back to its previous one).
        """
        plan = self.plan_of(state)
        if plan is None or state.opened_at is None:
            return None
        prs = state.priorities
        if len(prs) == 1:  # the common case: never re-prioritised
            only = plan.priorities.get(prs[0][2])
            return None if only is None else (plan, only, prs[0][0])
        for i in range(len(prs) - 1, -1, -1):
            rule = plan.priorities.get(prs[i][2])
            if rule is None:
                continue
            since = prs[i][0]
            j = i - 1
            while j >= 0 and prs[j][2] == rule.priority:
                since = prs[j][0]
                j -= 1
            return plan, rule, since
        return None

    def time_to_open(self, state: CaseState) -> tuple[int, int, bool] | None:
        """(priority, opened_at - reported_at, breached) when reported_at is known."""
        if state.opened_at is None or state.reported_at is None:
            return None
        cur = self.current(state)
        if cur is None:
            return None
        _, rule, _ = cur
        # The time-to-open promise is the one of the priority the case was opened with.
        opening = (state.opened_at, state.open_tb)
        first = next((p for t, tb, p in state.priorities if (t, tb) == opening), rule.priority)
        plan = self.plan_of(state)
        first_rule = plan.priorities.get(first, rule) if plan else rule
        took = max(0, state.opened_at - state.reported_at)
        limit = first_rule.time_to_open
        return first_rule.priority, took, limit is not None and took > limit

    # --- clocks ------------------------------------------------------------------------------

    def _ack_points(self, s: CaseState, plan: Plan, rule: PriorityRule) -> list[_Point]:
        if s.comm_first is not None or s.opened_at is None:
            return []
        pts = []
        if plan.warn_fraction is not None and not s.emitted & (ACK_WARNED | ACK_BREACHED):
            at = s.opened_at + round(plan.warn_fraction * rule.acknowledge)
            pts.append(_Point(at, "ack-due", "warning", "no-acknowledgement"))
        if not s.emitted & ACK_BREACHED:
            pts.append(
                _Point(s.opened_at + rule.acknowledge, "ack-due", "breach", "no-acknowledgement")
            )
        return pts

    def _elevation_point(self, s: CaseState, rule: PriorityRule, since: int) -> _Point | None:
        if s.emitted & ELEVATED or s.opened_at is None:
            return None
        if rule.elevate == "immediately":
            return _Point(since, "elevate-to-l2", "action", f"priority-{rule.priority}")
        if rule.elevate == "after" and rule.elevate_after is not None:
            due = s.opened_at + rule.elevate_after
            if s.eta_or_workaround is not None and s.eta_or_workaround <= due:
                return None
            return _Point(due, "elevate-to-l2", "action", "no-eta-or-workaround")
        return None

    def _update_clock(
        self, s: CaseState, plan: Plan, rule: PriorityRule
    ) -> tuple[int | None, int, int, int | None, int] | None:
        """(eta_point, anchor, window, warn_offset, start) of the update clock, or None.

        Window k (k >= 1) spans (anchor+(k-1)W, anchor+kW]: a warning at its warn fraction,
        a breach at its end. `start` is where pending points begin (after the high-water mark).
        """
        if s.comm_first is None or s.comm_last is None:
            return None
        through = s.update_through
        anchor = s.comm_last
        eta_point = None
        if s.eta is not None and s.eta_set_at is not None and s.eta > s.eta_set_at:
            # While the ETA is pending no periodic update is owed; when it passes, one breach,
            # then periodic updates from max(ETA, last communication).
            if through is None or s.eta > through:
                eta_point = s.eta
            anchor = max(s.eta, s.comm_last)
        window = rule.update_every
        warn = None if plan.warn_fraction is None else round(plan.warn_fraction * window)
        start = anchor if through is None or through < anchor else through
        return eta_point, anchor, window, warn, start

    def _update_next(self, s: CaseState, plan: Plan, rule: PriorityRule) -> int | None:
        clock = self._update_clock(s, plan, rule)
        if clock is None:
            return None
        eta_point, anchor, window, warn, start = clock
        if eta_point is not None:
            return eta_point  # every periodic point lies after the ETA
        k = (start - anchor) // window + 1  # the window `start` lies in
        if warn is not None and anchor + (k - 1) * window + warn > start:
            return anchor + (k - 1) * window + warn
        return anchor + k * window

    def _update_due(self, s: CaseState, plan: Plan, rule: PriorityRule, now: int) -> list[_Point]:
        """The update clock's pending points due by `now`. Only what evaluate() needs is
        listed: the first and last breach, the warnings around them (so their count tells a
        catch-up), never the whole run of windows a long outage spans."""
        clock = self._update_clock(s, plan, rule)
        if clock is None:
            return []
        eta_point, anchor, window, warn, start = clock
        pts: list[_Point] = []
        if eta_point is not None:
            if eta_point > now:
                return pts
            pts.append(_Point(eta_point, "update-due", "breach", "eta-passed"))
        if now < anchor:
            return pts
        k = (start - anchor) // window + 1  # first window with a pending breach
        last_k = (now - anchor) // window  # last window whose breach is due
        if last_k >= k:
            first_warn = None if warn is None else anchor + (k - 1) * window + warn
            if first_warn is not None and first_warn > start:
                pts.append(_Point(first_warn, "update-due", "warning", "interval"))
            pts.append(_Point(anchor + k * window, "update-due", "breach", "interval"))
            if last_k > k:
                pts.append(_Point(anchor + last_k * window, "update-due", "breach", "interval"))
        cur_warn = None if warn is None else anchor + last_k * window + warn
        if cur_warn is not None and start < cur_warn <= now:
            pts.append(_Point(cur_warn, "update-due", "warning", "interval"))
        return pts

    def at_risk(self, s: CaseState) -> list[str]:
        """Clocks whose warning went out and whose breach is still pending ("ack", "update")."""
        if s.resolved_at is not None:
            return []
        cur = self.current(s)
        if cur is None:
            return []
        plan, rule, _ = cur
        out = []
        if s.comm_first is None and s.emitted & (ACK_WARNED | ACK_BREACHED) == ACK_WARNED:
            out.append("ack")
        clock = self._update_clock(s, plan, rule)
        if clock is not None and s.update_through is not None:
            eta_point, anchor, window, warn, start = clock
            if eta_point is None and warn is not None and start == s.update_through:
                k = (start - anchor) // window + 1
                if anchor + (k - 1) * window + warn == start:
                    out.append("update")
        return out

    def next_due(self, s: CaseState) -> int | None:
        """The earliest instant at which evaluate() would emit something, or None.

        This is what the deadline index holds per case; nothing fires for unopened or resolved
        cases, so they have none. (Called after every event: kept free of allocations.)
        """
        if s.resolved_at is not None or s.opened_at is None:
            return None
        cur = self.current(s)
        if cur is None:
            return None
        plan, rule, since = cur
        best: int | None = None
        emitted = s.emitted
        if s.comm_first is None:
            if plan.warn_fraction is not None and not emitted & (ACK_WARNED | ACK_BREACHED):
                best = s.opened_at + round(plan.warn_fraction * rule.acknowledge)
            elif not emitted & ACK_BREACHED:
                best = s.opened_at + rule.acknowledge
        if not emitted & ELEVATED:
            el = self._elevation_point(s, rule, since)
            if el is not None and (best is None or el.at < best):
                best = el.at
        upd = self._update_next(s, plan, rule)
        if upd is not None and (best is None or upd < best):
            best = upd
        return best

    def evaluate(self, s: CaseState, now: int, fired_at: int | None = None) -> list[Alert]:
        """Emit what is due at `now` and record it in the state.

        Per clock, when several points are past due, only the most recent breach is emitted
        (catch-up) and the clock continues after all of them; a lone past-due warning is emitted
        as itself. Nothing is ever emitted for a resolved case.

        `now` is the instant the evaluation stands for; `fired_at` (default `now`) is stamped on
        the alerts. A live timer that fell behind evaluates as of the deadline it serves, not
        as of the wall clock, so that its backlog never turns a warning into a catch-up: only a
        case learned or recomputed after its deadlines catches up.
        """
        stamp = now if fired_at is None else fired_at
        if s.resolved_at is not None:
            return []
        cur = self.current(s)
        if cur is None:
            return []
        plan, rule, since = cur
        out: list[Alert] = []

        ack_due = [p for p in self._ack_points(s, plan, rule) if p.at <= now]
        if ack_due:
            chosen = ack_due[-1]  # the breach when it is due, else the warning
            s.emitted |= ACK_WARNED | (ACK_BREACHED if chosen.stage == "breach" else 0)
            out.append(self._alert(s, plan, rule, chosen, stamp, len(ack_due) > 1))

        el = self._elevation_point(s, rule, since)
        if el is not None and el.at <= now:
            s.emitted |= ELEVATED
            out.append(self._alert(s, plan, rule, el, stamp, False))

        upd = self._update_due(s, plan, rule, now)
        if upd:
            breaches = [p for p in upd if p.stage == "breach"]
            chosen = max(breaches or upd, key=lambda p: p.at)
            s.update_through = max(p.at for p in upd)
            out.append(self._alert(s, plan, rule, chosen, stamp, len(upd) > 1))
        return out

    def _alert(
        self, s: CaseState, plan: Plan, rule: PriorityRule, p: _Point, now: int, catch_up: bool
    ) -> Alert:
        assert s.opened_at is not None
        return Alert(
            alert_id(s.case_id, p.type, p.stage, p.reason, p.at),
            p.type,
            p.stage,
            p.reason,
            s.case_id,
            rule.priority,
            plan.name,
            p.at,
            now,
            s.opened_at,
            s.customer_id,
            s.subject,
            s.eta,
            catch_up,
        )
