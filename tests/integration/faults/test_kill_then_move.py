"""Kill, then move (issue 20): a worker killed -9 in the narrow windows of its data path and
restarted on the same RocksDB data dir, again and again under load; then its partitions move to
a worker with an empty data dir, which has only the changelog to go by.

One worker, w1 (rocksdb://, its own data dir; static membership, as the StatefulSet runs it, so
that a restart takes its partitions back without waiting out the session timeout), under the
load of support.LoadGenerator (150 messages/s: new cases, notes, communications, ETAs,
priority changes, resolutions, resends). CYCLES times (CI: 8, each window twice;
CASECLOCK_FAULT_SCALE=1.25 gives the issue's 10, 2.5 gives 20), w1 is stopped and started
again with CASECLOCK_FAILPOINTS armed at one of the windows in turn, at its K-th hit, K drawn
from a seeded RNG (1..MAX_HIT; the windows are hit tens of times a second, so the kill lands
within a second of the restart serving, in its backlog or the ingest right after it):

* `changelog-before-send`: a flush's rows are in the store's memory (or, before issue 20's
  fix, in RocksDB already), their changelog records not yet handed to the producer;
* `changelog-after-ack`: a changelog batch is acknowledged, its rows and offset not yet stored;
* `input-before-ack`: a fetch's rows are flushed, its input not yet acknowledged;
* `alerts-before-row`: a timer chunk's alerts are acknowledged, the rows recording them not yet
  written.

w1 must die by SIGKILL having logged that failpoint's line (the window was hit); it is started
again at once on the same data dir without failpoints, as a supervisor would, until it serves
its partitions again. Then the move: w1 is killed for good and w2, a new member with an empty
data dir, takes every partition and recovers the table from the changelog alone. The load
ends, the deadlines of a tail fall due, the input is drained, w2 stops cleanly.

The load goes quiet (load.staged_fault: only facts that suppress nothing) from each stop until
the restarted worker read its backlog (a decisive fact sent while nobody serves the case can
land after a deadline that replay fires before it), but not before: the facts in flight at the
stop are in the backlog the armed worker reads first, where its kill lands. So is a dormant
batch per cycle (DORMANT cases on the `dormant` plan: acknowledge within 20 s, updates hourly):
opened while the worker is healthy, acknowledged (a public support note) right after the stop.
Nothing else ever writes their rows (nothing is due for an hour once they are acknowledged), so
an acknowledgement whose row reaches RocksDB but not the changelog stays lost, and after the
move the new owner sends a false ack breach for it (due 20 s after the opening; its warning at
10 s, or the breach as a catch-up once the new owner takes the case over).

Checked (both, so that one failing does not hide the other):

(a) the alerts of the whole run against replay of the exact bytes sent
    (comparison.compare_with_replay: nothing lost unless a catch-up stands for it, nothing
    spurious, repeats only as copies with the same alert_id, no storm after a takeover,
    nothing due after its case was resolved);
(b) the latest changelog row of every case holds every fact replay applied
    (changelog.row_mismatches): the changelog read to its end with a plain consumer, the last
    record per key decoded with caseclock's own `rows.decode_row`, against the CaseState the
    engine folds from the exact bytes sent. Compared: every folded fact (opening, plan,
    customer, subject, priority history, first and last communication, ETA, workaround,
    resolutions, statuses), which fold by min/max and ordered sets and so must be equal
    whatever order the worker applied them in; and the applied event ids (`seen`, digests of
    the last 64) as a set for every case with no more than 64 of them, the only trace of a
    note that changes no clock. Not compared: `created` (the worker's clock) and what was
    emitted (once-per-case flags, the update clock's high-water mark), which is (a)'s
    business. A missing row or tombstone passes only for a case replay has closed longer than
    the retention (7 d: none here). This is what a new owner recovers: a row that reached
    RocksDB but never the changelog (a kill between the two, then a restart that reads the
    uncommitted input again, finds only duplicates and writes nothing) shows here even when no
    alert depended on it.

Figures: per kill the window, K, whether it was hit, how long the armed worker ran, whether it
died while the load was quiet, how long until its partitions were served again; the move's;
the alert figures; the changelog's (cases, rows, cases behind, which fields and events they
lack, the first of them).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from caseclock.cli.simulator import event_doc
from caseclock.live import failpoints
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.faults.changelog import latest_rows, row_mismatches
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, elapsed_s, run_checks, scaled
from tests.integration.faults.load import FAULT_POLICY, LoadGenerator, Outgoing, staged_fault
from tests.integration.faults.membership import Coverage, Membership
from tests.integration.faults.offsets import wait_drained
from tests.integration.times import iso, now_us

WINDOWS = ("changelog-before-send", "changelog-after-ack", "input-before-ack", "alerts-before-row")
CYCLES = scaled(8)
MAX_HIT = 20
SEED = 20
SEED_S = 6.0
BETWEEN_S = 2.0
TAIL_S = 4.0
DIE_TIMEOUT_S = 90.0
DORMANT = 20
"""Dormant cases per cycle, acknowledged at DORMANT_RATE messages/s from the stop on, so that
their acknowledgements span the armed worker's first seconds."""
DORMANT_RATE = 5.0
DORMANT_POLICY = """
[plans.dormant]
warn_fraction = 0.5
[plans.dormant.priorities.3]
time_to_open = "1h"
acknowledge = "20s"
update_every = "1h"
elevate = "never"
"""


