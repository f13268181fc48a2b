"""One worker under the load, the frame of the single-worker fault scenarios.

`under_load` starts the worker, waits until it is ready, samples its readiness (Coverage,
which also restarts it after a watchdog exit, status 75), runs the load at full rate for a
while, and stops both on the way out; `UnderLoad.finish` ends the load and reads the alerts,
`UnderLoad.compare` checks them against replay (comparison.compare_with_replay).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.integration.deployment import WorkerProcess
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures
from tests.integration.faults.load import LoadGenerator
from tests.integration.faults.membership import Coverage
from tests.integration.scripts import Sent
from tests.integration.times import now_us


@dataclass
class UnderLoad:
    worker: WorkerProcess
    load: LoadGenerator
    coverage: Coverage
    figures: Figures
    t0_us: int
    """When the load began."""

    def finish(self, tail_s: float) -> tuple[list[Sent], int, list[dict[str, Any]]]:
        """LoadGenerator.finish, then check that the worker still runs; records the load's
        figures and the worker's watchdog exits (restarted: `stalls`)."""
        sent, cutoff, live = self.load.finish(tail_s)
        assert self.worker.alive(), self.worker.log_tail()
        log = self.worker.log_path.read_text(errors="replace")
        self.figures.update(
            **self.load.figures(),
            stalls=self.worker.restarts,
            watchdog_exits=log.count("exiting so that the worker is restarted"),
        )
        return sent, cutoff, live

    def compare(
        self,
        sent: Sequence[Sent],
        live: Sequence[Mapping[str, Any]],
        cutoff_us: int,
        faults: Sequence[tuple[int, int, int]],
        takeover: Callable[[int, str], tuple[int, int] | None],
    ) -> list[dict[str, Any]]:
        """compare_with_replay of the run; `faults`: (fault, outage start, outage end) each.
        Returns replay's alerts."""
        expected, _ = compare_with_replay(
            self.worker.dep,
            sent,
            live,
            self.figures,
            t0_us=self.t0_us,
            cutoff_us=cutoff_us,
            faults_us=[at for at, _, _ in faults],
            outages=[(start, end) for _, start, end in faults],
            logs=[self.worker.log_path],
            takeover=takeover,
        )
        return expected


@contextlib.contextmanager
def under_load(
    worker: WorkerProcess, *, seed: int, full_s: float, figures: Figures
) -> Iterator[UnderLoad]:
    """`worker` started and ready, the load (150 messages/s, seeded) running for `full_s`;
    the load and the worker are stopped on exit."""
    load = LoadGenerator(worker.dep, rate=150, seed=seed)
    try:
        with Coverage([worker], worker.dep.partitions) as coverage:
            worker.start().wait_ready()
            t0 = now_us()
            load.start()
            time.sleep(full_s)
            yield UnderLoad(worker, load, coverage, figures, t0)
    finally:
        load.stop()
        worker.stop()
