"""Quiet logs: what an operator reads during an incident must fit on a screen.

Two mechanisms:

* `RepeatFilter` lets the first record of each kind (logger, level, message template) through
  per window and counts the rest; the next one let through after the window carries the count
  ("... [and 212 more like this in the last 60 s]"). A broker outage then writes a few lines a
  minute per kind of error instead of thousands. Records below WARNING pass untouched (they
  are only on when an operator asked for them).
* `Summary` accumulates what the worker did and renders one line per interval (events,
  duplicates, dead letters, alerts, ticks), so silence in the log means "nothing happened", and
  per-alert lines can stay at debug level.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

WINDOW_S = 60.0


class RepeatFilter(logging.Filter):
    """Rate-limits repeated WARNING+ records per (logger, level, template), with a count."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[tuple[str, int, str], tuple[float, int]] = {}
        self.suppressed_total = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        opened = self._windows.get(key)
        if opened is None or now - opened[0] >= self.window_s:
            held = 0 if opened is None else opened[1]
            self._windows[key] = (now, 0)
            if held:
                span = round(now - opened[0]) if opened is not None else 0
                record.msg = f"{record.msg} [and {held} more like this in the last {span} s]"
            if len(self._windows) > 4096:  # many distinct templates: forget the old windows
                self._windows = {
                    k: v for k, v in self._windows.items() if now - v[0] < 2 * self.window_s
                }
            return True
        self._windows[key] = (opened[0], opened[1] + 1)
        self.suppressed_total += 1
        return False


class Summary:
    """What the worker did since the last line; `line()` renders and resets it."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def line(self, extra: str = "") -> str:
        c = self.counts
        text = (
            f"events {c['applied']} applied, {c['duplicate']} duplicate, "
            f"{c['dead-letter']} dead-lettered; alerts {c['alert']} "
            f"({c['catch-up']} catch-up, {c['undeliverable']} undeliverable); "
            f"ticks {c['tick']}"
        )
        self.counts = Counter()
        return f"{text}; {extra}" if extra else text