def dormant(dep: Deployment, cycle: int, type_: str) -> list[Outgoing]:
    """The cycle's dormant cases' `case-opened` (plan dormant, P3) or acknowledgement."""
    at = now_us()
    fields: dict[str, Any] = (
        {"plan": "dormant", "priority": 3}
        if type_ == "case-opened"
        else {"author": "support", "visibility": "public"}
    )
    out = []
    for i in range(DORMANT):
        case = f"D-{cycle:02d}-{i:02d}"
        doc = event_doc(type_, case, iso(at), f"{case}-{type_}", **fields)
        out.append(Outgoing(dep.topic(type_), case.encode(), orjson.dumps(doc), at, "dormant"))
    return out


def crash(
    w: WorkerProcess,
    members: Membership,
    load: LoadGenerator,
    cycle: int,
    nth: int,
    t0: int,
) -> tuple[dict[str, Any], tuple[int, int]]:
    """Stop `w` and start it with failpoint WINDOWS[cycle] armed at its `nth` hit, quiet (the
    cycle's dormant cases acknowledged meanwhile) until it served and read its backlog, unless
    it died first; wait until it killed itself there; start it again without (Membership
    "start": until the group settled), quiet until it read its backlog. Returns the kill's
    figures and the outage (from the stop until settled again)."""
    window = WINDOWS[cycle % len(WINDOWS)]
    coverage = members.coverage
    with staged_fault(load, committed_first=False, unless=lambda: not w.alive()) as armed:
        armed.start_us = now_us()
        w.stop()
        load.inject(dormant(load.dep, cycle, "case-noted"), DORMANT_RATE)
        started = now_us()
        w.start({failpoints.ENV: f"{window}:{nth}"})
        up = coverage.wait(
            lambda s: coverage.settled(s) or w.name not in s.alive,
            started,
            120,
            f"{w.name} armed at {window}:{nth} to serve, or die",
        )
        armed.recovered_us = up.at_us
    died_quiet = not w.alive()
    status = w.wait_exit(DIE_TIMEOUT_S)
    died_us = now_us()
    hit = f"failpoint {window} reached: SIGKILL" in w.run_log()
    assert status == -signal.SIGKILL and hit, (
        f"{window}:{nth}: exit status {status}, the failpoint's line "
        f"{'logged' if hit else 'missing'}:\n{w.log_tail()}"
    )
    with staged_fault(load, committed_first=False) as fw:
        change = members.apply("start", w.name)
        fw.start_us, fw.recovered_us = change.at_us, change.settled_us
    kill = {
        "window": window,
        "hit_count": nth,
        "hit": hit,
        "died_after_s": elapsed_s(started, died_us),
        "died_while_quiet": died_quiet,
        **change.figures(t0),
    }
    return kill, (armed.start_us, change.settled_us)


