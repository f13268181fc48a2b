"""Counted time: a calendar's open time outside a case's stops (its paused and resolved
stretches). Every window of a case is a length of counted time; these two functions turn a
length into a deadline and a stretch into a length. The engine and the status derived from
it both count with them, so a deadline and the time left before it cannot disagree.
"""

from __future__ import annotations

from caseclock.core.calendars import Calendar

Stops = list[tuple[int, int | None]]
"""Sorted, disjoint `[start, end)` stretches during which no window counts; end None for a
stretch still going on."""

NO_STOPS: Stops = []
"""Shared and never mutated: the stops of a case that was never paused nor resolved."""


def merge(
    a: list[tuple[int, int | None]], b: list[tuple[int, int | None]]
) -> list[tuple[int, int | None]]:
    """The union of two sorted lists of disjoint stretches, sorted and disjoint."""
    out: list[tuple[int, int | None]] = []
    for lo, hi in sorted(a + b, key=lambda x: x[0]):
        if out:
            plo, phi = out[-1]
            if phi is None:
                break
            if lo <= phi:
                out[-1] = (plo, None if hi is None else max(phi, hi))
                continue
        out.append((lo, hi))
    return out


def add(cal: Calendar, stops: list[tuple[int, int | None]], t: int, d: int) -> int | None:
    """The deadline of a window of counted length `d` opened at `t`: the earliest instant by
    which `d` of the calendar's open time outside the stops has elapsed, or None when a stop
    that never ends comes first. A deadline never lies inside a stop: one that would fall
    exactly where a stop begins is owed where that stop ends (the pause came in time)."""
    if not stops:
        return t + d if cal.always_open else cal.add(t, d)
    r = d
    for lo, hi in stops:
        if hi is not None and hi <= t:
            continue
        if lo > t:
            end = cal.add(t, r)
            if end < lo:
                return end
            r -= cal.elapsed(t, lo)
        if hi is None:
            return None
        t = hi
    return cal.add(t, r)


def elapsed(cal: Calendar, stops: list[tuple[int, int | None]], a: int, b: int) -> int:
    """Counted time in [a, b): the calendar's open time there, less the stops within it."""
    total = cal.elapsed(a, b)
    for lo, hi in stops:
        if lo >= b:
            break
        x = a if lo < a else lo
        y = b if hi is None or hi > b else hi
        if y > x:
            total -= cal.elapsed(x, y)
    return total
