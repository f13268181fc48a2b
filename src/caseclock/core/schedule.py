"""The deadline index: which case is due next, without scanning every case.

A binary heap of (due, key) entries with lazy deletion, as in Flink's timer service:
rescheduling a key pushes a new entry and leaves the old one to be skipped when it surfaces. A
dict maps each key to its live entry (the very tuple in the heap, so liveness is an identity
check and no second copy exists), so schedule, reschedule and remove are O(log n) and pop-due
is O(log n) per entry popped. The heap is compacted when stale entries outnumber live ones, so
memory stays proportional to the number of scheduled cases.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from operator import itemgetter

Entry = tuple[int, str]


class DeadlineIndex:
    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._live: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._live)

    @classmethod
    def of(cls, keys: Iterable[str], dues: Iterable[int]) -> DeadlineIndex:
        """An index holding these deadlines (one per key; a repeated key keeps its last),
        built in one pass: one heapify, O(n), instead of a push per key. What a restart loads
        from an index snapshot."""
        idx = cls()
        live = idx._live
        for key, due in zip(keys, dues, strict=True):
            live[key] = (due, key)
        idx._reheap()
        return idx

    def schedule(self, key: str, due: int | None) -> None:
        """Set (or clear, with None) the key's deadline, replacing any earlier one."""
        cur = self._live.get(key)
        if due is None:
            if cur is not None:
                del self._live[key]
                self._maybe_compact()
            return
        if cur is not None and cur[0] == due:
            return
        entry = (due, key)
        self._live[key] = entry
        heapq.heappush(self._heap, entry)
        if cur is not None:
            self._maybe_compact()

    def remove(self, key: str) -> None:
        self.schedule(key, None)

    def due_of(self, key: str) -> int | None:
        """The key's deadline, or None when it has none."""
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def peek(self) -> int | None:
        """The earliest live deadline, or None when empty."""
        self._skip_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: int, limit: int | None = None) -> list[tuple[int, str]]:
        """Remove and return (due, key) for every deadline <= now, earliest first.

        `limit` caps the work of one call so a timer tick after an outage yields to the loop.
        """
        out: list[tuple[int, str]] = []
        heap = self._heap
        live = self._live
        while heap and (limit is None or len(out) < limit):
            entry = heap[0]
            due, key = entry
            if live.get(key) is not entry:
                heapq.heappop(heap)
                continue
            if due > now:
                break
            heapq.heappop(heap)
            del live[key]
            out.append(entry)
        return out

    def pop_before(self, bound: int) -> tuple[int, str] | None:
        """Remove and return the earliest (due, key) with due < bound, if any."""
        heap = self._heap
        if not heap or heap[0][0] >= bound:
            return None  # the heap's minimum, stale or live, bounds every live entry
        self._skip_stale()
        if not self._heap or self._heap[0][0] >= bound:
            return None
        entry = heapq.heappop(self._heap)
        del self._live[entry[1]]
        return entry

    def deadlines(self) -> tuple[list[str], list[int]]:
        """Every key and its deadline, as two lists in the same order (what an index snapshot
        saves, and what `of` takes back). Copied at C speed, which matters because a running
        worker's snapshots are taken between handler calls: a fifth of the time of a loop
        over `items` (bench/snapshot_bench.py)."""
        live = self._live
        return list(live), list(map(itemgetter(0), live.values()))

    def items(self) -> Iterator[tuple[str, int]]:
        for key, (due, _) in self._live.items():
            yield key, due

    def _skip_stale(self) -> None:
        heap = self._heap
        live = self._live
        while heap:
            entry = heap[0]
            if live.get(entry[1]) is entry:
                return
            heapq.heappop(heap)

    def _maybe_compact(self) -> None:
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._live):
            self._reheap()

    def _reheap(self) -> None:
        """The heap again from the live entries alone (no stale ones), in O(n)."""
        self._heap = list(self._live.values())
        heapq.heapify(self._heap)
