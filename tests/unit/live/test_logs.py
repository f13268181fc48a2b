"""Quiet logs: repeated warnings are written once per window with a count; a summary line."""

from __future__ import annotations

import logging

from caseclock.live.logs import RepeatFilter, Summary


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_are_held_back_and_counted_in_the_next_line() -> None:
    now = [0.0]
    f = RepeatFilter(window_s=60, clock=lambda: now[0])
    passed = []
    for i in range(5830):  # a 40 s broker outage's worth of connection errors
        now[0] = i * 40 / 5830
        r = record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "x")
        if f.filter(r):
            passed.append(r)
    assert len(passed) == 1 and f.suppressed_total == 5829
    now[0] = 61.0
    r = record("aiokafka", logging.ERROR, "Unable connect to node with id %s: %s", 1, "x")
    assert f.filter(r)
    assert "[and 5829 more like this in the last 61 s]" in r.getMessage()


def test_distinct_templates_and_levels_are_separate_and_info_always_passes() -> None:
    f = RepeatFilter(window_s=60, clock=lambda: 0.0)
    assert f.filter(record("faust", logging.WARNING, "a %s", 1))
    assert f.filter(record("faust", logging.WARNING, "b %s", 1))
    assert f.filter(record("faust", logging.ERROR, "a %s", 1))
    assert f.filter(record("mode", logging.WARNING, "a %s", 1))
    assert not f.filter(record("faust", logging.WARNING, "a %s", 2))
    assert all(f.filter(record("caseclock", logging.INFO, "same")) for _ in range(100))


def test_summary_line_reports_and_resets() -> None:
    s = Summary()
    s.add("applied", 1200)
    s.add("duplicate", 3)
    s.add("alert", 40)
    s.add("catch-up", 2)
    s.add("tick", 41)
    line = s.line("partitions [0, 1]")
    assert line.startswith("events 1200 applied, 3 duplicate, 0 dead-lettered; alerts 40 ")
    assert "(2 catch-up, 0 undeliverable); ticks 41; partitions [0, 1]" in line
    assert s.line().startswith("events 0 applied")
