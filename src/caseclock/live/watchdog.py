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
    """Tracks, per input partition, whether its committed offset is held back by a hole.

    Faust commits a partition only up to the first offset it has not seen acknowledged. A
    known upstream race (faust-streaming#596: after a recovery the in-memory queues are cleared
    while the fetcher already delivered messages behind the committed offset) leaves such a
    hole for good: later messages are processed and acknowledged, the committed offset never
    moves again, consumer lag grows, and the messages in the hole were never applied. Only a
    re-read from the committed offset fills it, which a restart does (at-least-once: applying
    a message again changes nothing). Observations are (committed offset, lowest acknowledged
    offset not yet committed); a partition is stalled when the acknowledged ones start beyond
    the committed offset and the committed offset has not moved for the whole timeout.
    """

    __slots__ = ("_since", "timeout_us")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_us = round(timeout_s * US)
        self._since: dict[object, tuple[int, int]] = {}
        """partition -> (committed offset, when the hole in front of it was first seen)"""

    def observe(self, now: int, partitions: dict[object, tuple[int | None, int | None]]) -> None:
        """Record each partition's (committed, lowest acknowledged pending) offsets."""
        since: dict[object, tuple[int, int]] = {}
        for tp, (committed, lowest_acked) in partitions.items():
            if committed is None or lowest_acked is None or lowest_acked <= committed + 1:
                continue  # nothing pending, or pending right behind the commit: no hole
            prev = self._since.get(tp)
            since[tp] = prev if prev is not None and prev[0] == committed else (committed, now)
        self._since = since

    def reset(self) -> None:
        """A rebalance: Faust re-seeks every partition to its committed offset."""
        self._since = {}

    def stalled(self, now: int) -> dict[object, float]:
        """Partitions whose hole has held their commit for longer than the timeout (seconds)."""
        return {
            tp: (now - at) / US for tp, (_, at) in self._since.items() if now - at > self.timeout_us
        }
