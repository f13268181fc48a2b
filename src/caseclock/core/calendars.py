"""Business time: weekly working hours, holidays and time zones (spec section 6).

A support plan that promises "4 business hours" counts only the time its team works. This
module is the arithmetic behind such promises, pure (no clock reads, no I/O beyond the zone
database) and exact in integer microseconds like the rest of the engine (see timeutil).

What counts as business time
----------------------------
An instant is *open* when the wall clock of the calendar's IANA zone, at that instant, shows a
local date that is not a holiday and a time of day inside one of the ranges of that date's
weekday. Ranges are half-open, ``[start, end)``: a team working "09:00-17:00" is open at 09:00
and closed at 17:00 sharp; "24:00" is accepted as an end and means the end of the day.

Everything else follows from that one definition, because it measures *real elapsed time during
which the clock reads open*. That is what the spec asks for ("local wall-clock hours, DST
included") and what a support team experiences:

- Spring forward: a range that contains the skipped hour is an hour shorter (Berlin's
  "00:00-06:00" lasts 5 h on the last Sunday of March). A range that starts inside the skipped
  hour opens at the first instant after the jump (New York's "02:30-05:00" opens at 03:00 EDT).
- Autumn: the repeated hour counts twice when it is within hours ("00:00-06:00" lasts 7 h on
  the last Sunday of October): the people on shift really work it twice. A range whose boundary
  falls inside the repeated hour is open each time the clock reads a time inside it (Berlin's
  "02:30-05:00" on 25 October 2026 is open 02:30-03:00 summer time, closed 02:00-02:30
  standard time, then open 02:30-05:00: 3 h). Business windows never stretch or shrink by an
  hour because an offset changed outside hours: 09:00-17:00 is 8 h on every working day, DST
  or not; only its position in UTC moves.
- Holidays are local dates, whole days: every instant whose wall date is that date is closed.
- Gaps between ranges, closed weekdays, nights: closed, like any instant outside the ranges.

The two operations
------------------
``elapsed(a, b)`` is the measure (in microseconds) of the open instants in ``[a, b)``; 0 when
``b <= a``.

``add(s, d)`` is the *earliest* instant ``T >= s`` with ``elapsed(s, T) == d``. So:

- a window that starts outside hours starts counting at the next opening;
- a deadline that lands exactly on a closing instant is that closing instant (an 8 h window from
  Monday 09:00 ends Monday 17:00, not Tuesday 09:00): for ``d > 0`` the microsecond just before
  ``add(s, d)`` is always open, so a deadline is never at an opening nor inside a closed
  stretch;
- ``add(s, 0) == s`` wherever ``s`` is, even outside hours: nothing has to elapse, so nothing is
  waited for (policies only have positive windows; the engine never depends on this case, but
  the laws below hold for it too).

The laws the tests check (``tests/unit/core/test_calendars.py``), for every calendar, ``s``, ``t``
and durations ``d, d1, d2 >= 0``:

- ``elapsed(s, add(s, d)) == d``, and for ``d > 0``: ``is_open(add(s, d) - 1)``;
- ``add`` is strictly increasing in ``d`` and non-decreasing in ``s``;
- ``add(add(s, d1), d2) == add(s, d1 + d2)``;
- ``elapsed(a, c) == elapsed(a, b) + elapsed(b, c)`` for ``a <= b <= c``;
- ``elapsed(a, b) <= b - a`` and ``add(s, d) >= s + d``;
- ``add(s, elapsed(s, t)) <= t``, equal when ``t - 1`` is open;
- ``next_open(t) >= t``, ``is_open(next_open(t))`` and ``elapsed(t, next_open(t)) == 0``;
- for the built-in ``24x7``: ``add(s, d) == s + d`` and ``elapsed(a, b) == max(0, b - a)``;
- ``add`` and ``elapsed`` agree with a minute-stepping reference that asks, for every UTC minute,
  whether the local wall clock is within hours.

Business days
-------------
``open_days_span(s, n)`` is the counted length of a window of ``n`` business days (a policy's
``"2bd"``) opened at ``s``: ``elapsed(s, T)`` where ``T`` is the same local wall-clock time
``n`` open days later. An *open day* is a local date whose weekday has hours and that is not
a holiday. A start outside hours first moves to the next opening, and ``T`` is then that
opening's local time (Saturday 12:00 + 1 business day: Monday 09:00 to Tuesday 09:00). Where
``T``'s local time is outside that day's hours the counted time stops at the last closing
before it, which is the same as moving ``T`` there (after the day's last closing: that
closing; before its first opening: that opening; in a gap between ranges: the gap's start).
Where the local time does not exist on that day (the hour a spring change skips) ``T`` is the
first instant after the jump; where it exists twice (autumn), the first of the two: ``T`` is
the earliest instant at which the wall clock shows that date and time or later. So across a
DST change a business day still ends at the same time of day. The deadline
``add(s, open_days_span(s, n))`` is ``T`` when the instant just before ``T`` is open, else
the last closing before ``T``. On the built-in ``24x7`` (UTC, every instant counts) ``n``
business days are ``n`` times 24 h.

How it stays fast
-----------------
Nothing walks minute by minute. The open instants of each UTC day are computed once (from the
weekly ranges, the holidays and the zone's offsets during that day) as a sorted tuple of
``[open, close)`` pairs and cached (a bounded cache per calendar); ``add`` and ``elapsed`` then
consume whole intervals. Between two consecutive offset changes of the zone and holidays, every
7 days of UTC contain exactly the calendar's weekly open time (the wall clock then runs in step
with UTC, and the weekly pattern repeats), so long windows skip such whole weeks with one
multiplication and walk days only around holidays and DST changes, and in the last week.

UTC days rather than local dates are the unit of the cache so that intervals come out in UTC
order even where a zone's clock fell back across midnight (until 2010 America/Goose_Bay went
from Sunday 00:01 back to Saturday 23:01: a minute of Sunday came before Saturday's last hour,
again).

Offset changes are found by probing ``zoneinfo`` every 6 hours and bisecting to the second
(zoneinfo offers no public list of transitions). This is exact as long as two changes of a
zone's UTC offset are more than 6 hours apart: in the tz database the closest pair since 1900
is four days apart (Africa/Freetown, 1939). The probes are cached per zone and UTC year.

The zone database is the system's (``zoneinfo``'s search path) with the ``tzdata`` package, a
dependency, as the fallback on machines without one (``PYTHONTZPATH=""`` forces it). Two
processes compute the same deadlines when their zone databases agree, as they do when they run
the same image; a worker with an older database could place a deadline differently only where
a zone changed its rules after that database was made.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# When policy.py comes to import this module, it must do so after PolicyError is defined (or
# inside a function): this import would otherwise meet a half-initialised policy module.
from caseclock.core.policy import PolicyError
from caseclock.core.timeutil import US

MINUTE_US = 60 * US
DAY_US = 86_400 * US
WEEK_US = 7 * DAY_US
DAY_MINUTES = 1440

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys of a calendar's ``hours`` table, Monday first (as ``date.weekday()``)."""

