"""Stall detection: restart a worker that makes no progress, not a slow one.

Two watches. `StallWatch` is for table recovery; `CommitWatch` for offset commits.

Faust's changelog recovery can stop for good after quick successive rebalances (a known
upstream problem, see docs/operations.md): the worker then owns partitions it never serves.
A timeout on the *whole* recovery cannot tell that apart from a large changelog being read, so
the watch looks at progress instead: the caller samples a marker (rebalance count, generation,
recovery phase, changelog offsets applied, rows rebuilt) and any change counts as progress.
Only a recovery whose marker stays the same for the whole timeout is stuck.

Pure: the caller passes the time in (integer microseconds) and reads no clock here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence

US = 1_000_000


class StallWatch:
    """Tracks one recovery at a time: started on revocation, done once the index is rebuilt."""

    __slots__ = ("_marker", "_progress_at", "began_at", "timeout_us")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_us = round(timeout_s * US)
        self.began_at: int | None = None
        """When the current recovery began; None while the worker serves its partitions."""
        self._progress_at = 0
        self._marker: Hashable = None

    @property
    def recovering(self) -> bool:
        return self.began_at is not None

    def begin(self, now: int) -> None:
        """A rebalance began: a recovery is owed (a new one restarts the progress clock)."""
        self.began_at = now
        self._progress_at = now
        self._marker = None

    def done(self) -> None:
        self.began_at = None

    def observe(self, now: int, marker: Hashable) -> None:
        """Record the recovery's current progress marker; a changed marker is progress."""
        if self.began_at is None:
            return
        if marker != self._marker:
            self._marker = marker
            self._progress_at = now

    def stuck_for(self, now: int) -> float | None:
        """Seconds without progress, once that exceeds the timeout; otherwise None."""
        if self.began_at is None:
            return None
        idle = now - self._progress_at
        return idle / US if idle > self.timeout_us else None

    def elapsed(self, now: int) -> float | None:
        """Seconds since the current recovery began (for logs and /healthz)."""
        return None if self.began_at is None else (now - self.began_at) / US


class CommitWatch:
    """Tracks, per input partition, whether the group's committed offset is held back.

    Faust commits a partition only up to the first offset it has seen acknowledged, and only
    while it believes the commit is owed. Known upstream races (faust-streaming#596: after a
    recovery the in-memory queues are cleared while messages behind the committed offset were
    already fetched; others where the consumer's bookkeeping and the broker disagree) leave a
    partition whose later messages are processed while the offset committed at the broker
    never moves again: consumer lag grows, and a message in such a hole may never have been
    applied. Only a re-read from the committed offset heals it, which a restart does
    (at-least-once: applying a message again changes nothing).

    Observations are (offset committed at the broker, i.e. the next one to read, or None;
    highest offset this worker has read), sampled every few seconds. A partition is stalled
    when an offset it had read more than the timeout ago is still not committed: a healthy
    worker commits what it read within a few seconds (Faust commits every 2.8 s), while one
    with a hole commits not at all, or only a few offsets at a time far behind what it reads
    (seen in the fault suite's kill-under-load runs), and either way falls ever further behind.
    """

    __slots__ = ("_reads", "timeout_us")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_us = round(timeout_s * US)
        self._reads: dict[object, deque[tuple[int, int]]] = {}
        """partition -> (when, highest offset read then), oldest first, for reads not yet
        committed"""

    def observe(self, now: int, partitions: dict[object, tuple[int | None, int | None]]) -> None:
        """Record each partition's (committed, highest read) offsets."""
        reads: dict[object, deque[tuple[int, int]]] = {}
        for tp, (committed, read) in partitions.items():
            if read is None:
                continue
            samples = self._reads.get(tp) or deque()
            while samples and committed is not None and samples[0][1] < committed:
                samples.popleft()  # committed since
            if committed is None or read >= committed:
                if not samples or samples[-1][1] != read:
                    samples.append((now, read))
                if len(samples) > 64:  # keep the oldest: it is what the timeout is about
                    del samples[1]
            if samples:
                reads[tp] = samples
        self._reads = reads

    def reset(self) -> None:
        """A rebalance: partitions move, and Faust re-seeks every one to its committed offset."""
        self._reads = {}

    def stalled(self, now: int) -> dict[object, float]:
        """Partitions with a read older than the timeout still uncommitted: its age (seconds)."""
        return {
            tp: (now - samples[0][0]) / US
            for tp, samples in self._reads.items()
            if now - samples[0][0] > self.timeout_us
        }


def partition_name(tp: object) -> str:
    """`topic[partition]` of a (topic, partition) pair, for the log."""
    if isinstance(tp, tuple) and len(tp) == 2:
        return f"{tp[0]}[{tp[1]}]"
    return str(tp)


def offset_runs(offsets: Sequence[int], limit: int = 6) -> str:
    """Sorted offsets as runs of consecutive ones, `a-b`, the first `limit` of them: Faust
    commits only the first run, so their number and lengths say how its commit will move."""
    runs: list[tuple[int, int]] = []
    for o in offsets:
        if runs and o == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], o)
        elif not runs or o != runs[-1][1]:
            runs.append((o, o))
    shown = " ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:limit])
    more = f" ... ({len(runs)} runs)" if len(runs) > limit else ""
    return f"[{shown}{more}]"
