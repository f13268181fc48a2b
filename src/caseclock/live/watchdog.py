"""Stall detection for table recovery: restart a worker that makes no progress, not a slow one.

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
