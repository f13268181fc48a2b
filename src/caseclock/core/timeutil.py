"""Time as integers.

The engine keeps every instant as integer microseconds since the Unix epoch (UTC) and every
duration as integer microseconds. Integers are exact (no float rounding at a deadline, where
"inclusive" matters), cheap to compare, and small to store in the per-case state.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

US = 1_000_000
"""Microseconds per second."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

MIN_INSTANT_US = 0
"""The earliest instant caseclock accepts on input: 1970-01-01T00:00:00Z (inclusive).

No support history is older than the Unix epoch: an earlier timestamp is a producer's bug (a
zero or a default date), and refusing it keeps every instant a non-negative integer."""

MAX_INSTANT_US = (datetime(2200, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US
"""The end of the instants caseclock accepts on input: 2200-01-01T00:00:00Z (exclusive).

A deadline is an instant plus a window counted in a calendar, and a calendar reads the local
date of every day it walks through; Python's dates end with the year 9999. Inputs before 2200
and windows bounded at policy load (`caseclock.core.policy`) keep every deadline centuries
away from that end, so the deadline arithmetic cannot overflow, however far it walks."""

MAX_DURATION_US = MAX_INSTANT_US - MIN_INSTANT_US
"""No readable duration is longer than the whole range of instants: anything longer is a typo."""

_UNITS = {"ms": 1_000, "s": US, "m": 60 * US, "h": 3600 * US, "d": 86400 * US, "w": 604800 * US}
_PART = re.compile(r"(\d+)(?:\.(\d+))?(ms|s|m|h|d|w)")
_MAX_DIGITS = 18
"""Digits in one number of a duration: more than any real window needs, and few enough that a
400-digit number is refused rather than computed."""


def to_us(dt: datetime) -> int:
    """An aware datetime as exact integer microseconds since the epoch."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: a UTC offset is required")
    return (dt - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def format_instant(us: int) -> str:
    """An instant as RFC 3339 in UTC with a ``Z``, as messages and alerts show instants."""
    return from_us(us).isoformat().replace("+00:00", "Z")


INSTANT_RANGE = f"{format_instant(MIN_INSTANT_US)}..{format_instant(MAX_INSTANT_US)}"
"""The accepted input instants, for messages: ``1970-01-01T00:00:00Z..2200-01-01T00:00:00Z``
(the first included, the second not)."""


def parse_duration(text: str, longest: int | None = MAX_DURATION_US) -> int:
    """Parse a readable duration ("90s", "4h", "1h30m", "2d", "250ms") into microseconds.

    Readable durations keep policy files reviewable by the support managers who own the plan.
    The arithmetic is exact (a decimal fraction is a fraction, rounded once to the nearest
    microsecond). A number of more than 18 digits, or a total longer than `longest` (the
    range of instants unless the caller bounds it itself: None), is refused with a ValueError
    like any other invalid duration: a typo must give an error naming it, never an
    OverflowError.
    """
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    pos = 0
    total = Fraction(0)
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        whole, frac, unit = m.groups()
        if len(whole) + len(frac or "") > _MAX_DIGITS:
            raise ValueError(f"invalid duration {text[:40]!r}: a number with too many digits")
        number = Fraction(int(whole))
        if frac:
            number += Fraction(int(frac), 10 ** len(frac))
        total += number * _UNITS[unit]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r}: use e.g. '90s', '45m', '4h', '1h30m', '2d'")
    if longest is not None and total > longest:
        raise ValueError(
            f"invalid duration {text!r}: longer than the range of instants caseclock accepts "
            f"({INSTANT_RANGE})"
        )
    return round(total)
