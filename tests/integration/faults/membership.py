"""Which partitions the workers serve, and membership changes measured against that.

`Coverage` samples every worker's /readyz in a thread; `Membership` kills, stops, starts and
restarts workers and times until the group settled, and bounds each partition's takeover for
the no-storm check (`fault_checks.check_faults`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.integration.deployment import WorkerProcess
from tests.integration.faults.figures import elapsed_s
from tests.integration.scripts import partition_of
from tests.integration.times import US, now_us


@dataclass
class Sample:
    at_us: int
    owned: dict[str, frozenset[int] | None]
    """Per worker: the partitions of a ready worker, or None (down, or not ready)."""
    alive: frozenset[str]


class Coverage:
    """Which partitions the workers serve, sampled from their /readyz every `interval` s in a
    thread (which also restarts a worker whose watchdog fired, as its supervisor would).

    A partition is *served* when exactly one ready worker claims it; the deployment is
    *settled* when every partition is served and every running worker serves some (when there
    are at least as many partitions as workers): a rebalance is over."""

    def __init__(
        self, workers: Sequence[WorkerProcess], partitions: int, interval: float = 0.2
    ) -> None:
        self.workers = list(workers)
        self.partitions = partitions
        self.interval = interval
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="coverage", daemon=True)

    def __enter__(self) -> Coverage:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _probe(self, w: WorkerProcess) -> frozenset[int] | None:
        w.supervise()
        if not w.alive():
            return None
        doc = w.readyz(timeout=1.0)
        return (
            frozenset(doc.get("partitions", ())) if doc is not None and doc.get("ready") else None
        )

    def _main(self) -> None:
        while not self._stop.is_set():
            at = now_us()  # when probing began: a sample never predates a change it saw
            owned = {w.name: self._probe(w) for w in self.workers}
            alive = frozenset(w.name for w in self.workers if w.alive())
            with self._lock:
                self.samples.append(Sample(at, owned, alive))
            self._stop.wait(self.interval)

    def served(self, s: Sample) -> bool:
        claims = Counter(p for parts in s.owned.values() if parts for p in parts)
        return set(claims) == set(range(self.partitions)) and all(n == 1 for n in claims.values())

    def settled(self, s: Sample) -> bool:
        if not self.served(s):
            return False
        if len(s.alive) > self.partitions:
            return True
        return all(s.owned.get(name) for name in s.alive)

    def _since(self, after_us: int) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.at_us >= after_us]

    def wait(
        self, pred: Callable[[Sample], bool], after_us: int, timeout: float, what: str
    ) -> Sample:
        """The first sample taken at or after `after_us` for which `pred` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = next((s for s in self._since(after_us) if pred(s)), None)
            if hit is not None:
                return hit
            time.sleep(self.interval)
        last = self._since(after_us)[-1:]
        tails = "\n".join(f"--- {w.name}:\n{w.log_tail(15)}" for w in self.workers)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last {last}\n{tails}")

    def unserved_s(self, start_us: int, end_us: int) -> float:
        """How long, between the two instants, some partition had no ready owner."""
        with self._lock:
            window = [s for s in self.samples if start_us <= s.at_us <= end_us]
        total = 0
        for a, b in itertools.pairwise(window):
            if not self.served(a):
                total += b.at_us - a.at_us
        return round(total / US, 3)

    def takeover(self, partition: int, start_us: int, end_us: int) -> tuple[int, int] | None:
        """Bounds (A, B) of when `partition` was taken over after a change at `start_us` that
        had settled by `end_us`, from its first stretch of samples without exactly one ready
        owner: the previous owner had stopped serving it by A, the sample after the first of
        the stretch (the first one's probes found no ready owner); the next owner began after
        B, the last of the stretch (its probe found that owner not ready). None when no sample
        found the partition unserved (a rebalance between two samples)."""
        with self._lock:
            window = [s for s in self.samples if start_us <= s.at_us <= end_us]
        first = last = None
        for k, s in enumerate(window):
            owners = sum(1 for parts in s.owned.values() if parts and partition in parts)
            if owners != 1:
                first = k if first is None else first
                last = k
            elif first is not None:
                break
        if first is None or last is None or first + 1 >= len(window):
            return None
        return window[first + 1].at_us, window[last].at_us

    def longest_gaps(self, start_us: int = 0, end_us: int | None = None) -> dict[int, float]:
        """Per partition, the longest stretch (seconds) without a ready owner (among the
        samples from `start_us` to `end_us`, by default all of them)."""
        with self._lock:
            samples = [
                s
                for s in self.samples
                if start_us <= s.at_us and (end_us is None or s.at_us <= end_us)
            ]
        out: dict[int, float] = {}
        for p in range(self.partitions):
            longest = 0
            since: int | None = None
            for s in samples:
                owners = sum(1 for parts in s.owned.values() if parts and p in parts)
                if owners == 1:
                    if since is not None:
                        longest = max(longest, s.at_us - since)
                    since = None
                elif since is None:
                    since = s.at_us
            if since is not None and samples:
                longest = max(longest, samples[-1].at_us - since)
            out[p] = round(longest / US, 3)
        return out


