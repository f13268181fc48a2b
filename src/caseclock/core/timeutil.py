"""Time as integers.

The engine keeps every instant as integer microseconds since the Unix epoch (UTC) and every
duration as integer microseconds. Integers are exact (no float rounding at a deadline, where
"inclusive" matters), cheap to compare, and small to store in the per-case state.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

US = 1_000_000
"""Microseconds per second."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

_UNITS = {"ms": 1_000, "s": US, "m": 60 * US, "h": 3600 * US, "d": 86400 * US, "w": 604800 * US}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def to_us(dt: datetime) -> int:
    """An aware datetime as exact integer microseconds since the epoch."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: a UTC offset is required")
    return (dt - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def parse_duration(text: str) -> int:
    """Parse a readable duration ("90s", "4h", "1h30m", "2d", "250ms") into microseconds.

    Readable durations keep policy files reviewable by the support managers who own the plan.
    """
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r}: use e.g. '90s', '45m', '4h', '1h30m', '2d'")
    return round(total)