BUILTIN_24X7 = "24x7"

Range = tuple[int, int]
"""Local minutes since midnight, ``[start, end)`` with ``0 <= start < end <= 1440``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_THURSDAY = 3  # 1970-01-01, day 0 of the wall-clock day numbers used below

_CACHE_DAYS = 2048
_MEMO_SIZE = 1 << 16
"""Answers of add() kept per calendar (at most about 15 MB); cleared when full."""
"""UTC days of open intervals kept per calendar (about 5.6 years; oldest evicted first)."""

_PROBE_S = 6 * 3600
"""Zone probing step; must be shorter than the shortest gap between two offset changes."""


# --- zones -----------------------------------------------------------------------------------


class _Zone:
    """The UTC offset changes of one IANA zone.

    zoneinfo is probed once per UTC year; the changes of the span of years in use are kept as
    sorted arrays, so that the offset at an instant, or the changes within a day, are a bisect
    (the arithmetic asks for them on every skipped week and every new day).
    """

    __slots__ = ("_first", "_hi", "_lo", "_offs", "_span", "_times", "_years", "key", "tz")

    def __init__(self, key: str) -> None:
        self.key = key
        self.tz = ZoneInfo(key)
        self._years: dict[int, tuple[tuple[int, int], ...]] = {}
        self._span = (0, 0)  # UTC years [first, last) in the arrays
        self._lo = self._hi = 0  # the same span in microseconds
        self._times: list[int] = []  # instants of the changes, increasing
        self._offs: list[int] = []  # the offset from each change on
        self._first = 0  # the offset at _lo

    def _offset_s(self, s: int) -> timedelta:
        off = (_EPOCH + timedelta(seconds=s)).astimezone(self.tz).utcoffset()
        assert off is not None  # a ZoneInfo always has an offset for an aware datetime
        return off

    def _year(self, y: int) -> tuple[tuple[int, int], ...]:
        """The changes in UTC year ``y``: (instant in us, offset from then on in us)."""
        got = self._years.get(y)
        if got is not None:
            return got
        lo = _year_start(y) // US
        hi = _year_start(y + 1) // US
        points = [lo - 1, *range(lo, hi, _PROBE_S), hi - 1]
        found: list[tuple[int, int]] = []
        prev_s = points[0]
        prev = self._offset_s(prev_s)
        for p in points[1:]:
            cur = self._offset_s(p)
            if cur != prev:
                a, b = prev_s, p  # offset(a) == prev != offset(b): the change is in (a, b]
                while b - a > 1:
                    m = (a + b) // 2
                    if self._offset_s(m) == prev:
                        a = m
                    else:
                        b = m
                found.append((b * US, cur // _ONE_US))
            prev_s, prev = p, cur
        got = tuple(found)
        self._years[y] = got
        return got

    def _cover(self, a: int, b: int) -> None:
        """Make the arrays cover instants ``a`` to ``b``: the span grows to include them, or
        moves there when they are far from it (probes stay memoised per year)."""
        if self._lo <= a and b < self._hi:
            return
        ya, yb = _utc_year(a), _utc_year(b) + 1
        y0, y1 = self._span
        if y0 < y1 and ya <= y1 + 2 and yb >= y0 - 2:
            ya, yb = min(ya, y0), max(yb, y1)
        times: list[int] = []
        offs: list[int] = []
        for y in range(ya, yb):
            for t, o in self._year(y):
                times.append(t)
                offs.append(o)
        self._span = (ya, yb)
        self._lo, self._hi = _year_start(ya), _year_start(yb)
        self._times, self._offs = times, offs
        self._first = self._offset_s(self._lo // US) // _ONE_US

    def offset(self, u: int) -> int:
        """UTC offset in microseconds at instant ``u``."""
        if not self._lo <= u < self._hi:
            self._cover(u, u)
        i = bisect_right(self._times, u)
        return self._offs[i - 1] if i else self._first

    def changes(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Offset changes at instants strictly inside ``(lo, hi)``, in order."""
        self._cover(lo, hi)
        times = self._times
        i = bisect_right(times, lo)
        j = bisect_left(times, hi, i)
        return list(zip(times[i:j], self._offs[i:j], strict=True))

    def next_change(self, lo: int, hi: int) -> int | None:
        """The first offset change strictly inside ``(lo, hi)``, or None."""
        self._cover(lo, hi)
        times = self._times
        i = bisect_right(times, lo)
        return times[i] if i < len(times) and times[i] < hi else None


