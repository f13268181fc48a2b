"""Scale out and in under full load (issue 20): 1, then 3, then 2, then 1 workers.

Six partitions on rocksdb:// (each worker its own data dir, kept while it is down), FAULT_POLICY
and the load (load.LoadGenerator, ~150 messages/s: new cases, notes, communications, ETAs,
priority changes, resolutions, resends), so deadlines fall due all the time. w1 serves alone
for SEED_S; then w2 and w3 start together (1 -> 3), w3 stops gracefully (3 -> 2), w2 is
SIGKILLed (2 -> 1: its partitions wait out the session timeout), each change once the group
settled after the previous one (membership.Coverage: every partition served by exactly one
ready worker) and FULL_S after it. Partitions go back to workers whose RocksDB holds older
rows of them (w1 takes back what it gave away), and to workers that never had them.

Unlike test_membership_churn, the load never goes quiet (no load.staged_fault): decisive
facts (communications, ETAs, priority changes, resolutions) keep coming at the full rate while
partitions change hands and timers fire, with one rule added to the load's margin
(`MovingLoad`). A partition's new owner holds its timers until it read the input backlog of
the takeover, then evaluates every deadline that fell due meanwhile, judging each case on every
fact that reached it (docs/semantics.md, section 4, and "No communication has arrived"): a
priority change applied before the evaluation stamps its priority on the alert, an
acknowledgement or a resolution suppresses it, an immediate elevation owed for a priority run
that ended meanwhile is owed no more. Replay fires those deadlines when they fall due, before
the facts that occurred after them. So a decisive fact for a case with an alert due since its
partition stopped being served makes the live service and replay disagree by contract (a run
without the rule: 16 spurious and 175 lost alerts, of 116 cases, each with an alert replay
fired after its partition's owner stopped serving it and a decisive fact after that alert, sent
before the new owner evaluated the case). So while the group changes (`Moving`: from a change
until CALM_S after it settled, as the new owner evaluates the backlog's deadlines up to 1.5 s
after it says it is ready), a decisive fact goes only to a case with no alert since the change
began (less the margin), as the load keeps decisive facts clear of deadlines anyway; the
others get a neutral note instead.

Figures per change: how long until the group settled, how long some partition had no ready
owner, the longest such gap of one partition; for the run: the alert figures, decisive facts
sent and held back while the group changed. Asserted: w1 alone runs at the end; decisive facts
were sent and alerts fell due while the group changed; the live alerts against replay of the
exact bytes sent (comparison.compare_with_replay): nothing lost unless a catch-up stands for
it, nothing spurious, repeats only as copies with the same alert_id, no storm after a takeover.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

from tests.integration.deployment import Deployment, WorkerProcess
from tests.integration.expectations import due
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, scaled
from tests.integration.faults.load import FAULT_POLICY, LoadGenerator
from tests.integration.faults.membership import Change, Coverage, Membership
from tests.integration.times import US, now_us

PARTITIONS = 6
SEED_S = 6.0
FULL_S = 5.0
TAIL_S = 4.0
CALM_S = 3.0
PLAN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start", ("w2", "w3")),
    ("stop", ("w3",)),
    ("kill", ("w2",)),
)
"""Ends as it starts (w1 alone), so it can be repeated (CASECLOCK_FAULT_SCALE)."""
CYCLES = scaled(1)


class Moving:
    """The spans of the run in which partitions change hands: from the start of a change
    until CALM_S after the group settled after it."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int | None]] = []
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            self.spans.append((now_us(), None))

    def end(self, settled_us: int) -> None:
        with self._lock:
            self.spans[-1] = (self.spans[-1][0], settled_us + round(CALM_S * US))

    def since(self, at_us: int) -> int | None:
        """When the span that `at_us` falls in began; None outside every span."""
        with self._lock:
            return next((a for a, b in self.spans if a <= at_us and (b is None or at_us < b)), None)


class MovingLoad(LoadGenerator):
    """The load, and while partitions move (`moving`), a decisive fact only for a case whose
    alerts all fired (in the shadow replay) the margin before the move began."""

    def __init__(self, dep: Deployment, moving: Moving, **kwargs: Any) -> None:
        super().__init__(dep, **kwargs)
        self.moving = moving

    def _clear_of_deadlines(self, case: str, at: int) -> bool:
        if not super()._clear_of_deadlines(case, at):
            return False
        since = self.moving.since(at)
        if since is None:
            return True
        prev = self.last_fired.get(case)
        clear = prev is None or prev < since - self.margin_us
        self.counts["decisive-while-moving" if clear else "held-back-while-moving"] += 1
        return clear


def scale(members: Membership, kind: str, names: tuple[str, ...]) -> Change:
    """One membership change of several workers at once: all but the last made first, the
    last through Membership.apply (which times the change from it, until the group settled)."""
    *first, last = names
    for name in first:
        w = members.by_name[name]
        if kind == "start":
            w.start()
        else:
            w.stop()
    change = members.apply(kind, last)
    change.worker = "+".join(names)
    return change


def test_scale_under_load(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        partitions=PARTITIONS,
        policy=FAULT_POLICY,
        session_timeout=6.0,
        extra_env={"CASECLOCK_STORE": "rocksdb://"},
    )
    workers = [WorkerProcess(dep, f"w{i}") for i in (1, 2, 3)]
    moving = Moving()
    load = MovingLoad(dep, moving, rate=150, seed=4)
    try:
        with Coverage(workers, dep.partitions) as coverage:
            members = Membership(workers, coverage)
            workers[0].start()
            coverage.wait(coverage.settled, now_us(), 120, "w1 serving every partition")
            t0 = now_us()
            load.start()
            time.sleep(SEED_S)
            for kind, names in itertools.islice(itertools.cycle(PLAN), CYCLES * len(PLAN)):
                moving.begin()
                change = scale(members, kind, names)
                moving.end(change.settled_us)
                load.check()
                time.sleep(FULL_S)
            sent, cutoff, live = load.finish(TAIL_S)
            running = {w.name for w in workers if w.alive()}
            changes = members.changes
            per_change = [
                {
                    **c.figures(t0),
                    "longest_gap_s": max(coverage.longest_gaps(c.at_us, c.settled_us).values()),
                }
                for c in changes
            ]
            gaps = coverage.longest_gaps()
    finally:
        load.stop()
        for w in workers:
            w.stop()

    figures.update(
        partitions=PARTITIONS,
        membership_changes=len(changes),
        changes=per_change,
        settled_after_s_max=max(c["settled_after_s"] for c in per_change),
        longest_gap_s_max=max(c["longest_gap_s"] for c in per_change),
        longest_unserved_s_per_partition=gaps,
        stalls=members.stalls(),
        **load.figures(),
    )
    assert running == {"w1"}, f"running at the end: {sorted(running)}"
    assert load.counts["decisive-while-moving"] > 0, f"no decisive fact moved: {load.counts}"
    expected, _ = compare_with_replay(
        dep,
        sent,
        live,
        figures,
        t0_us=t0,
        cutoff_us=cutoff,
        faults_us=[c.at_us for c in changes],
        outages=[(c.at_us, c.settled_us) for c in changes],
        logs=[w.log_path for w in workers],
        takeover=members.takeover,
    )
    # The scenario did what it is for: alerts fell due while every change settled.
    for c in changes:
        assert any(c.at_us < due(a) <= c.settled_us for a in expected), (
            f"nothing fell due during {c.kind} {c.worker}"
        )
    print(f"\nscale under load: {figures.values}")
