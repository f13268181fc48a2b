"""Store failure (issue 20): the data volume fills up under load, then is freed.

One worker, w1, on rocksdb:// with its data dir on a small tmpfs of its own
(outages.small_volume: the test runs as root), CASECLOCK_COMMIT_STALL_TIMEOUT=STALL_S, and
the load of support.LoadGenerator (150 messages/s, FAULT_POLICY) throughout. Two faults, each
staged (load.staged_fault: the load goes quiet, sending only facts that suppress nothing, and
the worker commits past every decisive fact first; after, the backlog is committed before
decisive facts go again):

1. a short fill: a filler file takes the volume's last byte (ENOSPC), so RocksDB's writes
   fail. While it is full: /readyz is 503 with a "failure" naming the store within a few
   seconds, caseclock_input_stopped is 1 on /metrics, and the group's committed offsets of
   the input partitions stay put while the load goes on producing. The filler is freed
   before the stall timeout: the worker is ready again without a restart, and reads on.
2. a long fill: the volume stays full past the stall timeout, so the worker exits with status
   75 (the watchdog's "input not acknowledged for N s: ...", or its commit check's
   "committed offsets of ... have not caught up", whichever comes first). The
   harness's supervisor starts it again at once, on the still full volume, and what that
   process does is recorded (figures: `restart_on_full_volume`: it joins the group once the
   dead member's session expired, then Faust's app crashes when RocksDB cannot open a
   partition's database, opening writes the WAL into a table file; `caseclock worker` exits
   75 then too, asserted if it exited by the time the volume is freed); then the
   filler is freed, a process that exited otherwise than with 75 is started again (as a
   supervisor with restartPolicy Always would), and the worker serves every partition and
   drains the input.

While the volume is full, writes that still fit in a page RocksDB's files already hold go
through for a second or two, so readiness may flap at first (SETTLE_S); the filler keeps
taking whatever is freed (figures: `topped_up`).

Then the alerts of the whole run are compared with replay of the exact bytes sent
(comparison.compare_with_replay: nothing lost unless a catch-up stands for it, nothing
spurious, repeats only as copies with the same alert_id): nothing acknowledged was lost.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from tests.integration.deployment import Deployment, WorkerProcess
from tests.integration.faults.figures import Figures, elapsed_s
from tests.integration.faults.load import FAULT_POLICY, FaultWindow, staged_fault
from tests.integration.faults.outages import (
    Filler,
    committed,
    free_bytes,
    held_offsets,
    readiness,
    readiness_during,
    small_volume,
    wait_metric,
    wait_stopped,
)
from tests.integration.faults.under_load import UnderLoad, under_load
from tests.integration.scripts import partition_of
from tests.integration.times import now_us

STALL_S = 20.0
"""CASECLOCK_COMMIT_STALL_TIMEOUT: the short fill is freed well before it, the long one not."""
VOLUME_MB = 64
FULL_S = 4.0
SETTLE_S = 3.0
"""After the failure shows, how long until the committed offsets are watched: writes that
still fit in a page RocksDB's files already hold go through for a second or two (and Faust
commits what they made durable within its commit interval, 2.8 s)."""
HOLD_S = 4.0
"""How long the committed offsets are watched while the volume is full (short fill)."""
ON_FULL_S = 15.0
"""How long the process the supervisor restarts runs on the full volume before it is freed."""
TAIL_S = 4.0


def stopped_by_store(
    worker: WorkerProcess, filler: Filler, fw: FaultWindow, volume: Path
) -> dict[str, Any]:
    """Fill the volume; wait until /readyz says the store failed."""
    fw.start_us = now_us()
    filled = filler.fill()
    left = free_bytes(volume)
    stopped_s, failure = wait_stopped(worker, "store", 15.0)
    return {
        "filler_mb": round(filled / (1 << 20), 1),
        "free_bytes_when_full": left,
        "readyz_503_after_s": stopped_s,
        "failure": failure,
    }


def gauge_set(worker: WorkerProcess, fw: FaultWindow) -> float:
    """Wait until caseclock_input_stopped is 1 (the watchdog sets it every 5 s at most);
    seconds since the fill."""
    wait_metric(worker, "caseclock_input_stopped", 1, 15.0)
    return elapsed_s(fw.start_us)


def crash_reason(worker: WorkerProcess) -> str | None:
    """The reason of the last "Crashed" line of the worker's log (Faust's app crashed)."""
    _, found, crashed = worker.log_path.read_text(errors="replace").rpartition("Crashed reason=")
    return crashed.splitlines()[0][:160] if found else None


def short_fill(run: UnderLoad, filler: Filler, volume: Path) -> tuple[FaultWindow, int]:
    """Fill, check what the worker says and that its input is not committed, free before the
    stall timeout, wait until it serves again without a restart; (the fault, when freed)."""
    worker, load, dep = run.worker, run.load, run.worker.dep
    with staged_fault(load) as fw:
        seen = stopped_by_store(worker, filler, fw, volume)
        settling = readiness_during(worker, SETTLE_S)  # writes that still fit
        before, sent_before = committed(dep), dict(load.marks)
        while_full = readiness_during(worker, HOLD_S)
        after, sent_after = committed(dep), dict(load.marks)
        held_offsets(before, after, sent_before, sent_after)
        seen.update(input_stopped_gauge_after_s=gauge_set(worker, fw))
        assert worker.alive() and worker.restarts == 0, worker.log_tail()
        filler.free()
        up_us = now_us()
        seen.update(
            readyz_settling=dict(settling),
            readyz_while_held=dict(while_full),
            topped_up=filler.topped_up,
        )
        fw.recovered_us = run.coverage.wait(
            run.coverage.settled, up_us, 60, "ready again after the short fill"
        ).at_us
    assert worker.restarts == 0, f"restarted during the short fill: {worker.log_tail()}"
    seen.update(
        full_for_s=elapsed_s(fw.start_us, up_us),
        ready_after_freed_s=elapsed_s(up_us, fw.recovered_us),
        **fw.figures(run.t0_us),
    )
    run.figures.update(short_fill=seen)
    return fw, up_us


def long_fill(run: UnderLoad, filler: Filler, volume: Path) -> tuple[FaultWindow, int, int]:
    """Fill until the worker exits with status 75; let the supervisor's restart run on the
    full volume; free it, start the worker again if it is down; wait until it serves again.
    (the fault, when the worker exited, when it served again)."""
    worker = run.worker
    with staged_fault(run.load) as fw:
        seen = stopped_by_store(worker, filler, fw, volume)
        seen.update(input_stopped_gauge_after_s=gauge_set(worker, fw))
        proc = worker.proc
        assert proc is not None
        try:
            status = proc.wait(STALL_S + 30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"no exit {STALL_S + 30}s after the fill: {worker.log_tail()}"
            ) from None
        exit_us = now_us()
        assert status == 75, f"exit status {status}: {worker.log_tail()}"
        time.sleep(ON_FULL_S)  # the supervisor restarted it, on the full volume
        seen.update(
            restart_on_full_volume={
                "alive": worker.alive(),
                "exit_status": None if worker.proc is None else worker.proc.poll(),
                "readyz": readiness(worker)[0],
                "restarts": worker.restarts,
                "crashed": crash_reason(worker),
            }
        )
        restarted = seen["restart_on_full_volume"]["exit_status"]
        assert restarted in (None, 75), f"restart on the full volume: exit {restarted}"
        filler.free()
        up_us = now_us()
        if not worker.alive():  # a supervisor restarts any exit
            worker.start()
        fw.recovered_us = run.coverage.wait(
            run.coverage.settled, up_us, 120, "ready again after the long fill"
        ).at_us
    seen.update(
        topped_up=filler.topped_up,
        exit_75_after_s=elapsed_s(fw.start_us, exit_us),
        ready_after_freed_s=elapsed_s(up_us, fw.recovered_us),
        **fw.figures(run.t0_us),
    )
    run.figures.update(long_fill=seen)
    return fw, exit_us, fw.recovered_us


def test_store_failure(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        policy=FAULT_POLICY,
        extra_env={
            "CASECLOCK_STORE": "rocksdb://",
            "CASECLOCK_COMMIT_STALL_TIMEOUT": str(STALL_S),
        },
    )
    worker = WorkerProcess(dep, "w1")
    with (
        small_volume(worker.data_dir, VOLUME_MB) as volume,
        Filler(volume) as filler,
        under_load(worker, seed=3, full_s=FULL_S, figures=figures) as run,
    ):
        short, short_up = short_fill(run, filler, volume)
        time.sleep(FULL_S)
        long, exit_us, back_us = long_fill(run, filler, volume)
        time.sleep(FULL_S / 2)
        sent, cutoff, live = run.finish(TAIL_S)
    takeovers = {p: run.coverage.takeover(p, exit_us, back_us) for p in range(dep.partitions)}

    def takeover(i: int, case_id: str) -> tuple[int, int] | None:
        if i == 0:  # the worker kept serving; what it had not read, it reads once freed
            return short_up, short_up
        return takeovers[partition_of(case_id.encode(), dep.partitions)]

    run.compare(
        sent,
        live,
        cutoff,
        [(short.start_us, short.start_us, short.end_us), (exit_us, long.start_us, long.end_us)],
        takeover,
    )
    print(f"\nstore failure: {figures.values}")