@dataclass
class Change:
    kind: str
    worker: str
    at_us: int
    settled_us: int = 0
    unserved_s: float = 0.0
    stalls: int = 0
    """Watchdog restarts (exit status 75) of any worker while this change settled."""

    def figures(self, t0_us: int) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "worker": self.worker,
            "at_s": elapsed_s(t0_us, self.at_us),
            "settled_after_s": elapsed_s(self.at_us, self.settled_us),
            "unserved_s": self.unserved_s,
            "stalls": self.stalls,
        }


class Membership:
    """Applies membership changes to a set of workers and measures how long until the group
    settled again (Coverage.settled): ``kill`` (SIGKILL), ``stop`` (SIGTERM, graceful),
    ``start``, ``restart`` (SIGKILL and start at once, as a supervisor restarts a crashed
    pod). A kill counts from when the process is dead, a stop from its SIGTERM."""

    def __init__(self, workers: Sequence[WorkerProcess], coverage: Coverage) -> None:
        self.by_name = {w.name: w for w in workers}
        self.coverage = coverage
        self.changes: list[Change] = []

    def stalls(self) -> int:
        return sum(w.restarts for w in self.by_name.values())

    def takeover(self, i: int, case_id: str) -> tuple[int, int] | None:
        """For check_faults: bounds of the i-th change's takeover of the case's partition
        (Coverage.takeover)."""
        change = self.changes[i]
        p = partition_of(case_id.encode(), self.coverage.partitions)
        return self.coverage.takeover(p, change.at_us, change.settled_us)

    def apply(self, kind: str, name: str, settle_timeout: float = 240.0) -> Change:
        w = self.by_name[name]
        before = self.stalls()
        if kind not in ("kill", "restart", "stop", "start"):
            raise ValueError(f"unknown membership change {kind!r}")
        change = Change(kind, name, now_us())
        if kind in ("kill", "restart"):
            w.kill()
            change.at_us = now_us()  # once it is dead: a SIGKILL takes no time to act
        elif kind == "stop":
            w.stop()  # timed from the SIGTERM: the group may rebalance while it shuts down
        if kind in ("start", "restart"):
            w.start()

        def settled(s: Sample) -> bool:
            # a stopping worker still serves (and says so) until it left: a sample probed
            # before it exited is the group as it was, not settled after the stop
            return self.coverage.settled(s) and (kind != "stop" or name not in s.alive)

        hit = self.coverage.wait(
            settled, change.at_us + 1, settle_timeout, f"{kind} {name} to settle"
        )
        change.settled_us = hit.at_us
        change.unserved_s = self.coverage.unserved_s(change.at_us, hit.at_us)
        change.stalls = self.stalls() - before
        self.changes.append(change)
        return change

    def stop_all(self) -> None:
        for w in self.by_name.values():
            w.kill()
