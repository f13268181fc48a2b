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

from collections.abc import Hashable

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
    highest offset this worker has read). A partition is held when it has read at or beyond
    the committed offset; it is stalled when it stays held with the committed offset unmoved
    for the whole timeout (a healthy worker commits every few seconds under load, and catches
    the commit up to what it read once the load stops).
    """

    __slots__ = ("_since", "timeout_us")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_us = round(timeout_s * US)
        self._since: dict[object, tuple[int | None, int]] = {}
        """partition -> (committed offset, when it was first seen held at that offset)"""

    def observe(self, now: int, partitions: dict[object, tuple[int | None, int | None]]) -> None:
        """Record each partition's (committed, highest read) offsets."""
        since: dict[object, tuple[int | None, int]] = {}
        for tp, (committed, read) in partitions.items():
            if read is None or (committed is not None and read < committed):
                continue  # nothing read, or all of it committed: nothing held
            prev = self._since.get(tp)
            since[tp] = prev if prev is not None and prev[0] == committed else (committed, now)
        self._since = since

    def reset(self) -> None:
        """A rebalance: partitions move, and Faust re-seeks every one to its committed offset."""
        self._since = {}

    def stalled(self, now: int) -> dict[object, float]:
        """Partitions held at one committed offset for longer than the timeout (seconds)."""
        return {
            tp: (now - at) / US for tp, (_, at) in self._since.items() if now - at > self.timeout_us
        }