def _year_start(y: int) -> int:
    return (date(y, 1, 1).toordinal() - _EPOCH_ORDINAL) * DAY_US


def _utc_year(u: int) -> int:
    return date.fromordinal(u // DAY_US + _EPOCH_ORDINAL).year


_ZONES: dict[str, _Zone] = {}


def _zone(key: str) -> _Zone:
    """Shared per zone key, so that many calendars in one zone probe it once."""
    z = _ZONES.get(key)
    if z is None:
        try:
            z = _Zone(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {key!r}") from None
        _ZONES[key] = z
    return z


# --- calendars -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Weekly working hours in one IANA zone, with holidays; see the module docstring.

    ``hours`` has seven entries, Monday first, each a sorted tuple of non-overlapping
    ``(start, end)`` ranges in local minutes since midnight (touching ranges are allowed and
    count as one). ``holidays`` are local dates, closed all day.
    """

    name: str
    timezone: str
    hours: tuple[tuple[Range, ...], ...]
    holidays: frozenset[date] = frozenset()

    _zone: _Zone = field(init=False, repr=False, compare=False)
    _week_us: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _holiday_days: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _holiday_set: frozenset[int] = field(init=False, repr=False, compare=False)
    _cache: dict[int, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _memo: dict[tuple[int, int], int] = field(init=False, repr=False, compare=False)
    weekly_us: int = field(init=False, repr=False, compare=False)
    """Open time in a week without holidays or offset changes, in microseconds."""
    always_open: bool = field(init=False, repr=False, compare=False)
    """Every instant is open (24 h on all seven days, no holidays): the identity fast path."""
    longest_day_us: int = field(init=False, repr=False, compare=False)
    """The open time of the weekday with the most hours (24 h for a round-the-clock day): a
    business day's nominal length, for histogram buckets and the policy's bounds."""
    open_weekdays: int = field(init=False, repr=False, compare=False)
    """How many weekdays have hours (1 to 7): the open days of a week without holidays."""
    _days_memo: dict[tuple[int, int], int] = field(init=False, repr=False, compare=False)
    _open_days: tuple[bool, ...] = field(init=False, repr=False, compare=False)
    _utc_always_open: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a calendar needs a non-empty name")
        hours = tuple(tuple(sorted((int(a), int(b)) for a, b in day)) for day in self.hours)
        if len(hours) != 7:
            raise ValueError(f"hours needs 7 days (Monday first), got {len(hours)}")
        for i, day in enumerate(hours):
            for a, b in day:
                if not 0 <= a < b <= DAY_MINUTES:
                    raise ValueError(f"{DAYS[i]}: invalid range {_fmt_range((a, b))}")
            for (a1, b1), (a2, b2) in pairwise(day):
                if a2 < b1:
                    raise ValueError(
                        f"{DAYS[i]}: range {_fmt_range((a2, b2))} overlaps {_fmt_range((a1, b1))}"
                    )
        weekly = sum(b - a for day in hours for a, b in day) * MINUTE_US
        if weekly == 0:
            raise ValueError("no open time in the week")
        holidays = frozenset(self.holidays)
        for h in holidays:
            if not isinstance(h, date) or isinstance(h, datetime):
                raise ValueError(f"holiday {h!r} is not a date")
        days = tuple(sorted(h.toordinal() - _EPOCH_ORDINAL for h in holidays))
        zone = _zone(self.timezone)
        always = not holidays and all(day == ((0, DAY_MINUTES),) for day in hours)
        put = object.__setattr__
        put(self, "hours", hours)
        put(self, "holidays", holidays)
        put(self, "_zone", zone)
        put(
            self,
            "_week_us",
            tuple(tuple((a * MINUTE_US, b * MINUTE_US) for a, b in day) for day in hours),
        )
        put(self, "_holiday_days", days)
        put(self, "_holiday_set", frozenset(days))
        put(self, "_cache", {})
        put(self, "_memo", {})
        put(self, "weekly_us", weekly)
        put(self, "always_open", always)
        put(self, "longest_day_us", max(sum(b - a for a, b in day) for day in hours) * MINUTE_US)
        put(self, "open_weekdays", sum(1 for day in hours if day))
        put(self, "_days_memo", {})
        # Indexed by wall-clock day number (days since 1970-01-01, a Thursday) modulo 7.
        put(self, "_open_days", tuple(bool(hours[(d + _THURSDAY) % 7]) for d in range(7)))
        put(self, "_utc_always_open", always and self.timezone in ("UTC", "Etc/UTC"))

    # --- the open intervals of one UTC day ---------------------------------------------------

    def _day(self, k: int) -> tuple[int, ...]:
        """Open intervals within UTC day ``k`` (days since the epoch), flat:
        ``(open0, close0, open1, close1, ...)``, strictly increasing, touching ones merged.

        (add and elapsed look into the cache themselves first: a call less per day.)"""
        got = self._cache.get(k)
        if got is None:
            got = self._compute_day(k)
            cache = self._cache
            if len(cache) >= _CACHE_DAYS:
                del cache[next(iter(cache))]
            cache[k] = got
        return got

    def _compute_day(self, k: int) -> tuple[int, ...]:
        c0 = k * DAY_US
        c1 = c0 + DAY_US
        zone = self._zone
        # Pieces of the UTC day with a constant offset: wall time = instant + offset there.
        pieces: list[tuple[int, int, int]] = []
        start, off = c0, zone.offset(c0)
        for t, new in zone.changes(c0, c1):
            pieces.append((start, t, off))
            start, off = t, new
        pieces.append((start, c1, off))
        found: list[tuple[int, int]] = []
        week = self._week_us
        closed = self._holiday_set
        for s, e, o in pieces:
            # Wall-clock day numbers that this piece shows: each contributes its ranges, moved
            # back to UTC by this piece's offset and clipped to the piece.
            for wd in range((s + o) // DAY_US, (e - 1 + o) // DAY_US + 1):
                if wd in closed:
                    continue
                base = wd * DAY_US - o
                for a, b in week[(wd + _THURSDAY) % 7]:
                    lo = max(s, base + a)
                    hi = min(e, base + b)
                    if lo < hi:
                        found.append((lo, hi))
        found.sort()
        flat: list[int] = []
        for lo, hi in found:
            if flat and lo <= flat[-1]:
                flat[-1] = max(flat[-1], hi)
            else:
                flat += (lo, hi)
        return tuple(flat)

    def _regular_weeks(self, t: int, n: int) -> int:
        """How many of the ``n`` weeks from ``t`` hold exactly ``weekly_us`` of open time.

        True for weeks with a constant offset (no change strictly inside them) whose wall
        dates include no holiday: the wall clock then covers exactly seven days in step with
        UTC, over which the weekly pattern repeats.
        """
        change = self._zone.next_change(t, t + n * WEEK_US)
        if change is not None:
            n = (change - t) // WEEK_US
        if n <= 0:
            return 0
        days = self._holiday_days
        if days:
            o = self._zone.offset(t)
            i = bisect_left(days, (t + o) // DAY_US)
            if i < len(days):
                n = min(n, (days[i] * DAY_US - t - o) // WEEK_US)
        return max(n, 0)

    # --- the arithmetic ----------------------------------------------------------------------

    def add(self, start_us: int, duration_us: int) -> int:
        """The earliest instant by which ``duration_us`` of business time has elapsed after
        ``start_us``: the deadline of a window of that length opened at ``start_us``.

        Counting starts at the next opening when ``start_us`` is outside hours; a deadline
        that lands on a closing instant is that instant; ``add(s, 0) == s``.
        """
        if self.always_open:
            if duration_us < 0:
                raise ValueError(f"negative duration {duration_us}")
            return start_us + duration_us
        # The engine asks the same question again after every fact that moves no starting
        # point (a customer note, an internal note): a bounded memo answers those.
        key = (start_us, duration_us)
        memo = self._memo
        hit = memo.get(key)
        if hit is not None:
            return hit
        end = self._add(start_us, duration_us)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = end
        return end

    def _add(self, start_us: int, duration_us: int) -> int:
        if duration_us < 0:
            raise ValueError(f"negative duration {duration_us}")
        if self.always_open:
            return start_us + duration_us
        if duration_us == 0:
            return start_us
        r = duration_us
        t = start_us
        k = t // DAY_US
        weekly = self.weekly_us
        cache = self._cache
        while True:
            iv = cache.get(k)
            if iv is None:
                iv = self._day(k)
            n = len(iv)
            i = bisect_right(iv, t)
            if i & 1:  # t is inside the interval that closes at iv[i]
                avail = iv[i] - t
                if r <= avail:
                    return t + r
                r -= avail
                i += 1
            while i < n:
                lo = iv[i]
                avail = iv[i + 1] - lo
                if r <= avail:
                    return lo + r
                r -= avail
                i += 2
            k += 1
            t = k * DAY_US
            if r > weekly:
                # Leave at least one microsecond to the walk, so the deadline is placed by
                # the intervals themselves (a closing instant stays a closing instant).
                weeks = self._regular_weeks(t, (r - 1) // weekly)
                if weeks:
                    t += weeks * WEEK_US
                    r -= weeks * weekly
                    k = t // DAY_US

    def elapsed(self, a_us: int, b_us: int) -> int:
        """Business time between two instants, in microseconds (0 when ``b_us <= a_us``)."""
        if b_us <= a_us:
            return 0
        if self.always_open:
            return b_us - a_us
        total = 0
        t = a_us
        k = t // DAY_US
        weekly = self.weekly_us
        cache = self._cache
        while True:
            c1 = (k + 1) * DAY_US
            end = b_us if b_us < c1 else c1
            iv = cache.get(k)
            if iv is None:
                iv = self._day(k)
            n = len(iv)
            i = bisect_right(iv, t)
            if i & 1:
                total += min(iv[i], end) - t
                i += 1
            while i < n and iv[i] < end:
                total += min(iv[i + 1], end) - iv[i]
                i += 2
            if b_us <= c1:
                return total
            k += 1
            t = c1
            if b_us - t >= WEEK_US:
                weeks = self._regular_weeks(t, (b_us - t) // WEEK_US)
                if weeks:
                    total += weeks * weekly
                    t += weeks * WEEK_US
                    k = t // DAY_US

    def open_days_span(self, start_us: int, n: int) -> int:
        """The counted length (in microseconds) of a window of ``n`` business days opened at
        ``start_us``: the open time from ``start_us`` to the same local wall-clock time on
        the ``n``-th following open day (module docstring, "Business days").

        A start outside hours counts from the next opening, and the target is that opening's
        local time; of a target outside its day's hours only the open time before it counts
        (as if it were moved to the day's last closing, or to its first opening). ``n`` must
        be at least 1. Answers are remembered per calendar (the engine asks again at every
        evaluation of a case).
        """
        if n < 1:
            raise ValueError(f"a number of business days must be at least 1, got {n}")
        if self._utc_always_open:
            return n * DAY_US
        key = (start_us, n)
        memo = self._days_memo
        hit = memo.get(key)
        if hit is not None:
            return hit
        start = self.next_open(start_us)
        wall = start + self._zone.offset(start)
        day, time_of_day = divmod(wall, DAY_US)
        target = self._earliest_showing(self._nth_open_day(day, n) * DAY_US + time_of_day)
        span = self.elapsed(start, target)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = span
        return span

    def _nth_open_day(self, day: int, n: int) -> int:
        """The ``n``-th open day after wall-clock day number ``day`` (``n >= 1``): a day
        whose weekday has hours and that is not a holiday. Whole weeks without a holiday hold
        ``open_weekdays`` open days each, so long counts skip them."""
        is_open_weekday = self._open_days
        holidays = self._holiday_days
        closed = self._holiday_set
        per_week = self.open_weekdays
        left = n
        while True:
            if left > per_week:
                # Leave at least one open day to the walk, so it ends on an open day.
                weeks = (left - 1) // per_week
                i = bisect_right(holidays, day)
                if i < len(holidays):
                    weeks = min(weeks, (holidays[i] - day - 1) // 7)
                if weeks > 0:
                    day += 7 * weeks
                    left -= weeks * per_week
            day += 1
            if is_open_weekday[day % 7] and day not in closed:
                left -= 1
                if left == 0:
                    return day

    def _earliest_showing(self, wall: int) -> int:
        """The earliest instant at which the local wall clock shows ``wall`` (wall-clock
        microseconds since 1970-01-01T00:00 local) or later: that instant when the time
        exists once, the first of the two in an autumn repeated hour, the first instant after
        the jump when a spring change skips it."""
        zone = self._zone
        # No zone is a day away from UTC: before wall - 1 day the clock shows less than wall.
        t = wall - DAY_US
        offset = zone.offset(t)
        for change, new in zone.changes(t, wall + DAY_US):
            # From t to the change the clock shows u + offset at instant u.
            earliest = max(t, wall - offset)
            if earliest < change:
                return earliest
            t, offset = change, new
        return max(t, wall - offset)

    def is_open(self, t_us: int) -> bool:
        """Whether ``t_us`` is business time (an opening instant is, a closing one is not)."""
        if self.always_open:
            return True
        return bool(bisect_right(self._day(t_us // DAY_US), t_us) & 1)

    def next_open(self, t_us: int) -> int:
        """The first open instant at or after ``t_us`` (``t_us`` itself when open)."""
        if self.always_open:
            return t_us
        t = t_us
        k = t // DAY_US
        while True:  # ends: every week has open time, and holidays are finitely many
            iv = self._day(k)
            i = bisect_right(iv, t)
            if i & 1:
                return t
            if i < len(iv):
                return iv[i]
            k += 1
            t = k * DAY_US


def _fmt_clock(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _fmt_range(r: Range) -> str:
    return f"'{_fmt_clock(r[0])}-{_fmt_clock(r[1])}'"


TWENTY_FOUR_SEVEN = Calendar(BUILTIN_24X7, "UTC", tuple(((0, DAY_MINUTES),) for _ in DAYS))
"""The built-in calendar: every instant counts (calendar time)."""

BUILTIN_CALENDARS: Mapping[str, Calendar] = {BUILTIN_24X7: TWENTY_FOUR_SEVEN}


# --- the policy file -------------------------------------------------------------------------

_RANGE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEYS = ("timezone", "hours", "holidays")
_RANGE_HINT = "use 'HH:MM-HH:MM', e.g. '09:00-17:00'"


def _parse_range(text: str) -> Range | str:
    """A range in minutes, or the reason it is invalid."""
    m = _RANGE.fullmatch(text)
    if m is None:
        return _RANGE_HINT
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        return "hours 00-23 and minutes 00-59; '24:00' only as an end"
    a, b = h1 * 60 + m1, h2 * 60 + m2
    if a == b:
        # "09:00-09:00" and "00:00-00:00" are no night shift: the midnight hint would mislead
        # an author who meant a whole day.
        return "a range must not be empty; a whole day is '00:00-24:00'"
    if a > b:
        return (
            "the end must be after the start; a range cannot cross midnight: split it, "
            "e.g. '22:00-24:00' and '00:00-06:00' on the next day"
        )
    return a, b


def _parse_day(value: Any, where: str, errors: list[str]) -> tuple[Range, ...]:
    """One weekday: "09:00-13:00,14:00-17:00" (the spec's form) or a list of such strings."""
    if isinstance(value, str):
        pieces = value.split(",") if value.strip() else []
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        pieces = list(value)
    else:
        errors.append(
            f'{where}: expected ranges such as "09:00-17:00" or "09:00-13:00,14:00-17:00"'
        )
        return ()
    ranges: list[tuple[Range, int]] = []
    for i, text in enumerate(pieces):
        at = where if len(pieces) == 1 else f"{where}[{i}]"
        got = _parse_range(text)
        if isinstance(got, str):
            errors.append(f"{at}: invalid range {text.strip()!r} ({got})")
        else:
            ranges.append((got, i))
    ranges.sort()
    ok: list[Range] = []
    for r, i in ranges:
        if ok and r[0] < ok[-1][1]:
            at = where if len(pieces) == 1 else f"{where}[{i}]"
            errors.append(f"{at}: range {_fmt_range(r)} overlaps {_fmt_range(ok[-1])}")
        else:
            ok.append(r)
    return tuple(ok)


def _parse_holidays(value: Any, where: str, errors: list[str]) -> frozenset[date]:
    if not isinstance(value, list):
        errors.append(f'{where}: expected a list of local dates such as ["2026-12-25"]')
        return frozenset()
    out: set[date] = set()
    for i, v in enumerate(value):
        if isinstance(v, date) and not isinstance(v, datetime):  # a TOML local date
            out.add(v)
            continue
        if isinstance(v, str) and _DATE.fullmatch(v.strip()):
            try:
                out.add(date.fromisoformat(v.strip()))
                continue
            except ValueError:
                pass
        errors.append(f"{where}[{i}]: invalid date {v!r} (use 'YYYY-MM-DD', a local date)")
    return frozenset(out)


def _parse_calendar(name: str, doc: Any, where: str, errors: list[str]) -> Calendar | None:
    if not isinstance(doc, Mapping):
        errors.append(f"{where}: expected a table with timezone, hours and holidays")
        return None
    before = len(errors)
    for key in doc:
        if key not in _KEYS:
            errors.append(f"{where}.{key}: unknown key (allowed: {', '.join(_KEYS)})")
    tz = doc.get("timezone")
    if tz is None:
        errors.append(f"{where}.timezone: missing (an IANA zone such as 'Europe/Berlin')")
    elif not isinstance(tz, str):
        errors.append(f"{where}.timezone: expected an IANA zone name such as 'Europe/Berlin'")
    else:
        try:
            _zone(tz)
        except ValueError:
            errors.append(f"{where}.timezone: unknown time zone {tz!r}")
    week: list[tuple[Range, ...]] = [() for _ in DAYS]
    hours = doc.get("hours")
    if hours is None:
        errors.append(f'{where}.hours: missing (e.g. {{ mon = "09:00-17:00", ... }})')
    elif not isinstance(hours, Mapping):
        errors.append(f"{where}.hours: expected a table of weekdays ({', '.join(DAYS)})")
    else:
        for key, value in hours.items():
            if key not in DAYS:
                errors.append(f"{where}.hours.{key}: unknown day (use {', '.join(DAYS)})")
                continue
            week[DAYS.index(key)] = _parse_day(value, f"{where}.hours.{key}", errors)
        if len(errors) == before and not any(week):
            errors.append(f"{where}.hours: no open time in the week")
    holidays = _parse_holidays(doc.get("holidays", []), f"{where}.holidays", errors)
    if len(errors) > before:
        return None
    assert isinstance(tz, str)
    return Calendar(name, tz, tuple(week), holidays)


def parse_calendars(table: Any, where: str = "calendars") -> dict[str, Calendar]:
    """The ``[calendars.NAME]`` tables of a policy file, plus the built-in ``24x7``.

    Every problem is reported, one line each, in one PolicyError whose lines name the field
    (``calendars.emea.hours.fri[1]: invalid range '13:00-12:00' (...)``), so a policy author
    fixes the file in one pass.
    """
    out: dict[str, Calendar] = dict(BUILTIN_CALENDARS)
    if table is None:
        return out
    if not isinstance(table, Mapping):
        raise PolicyError(f"{where}: expected tables [{where}.NAME]")
    errors: list[str] = []
    for name, doc in table.items():
        at = f"{where}.{name}"
        if name in BUILTIN_CALENDARS:
            errors.append(f"{at}: {name!r} is the built-in calendar and cannot be redefined")
            continue
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{at}: a calendar needs a non-empty name")
            continue
        cal = _parse_calendar(name, doc, at, errors)
        if cal is not None:
            out[name] = cal
    if errors:
        raise PolicyError("\n".join(errors))
    return out


def lookup_calendar(calendars: Mapping[str, Calendar], name: Any, where: str) -> Calendar:
    """The calendar a plan or priority names, or a PolicyError naming that field."""
    if isinstance(name, str) and name in calendars:
        return calendars[name]
    have = ", ".join(sorted(calendars))
    raise PolicyError(f"{where}: unknown calendar {name!r} (have {have})")
