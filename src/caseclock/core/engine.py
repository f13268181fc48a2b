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
from caseclock.core.counted import NO_STOPS as _NO_STOPS
from caseclock.core.counted import add as _add
from caseclock.core.counted import elapsed as _elapsed
from caseclock.core.counted import merge as _merge
from caseclock.core.facts import (
    CaseNoted,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    EtaSet,
    InboundEvent,
    PriorityChanged,
    StatusChanged,
)
from caseclock.core.policy import Plan, Policy, PriorityRule
from caseclock.core.state import (
    ACK_BREACHED,
    ACK_WARNED,
    ELEVATED,
    ELEVATED_TIMED,
    MAX_RESOLUTION_FACTS,
    MAX_STATUS_FACTS,
    SEEN_BYTES,
    TRIM_FROM,
    CaseState,
    add_latest,
    add_priority,
    digest,
    seen_in,
    status_digest,
    tiebreak,
    trim_before,
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
        elif isinstance(ev, CaseResolved | CaseReopened):
            flag = 1 if isinstance(ev, CaseResolved) else 0
            add_latest(state.resolutions, (t, tiebreak(ev.event_id), flag), MAX_RESOLUTION_FACTS)
            if len(state.resolutions) > TRIM_FROM:
                self.trim(state)
        elif isinstance(ev, StatusChanged):
            fact = (t, tiebreak(ev.event_id), status_digest(ev.status))
            add_latest(state.statuses, fact, MAX_STATUS_FACTS)
            if len(state.statuses) > TRIM_FROM:
                self.trim(state)
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

    def calendar_of(self, state: CaseState, priority: int) -> str:
        """The name of the calendar a priority of the case's plan counts in."""
        plan = self.plan_of(state)
        rule = None if plan is None else plan.priorities.get(priority)
        return "24x7" if rule is None else rule.calendar.name

    def time_to_open(self, state: CaseState) -> tuple[int, int, bool] | None:
        """(priority, opened_at - reported_at, breached) when reported_at is known.

        The time taken is measured in the calendar of the priority the case was opened with
        (business time for a business-hours priority), like every other window."""
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
        took = first_rule.calendar.elapsed(state.reported_at, state.opened_at)
        if first_rule.time_to_open is None:
            return first_rule.priority, took, False
        limit = first_rule.window("time_to_open", state.reported_at)
        return first_rule.priority, took, took > limit

    def time_to_acknowledge(self, state: CaseState) -> tuple[int, bool] | None:
        """(counted time from opening to acknowledgement, on time) once both are known.

        Counted like the acknowledge window itself (its calendar, less pauses and resolved
        stretches), so a Friday-evening case acknowledged on Monday morning is on time; on
        time means at or before the acknowledge deadline (inclusive)."""
        if state.opened_at is None or state.comm_first is None:
            return None
        cur = self.current(state)
        if cur is None:
            return None
        plan, rule, _ = cur
        stops = self.stops(state, plan) if state.statuses or state.resolutions else _NO_STOPS
        took = _elapsed(rule.calendar, stops, state.opened_at, state.comm_first)
        deadline = _add(
            rule.calendar, stops, state.opened_at, rule.window("acknowledge", state.opened_at)
        )
        return took, deadline is None or state.comm_first <= deadline

    # --- stops: pauses and resolved stretches ------------------------------------------------

    def horizon(self, s: CaseState) -> int | None:
        """The earliest instant an open or future window of the case can count from, under
        this policy and whatever facts may still come (late ones included), or None when
        every instant may still matter. What the status facts before it say is never read
        again, but for the status in force at it.

        * Until the first communication, the acknowledge window and the time to acknowledge
          count from the opening.
        * A timed elevation counts from the opening until it fired, or until an ETA or a
          workaround came so early that no priority of the plan could still elevate: its
          deadline is never earlier than the opening plus its window (counted time never
          runs faster than the clock), and the earliest ETA or workaround only moves earlier.
          A priority change re-evaluates from the opening, so every timed rule of the plan
          counts, not only the current priority's.
        * The update clock counts from its anchor, never before the last communication (the
          latest one by occurred_at, so a late fact cannot move it back).
        * An immediate elevation is due when its priority began, held only by a pause in
          force now, which the latest status fact gives.

        The one fact that can still move a window before the horizon is a case-opened dated
        earlier than the case's opening, once the case was acknowledged (docs/semantics.md).
        """
        opened_at = s.opened_at
        plan = self.plan_of(s)
        if opened_at is None or plan is None:
            return None
        if s.comm_last is None:
            return opened_at
        if not s.emitted & ELEVATED:
            earliest = min(
                (
                    r.window("elevate_after", opened_at)
                    for r in plan.priorities.values()
                    if r.elevate == "after" and r.elevate_after is not None
                ),
                default=None,
            )
            w = s.eta_or_workaround
            if earliest is not None and (w is None or w > opened_at + earliest):
                return opened_at
        return s.comm_last

    @staticmethod
    def resolution_horizon(s: CaseState, horizon: int) -> int:
        """The same for the resolve and reopen facts, given the case's `horizon`: they are
        also read at an ETA (one that passed while the case was resolved was met), and an
        eta-set may arrive late with any ETA; only one after the update clock's high-water
        mark can still fire, so the resolutions are kept from that mark (from the opening
        while there is none)."""
        through = s.update_through
        if through is None:
            return horizon if s.opened_at is None else min(s.opened_at, horizon)
        return through if through < horizon else horizon

    def trim(self, s: CaseState) -> None:
        """Drop the status and resolve/reopen facts before their horizons but the one in force
        there (`state.trim_before`): what keeps a long history bounded without moving a
        deadline."""
        h = self.horizon(s)
        if h is not None:
            trim_before(s.statuses, h)
            trim_before(s.resolutions, self.resolution_horizon(s, h))

    @staticmethod
    def stops(s: CaseState, plan: Plan) -> list[tuple[int, int | None]]:
        """The stretches during which no window counts, sorted and disjoint: `[start, end)`,
        end None for a stretch still going on.

        A stretch is paused (the status in force is one of the plan's pause_statuses) or
        resolved (the latest resolve/reopen fact in force is a resolve). Both come from the
        facts' occurred_at, so a late status-changed or reopen moves them like any late fact.
        """
        out: list[tuple[int, int | None]] = []
        if s.statuses and plan.pause_digests:
            pause = plan.pause_digests
            begin: int | None = None
            for t, _, d in s.statuses:
                if d in pause:
                    if begin is None:
                        begin = t
                elif begin is not None:
                    if t > begin:
                        out.append((begin, t))
                    begin = None
            if begin is not None:
                out.append((begin, None))
        if s.resolutions:
            resolved: list[tuple[int, int | None]] = []
            begin = None
            for t, _, flag in s.resolutions:
                if flag:
                    if begin is None:
                        begin = t
                elif begin is not None:
                    if t > begin:
                        resolved.append((begin, t))
                    begin = None
            if begin is not None:
                resolved.append((begin, None))
            if resolved:
                out = _merge(out, resolved) if out else resolved
        return out

    @staticmethod
    def _last_reopen(s: CaseState) -> int | None:
        """When the case was last reopened (a reopen that ended a resolution), or None."""
        rz = s.resolutions
        for i in range(len(rz) - 1, 0, -1):
            if rz[i][2] == 0 and rz[i - 1][2] == 1:
                return rz[i][0]
        return None

    # --- clocks ------------------------------------------------------------------------------

    def _ack_points(
        self, s: CaseState, plan: Plan, rule: PriorityRule, stops: list[tuple[int, int | None]]
    ) -> list[_Point]:
        if s.comm_first is not None or s.opened_at is None:
            return []
        cal = rule.calendar
        window = _window(rule, "acknowledge", s.opened_at)
        pts = []
        if plan.warn_fraction is not None and not s.emitted & (ACK_WARNED | ACK_BREACHED):
            at = _add(cal, stops, s.opened_at, round(plan.warn_fraction * window))
            if at is not None:
                pts.append(_Point(at, "ack-due", "warning", "no-acknowledgement"))
        if not s.emitted & ACK_BREACHED:
            at = _add(cal, stops, s.opened_at, window)
            if at is not None:
                pts.append(_Point(at, "ack-due", "breach", "no-acknowledgement"))
        return pts

    def _elevation_point(
        self, s: CaseState, rule: PriorityRule, since: int, stops: list[tuple[int, int | None]]
    ) -> _Point | None:
        if s.emitted & ELEVATED or s.opened_at is None:
            return None
        if rule.elevate == "immediately":
            # Due when the priority began (spec section 3), whatever the hour. A case paused
            # now holds it like every point (`_held`); one raised during a pause that ended
            # since is owed at once, with that instant as its deadline.
            return _Point(since, "elevate-to-l2", "action", f"priority-{rule.priority}")
        if rule.elevate == "after" and rule.elevate_after is not None:
            after = _window(rule, "elevate_after", s.opened_at)
            due = _add(rule.calendar, stops, s.opened_at, after)
            if due is None:
                return None
            if s.eta_or_workaround is not None and s.eta_or_workaround <= due:
                return None
            return _Point(due, "elevate-to-l2", "action", "no-eta-or-workaround")
        return None

    def update_clock(
        self, s: CaseState, plan: Plan, rule: PriorityRule, stops: list[tuple[int, int | None]]
    ) -> tuple[int | None, int, int, int | None, int, int] | None:
        """(eta_point, anchor, window, warn_offset, start, e_start) of the update clock.

        Window k (k >= 1) spans counted time ((k-1)W, kW] after the anchor: a warning at its
        warn fraction, a breach at its end, each at the instant `_add(anchor, offset)`.
        `start` is where pending points begin (after the high-water mark) and `e_start` is
        the counted time from the anchor to it: a point at a counted offset beyond `e_start`
        is pending (one microsecond less when the point at `e_start` itself was moved past
        the high-water mark by a pause that begins there). Counted time is the calendar's open time
        outside the case's stops; for 24x7 without stops it is plain elapsed time.
        """
        if s.comm_first is None or s.comm_last is None:
            return None
        through = s.update_through
        anchor = s.comm_last
        if s.resolutions:
            reopened = self._last_reopen(s)
            if reopened is not None and reopened > anchor:
                # A reopened case is owed an update one full window after the reopen.
                anchor = reopened
        eta_point = None
        if s.eta is not None and s.eta_set_at is not None and s.eta > s.eta_set_at:
            # While the ETA is pending no periodic update is owed; when it passes, one breach,
            # then periodic updates from max(ETA, last communication). An ETA that passed
            # while the case was resolved was met by the resolution: no eta-passed for it.
            if (through is None or s.eta > through) and not _resolved_at(s, s.eta):
                eta_point = s.eta
            anchor = max(s.eta, anchor)
        window = _window(rule, "update_every", anchor)
        warn = None if plan.warn_fraction is None else round(plan.warn_fraction * window)
        start = anchor if through is None or through < anchor else through
        if start == anchor:
            e_start = 0
        elif not stops and rule.calendar.always_open:
            e_start = start - anchor  # the 24x7 path: plain arithmetic
        else:
            e_start = _elapsed(rule.calendar, stops, anchor, start)
            moved = _add(rule.calendar, stops, anchor, e_start) if e_start else start
            if moved is None or moved > start:
                # A pause learned late that begins exactly at the high-water mark moved the
                # point that stood there to the pause's end: that point is a new obligation
                # (spec section 7), pending like one a pause beginning earlier would move.
                e_start -= 1
        return eta_point, anchor, window, warn, start, e_start

    def _update_next(
        self, s: CaseState, plan: Plan, rule: PriorityRule, stops: list[tuple[int, int | None]]
    ) -> int | None:
        clock = self.update_clock(s, plan, rule, stops)
        if clock is None:
            return None
        eta_point, anchor, window, warn, _, e_start = clock
        if eta_point is not None:
            return eta_point  # every periodic point lies after the ETA
        k = e_start // window + 1  # the window `start` lies in
        cal = rule.calendar
        offset = k * window
        if warn is not None and offset - window + warn > e_start:
            offset = offset - window + warn
        if not stops and cal.always_open:
            return anchor + offset  # the 24x7 path: plain arithmetic
        return _add(cal, stops, anchor, offset)

    def _update_due(
        self,
        s: CaseState,
        plan: Plan,
        rule: PriorityRule,
        now: int,
        stops: list[tuple[int, int | None]],
    ) -> list[_Point]:
        """The update clock's pending points due by `now`. Only what evaluate() needs is
        listed: the first and last breach, the warnings around them (so their count tells a
        catch-up), never the whole run of windows a long outage spans."""
        clock = self.update_clock(s, plan, rule, stops)
        if clock is None:
            return []
        eta_point, anchor, window, warn, _, e_start = clock
        pts: list[_Point] = []
        if eta_point is not None:
            if eta_point > now:
                return pts
            pts.append(_Point(eta_point, "update-due", "breach", "eta-passed"))
        if now < anchor:
            return pts
        cal = rule.calendar

        def at(offset: int) -> int | None:
            """The instant of a point, or None when it is not due by now."""
            t = _add(cal, stops, anchor, offset)
            return t if t is not None and t <= now else None

        k = e_start // window + 1  # first window with a pending breach
        last_k = _elapsed(cal, stops, anchor, now) // window  # last window whose breach is due
        if last_k >= k and at(last_k * window) is None:
            last_k -= 1  # `now` is paused: the point it reached is owed when the pause ends
        if last_k >= k:
            first_warn = None if warn is None else (k - 1) * window + warn
            if first_warn is not None and first_warn > e_start:
                t = at(first_warn)
                if t is not None:
                    pts.append(_Point(t, "update-due", "warning", "interval"))
            t = at(k * window)
            if t is not None:
                pts.append(_Point(t, "update-due", "breach", "interval"))
            if last_k > k:
                t = at(last_k * window)
                if t is not None:
                    pts.append(_Point(t, "update-due", "breach", "interval"))
        cur_warn = None if warn is None else last_k * window + warn
        if cur_warn is not None and e_start < cur_warn:
            t = at(cur_warn)
            if t is not None:
                pts.append(_Point(t, "update-due", "warning", "interval"))
        return pts

    def at_risk(self, s: CaseState) -> list[str]:
        """Clocks whose warning went out and whose breach is still pending ("ack", "update")."""
        if s.resolved:
            return []
        cur = self.current(s)
        if cur is None:
            return []
        plan, rule, _ = cur
        out = []
        if s.comm_first is None and s.emitted & (ACK_WARNED | ACK_BREACHED) == ACK_WARNED:
            out.append("ack")
        if s.update_through is not None:
            stops = self.stops(s, plan)
            clock = self.update_clock(s, plan, rule, stops)
            if clock is not None:
                eta_point, _, window, warn, start, e_start = clock
                if eta_point is None and warn is not None and start == s.update_through:
                    k = e_start // window + 1
                    if (k - 1) * window + warn == e_start:
                        out.append("update")
        return out

    def next_due(self, s: CaseState) -> int | None:
        """The earliest instant at which evaluate() would emit something, or None.

        This is what the deadline index holds per case; nothing fires for unopened or resolved
        cases, so they have none. (Called after every event: kept free of allocations.)
        """
        rz = s.resolutions
        if s.opened_at is None or (rz and rz[-1][2]):  # unopened, or resolved
            return None
        cur = self.current(s)
        if cur is None:
            return None
        plan, rule, since = cur
        stops = self.stops(s, plan) if s.statuses or rz else _NO_STOPS
        if stops and stops[-1][1] is None:  # paused now: only an ETA can come out
            clock = self.update_clock(s, plan, rule, stops)
            return None if clock is None else clock[0]
        best: int | None = None
        emitted = s.emitted
        if s.comm_first is None:
            ack = -1
            window = (
                rule.window("acknowledge", s.opened_at) if rule.business_days else rule.acknowledge
            )
            if plan.warn_fraction is not None and not emitted & (ACK_WARNED | ACK_BREACHED):
                ack = round(plan.warn_fraction * window)
            elif not emitted & ACK_BREACHED:
                ack = window
            if ack >= 0:
                cal = rule.calendar
                if not stops and cal.always_open:
                    best = s.opened_at + ack  # the 24x7 path: plain arithmetic
                else:
                    best = _add(cal, stops, s.opened_at, ack)
        if not emitted & ELEVATED:
            el = self._elevation_point(s, rule, since, stops)
            if el is not None and (best is None or el.at < best):
                best = el.at
        upd = self._update_next(s, plan, rule, stops)
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
        rz = s.resolutions
        if rz and rz[-1][2]:  # resolved
            return []
        cur = self.current(s)
        if cur is None:
            return []
        plan, rule, since = cur
        stops = self.stops(s, plan) if s.statuses or s.resolutions else _NO_STOPS
        out: list[Alert] = []
        if stops and stops[-1][1] is None:
            # Paused now (the latest status is a pause status): every point is held, also
            # one that fell due before the pause began and is learned or recomputed while it
            # lasts; they come out with the catch-up rule when it ends. Only eta-passed fires.
            clock = self.update_clock(s, plan, rule, stops)
            if clock is not None and clock[0] is not None and clock[0] <= now:
                p = _Point(clock[0], "update-due", "breach", "eta-passed")
                s.update_through = p.at
                out.append(self._alert(s, plan, rule, p, stamp, False))
            return out

        ack_due = [p for p in self._ack_points(s, plan, rule, stops) if p.at <= now]
        if ack_due:
            chosen = ack_due[-1]  # the breach when it is due, else the warning
            s.emitted |= ACK_WARNED | (ACK_BREACHED if chosen.stage == "breach" else 0)
            out.append(self._alert(s, plan, rule, chosen, stamp, len(ack_due) > 1))

        el = self._elevation_point(s, rule, since, stops)
        if el is not None and el.at <= now:
            s.emitted |= ELEVATED | (ELEVATED_TIMED if el.reason == "no-eta-or-workaround" else 0)
            out.append(self._alert(s, plan, rule, el, stamp, False))

        upd = self._update_due(s, plan, rule, now, stops)
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
            rule.calendar.name,
        )


# --- counted time: the calendar's open time outside a case's stops ---------------------------


def _window(rule: PriorityRule, name: str, start: int) -> int:
    """The counted length of one of the rule's windows when it starts at `start`: the field
    itself for a duration (every window of a plan without business days: no call, no lookup
    on the hot path), `PriorityRule.window` for one written in business days."""
    if rule.business_days:
        return rule.window(name, start)
    value: int = getattr(rule, name)
    return value


def _resolved_at(s: CaseState, t: int) -> bool:
    """Whether the case was resolved at instant `t` (by its resolve and reopen facts)."""
    state = False
    for at, _, flag in s.resolutions:
        if at > t:
            break
        state = flag == 1
    return state
