"""Wall-clock time as the tests handle it: integer microseconds, RFC 3339 text, waiting.

Events, alerts and scripts all speak microseconds since the epoch (as the core does); these
turn them into and out of the contracts' text form and wait for an instant or a condition.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from caseclock.core.timeutil import from_us, to_us

US = 1_000_000


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    """RFC 3339 with a UTC offset, microsecond precision."""
    return from_us(us).isoformat()


def ts_us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


def wait_until(
    predicate: Any, timeout: float, interval: float = 0.2, what: str = "", detail: Any = None
) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds (with `detail()`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    extra = f": {detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}{extra}")


def sleep_until(at_us: int) -> None:
    delay = (at_us - now_us()) / US
    if delay > 0:
        time.sleep(delay)