def test_kill_then_move(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        policy=FAULT_POLICY + DORMANT_POLICY,
        session_timeout=6.0,
        extra_env={"CASECLOCK_STORE": "rocksdb://"},
    )
    w1 = WorkerProcess(dep, "w1", {"CASECLOCK_GROUP_INSTANCE_ID": f"{unique_prefix}-0"})
    w2 = WorkerProcess(dep, "w2", {"CASECLOCK_GROUP_INSTANCE_ID": f"{unique_prefix}-1"})
    load = LoadGenerator(dep, rate=150, seed=SEED)
    rng = random.Random(SEED)
    kills: list[dict[str, Any]] = []
    outages: list[tuple[int, int]] = []
    try:
        with Coverage([w1, w2], dep.partitions) as coverage:
            members = Membership([w1, w2], coverage)
            w1.start().wait_ready()
            t0 = now_us()
            load.start()
            time.sleep(SEED_S)
            for cycle in range(CYCLES):
                load.inject(dormant(dep, cycle, "case-opened"), 4 * DORMANT_RATE)
                time.sleep(BETWEEN_S)
                kill, outage = crash(w1, members, load, cycle, rng.randint(1, MAX_HIT), t0)
                kills.append(kill)
                outages.append(outage)
            time.sleep(BETWEEN_S)
            with staged_fault(load, committed_first=False) as moved:
                w1.kill()  # for good: its data dir goes with it
                moved.start_us = now_us()
                move = members.apply("start", "w2")
                moved.recovered_us = move.settled_us
            outages.append((moved.start_us, move.settled_us))
            time.sleep(BETWEEN_S)
            sent, cutoff, live = load.finish(TAIL_S)
            assert w2.alive() and not w1.alive(), w2.log_tail()
            stalls = members.stalls()
            drained_s = wait_drained(dep, 120, "the input, before the changelog is read")
        w2.stop()  # cleanly: every changelog record it handed over is sent
        rows = run(latest_rows(dep))
    finally:
        load.stop()
        w1.stop()
        w2.stop()

    changes = members.changes
    figures.update(
        kills=len(kills),
        kills_per_window={w: sum(1 for k in kills if k["window"] == w) for w in WINDOWS},
        windows_hit=sorted({k["window"] for k in kills if k["hit"]}),
        died_while_quiet=sum(1 for k in kills if k["died_while_quiet"]),
        per_kill=kills,
        move=move.figures(t0),
        served_again_after_s_max=max(c.figures(t0)["settled_after_s"] for c in changes),
        drained_after_s=drained_s,
        dormant_cases=DORMANT * CYCLES,
        stalls=stalls,
        **load.figures(),
    )

    def alerts_match_replay() -> None:
        compare_with_replay(
            dep,
            sent,
            live,
            figures,
            t0_us=t0,
            cutoff_us=cutoff,
            faults_us=[c.at_us for c in changes],
            outages=outages,
            logs=[w1.log_path, w2.log_path],
            takeover=members.takeover,
        )

    def changelog_holds_every_fact() -> None:
        problems, found = row_mismatches(dep, sent, rows, t0_us=t0, cutoff_us=cutoff)
        figures.update(changelog=found, changelog_behind=problems[:20])
        assert not problems, (
            f"{len(problems)} of {found['cases']} cases: the changelog's latest row lacks facts "
            "replay applied:\n" + "\n".join(problems[:10])
        )

    run_checks(figures, alerts_match_replay, changelog_holds_every_fact)
    print(f"\nkill then move: {figures.values}")
