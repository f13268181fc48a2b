"""Business-time arithmetic speed: Calendar.add and Calendar.elapsed per second, on one core.

    taskset -c 0 .venv/bin/python bench/calendar_bench.py

Compares the built-in ``24x7`` calendar (the identity fast path) with the spec's business-hours
calendar (Europe/Berlin, Monday-Thursday 09:00-17:00, Friday 09:00-13:00 and 14:00-17:00) with
the German public holidays of 2026-2027, and the same hours in America/New_York with US
holidays. The inputs are what the engine asks for: starts spread uniformly over 2026 (so
across both DST changes and every holiday) and the support-plus windows (1 h, 4 h, 8 h, 48 h,
120 h) and their warnings at 0.75.

- ``add`` / ``elapsed`` warm: the per-day interval cache already holds the year (the steady
  state of a long-running worker: about 2000 UTC days fit in each calendar's cache); also
  ``add`` per window length (µs per call), since a 120 h window spans about three weeks of a
  39 h calendar and a 1 h window usually one day.
- ``add`` cold: a fresh Calendar for each repetition, so every day of the year is computed
  once during the pass (zone offsets stay cached per process, as in a worker);
  ``day_intervals``: what computing one UTC day's open intervals costs (a cache miss).

- ``add`` goes through the calendar's memo of answers (65,536 per calendar): with ``--n``
  inputs above that, a pass finds almost nothing remembered, so ``add_warm`` is the arithmetic
  plus the memo's bookkeeping; ``add_warm_arithmetic`` is the arithmetic alone (``_add``) and
  ``add_memo_hit`` a question asked again (what the engine's repeated questions cost).

Each figure is the best of ``--repeat`` passes over the same ``--n`` inputs (loop overhead
included: a bare loop over the inputs is reported too). Results go to
bench/results/calendar-<UTC date>.json, with the header of bench/common.py.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from caseclock.core.calendars import Calendar, parse_calendars
from caseclock.core.timeutil import to_us
from common import add_run_arguments, pin_to_one_core, result_header, write_result

BENCH = Path(__file__).resolve().parent
H = 3600 * 10**6
WINDOWS = (1 * H, 4 * H, 8 * H, 48 * H, 120 * H)

_WEEKDAYS = {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu")}
CALENDARS_DOC: dict[str, Any] = {
    "emea-business": {
        "timezone": "Europe/Berlin",
        "hours": {**_WEEKDAYS, "fri": "09:00-13:00,14:00-17:00"},
        "holidays": [
            "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14",
            "2026-05-25", "2026-10-03", "2026-12-24", "2026-12-25", "2026-12-26",
            "2026-12-31", "2027-01-01", "2027-03-26", "2027-03-29",
        ],
    },
    "us-business": {
        "timezone": "America/New_York",
        "hours": {**_WEEKDAYS, "fri": "09:00-17:00"},
        "holidays": [
            "2026-01-01", "2026-01-19", "2026-02-16", "2026-05-25", "2026-06-19",
            "2026-07-03", "2026-09-07", "2026-11-26", "2026-11-27", "2026-12-25",
            "2027-01-01", "2027-01-18",
        ],
    },
}  # fmt: skip


def _inputs(n: int, seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(start, window) pairs for add, (a, b) pairs for elapsed, all within 2026."""
    rng = random.Random(seed)
    lo = to_us(datetime(2026, 1, 1, tzinfo=UTC))
    hi = to_us(datetime(2027, 1, 1, tzinfo=UTC))
    windows = [w for full in WINDOWS for w in (full, full * 3 // 4)]
    adds = [(rng.randrange(lo, hi), rng.choice(windows)) for _ in range(n)]
    spans = []
    for _ in range(n):
        a = rng.randrange(lo, hi)
        spans.append((a, a + rng.randrange(0, 14 * 24 * H)))
    return adds, spans


def _best_rate(
    fn: Callable[[int, int], int], pairs: Sequence[tuple[int, int]], repeat: int
) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x, y in pairs:
            fn(x, y)
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    return {
        "ops_per_s": round(len(pairs) / best),
        "us_per_op": round(best / len(pairs) * 1e6, 3),
        "median_us_per_op": round(statistics.median(runs) / len(pairs) * 1e6, 3),
    }


def _cold_rate(
    make: Callable[[], Calendar], pairs: Sequence[tuple[int, int]], repeat: int
) -> dict[str, Any]:
    runs = []
    days = 0
    for _ in range(repeat):
        cal = make()
        add = cal.add
        t0 = time.perf_counter()
        for s, d in pairs:
            add(s, d)
        runs.append(time.perf_counter() - t0)
        days = len(cal._cache)
    best = min(runs)
    return {
        "ops_per_s": round(len(pairs) / best),
        "us_per_op": round(best / len(pairs) * 1e6, 3),
        "days_computed": days,
    }


def _day_cost(make: Callable[[], Calendar], repeat: int) -> dict[str, Any]:
    """Computing one UTC day's open intervals (what a cache miss costs), over 2026."""
    k0 = to_us(datetime(2026, 1, 1, tzinfo=UTC)) // (24 * H)
    runs = []
    for _ in range(repeat):
        cal = make()
        t0 = time.perf_counter()
        for k in range(k0, k0 + 365):
            cal._compute_day(k)
        runs.append(time.perf_counter() - t0)
    return {"us_per_day": round(min(runs) / 365 * 1e6, 2)}


def _bare_loop(pairs: Sequence[tuple[int, int]], repeat: int) -> float:
    def nothing(x: int, y: int) -> int:
        return x

    return _best_rate(nothing, pairs, repeat)["us_per_op"]  # type: ignore[no-any-return]


def _fresh(cal: Calendar) -> Callable[[], Calendar]:
    return lambda: Calendar(cal.name, cal.timezone, cal.hours, cal.holidays)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=200_000, help="inputs per measurement")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5, help="passes; the best one is reported")
    add_run_arguments(p)
    args = p.parse_args(argv)

    started = datetime.now(UTC)
    pinning = pin_to_one_core(args.no_pin)
    adds, spans = _inputs(args.n, args.seed)
    calendars = parse_calendars(CALENDARS_DOC)
    measured: dict[str, Any] = {}
    for name in ("24x7", "emea-business", "us-business"):
        cal = calendars[name]
        print(f"{name} ...", file=sys.stderr)
        for s, d in adds:  # fill the cache: the warm figures are the steady state
            cal.add(s, d)
        row: dict[str, Any] = {
            "timezone": cal.timezone,
            "weekly_hours": cal.weekly_us / H,
            "holidays": len(cal.holidays),
            "add_warm": _best_rate(cal.add, adds, args.repeat),
            "elapsed_warm": _best_rate(cal.elapsed, spans, args.repeat),
        }
        if not cal.always_open:
            row["add_warm_arithmetic"] = _best_rate(cal._add, adds, args.repeat)
            again = [adds[i % 1000] for i in range(len(adds))]
            for s, d in again[:1000]:
                cal.add(s, d)
            row["add_memo_hit"] = _best_rate(cal.add, again, args.repeat)
            row["add_cold"] = _cold_rate(_fresh(cal), adds, args.repeat)
            row["day_intervals"] = _day_cost(_fresh(cal), args.repeat)
            row["add_warm_by_window_h"] = {
                str(w // H): _best_rate(cal.add, [(s, w) for s, _ in adds], args.repeat)[
                    "us_per_op"
                ]
                for w in WINDOWS
            }
        measured[name] = row
    base = measured["24x7"]["add_warm"]["us_per_op"]
    for row in measured.values():
        row["add_warm"]["x_24x7"] = round(row["add_warm"]["us_per_op"] / base, 2)

    result: dict[str, Any] = {
        **result_header("caseclock Calendar.add / Calendar.elapsed per second", started),
        "pinning": pinning,
        "parameters": {
            "n": args.n,
            "seed": args.seed,
            "repeat": args.repeat,
            "starts": "uniform over 2026 (UTC)",
            "add_windows_h": sorted({w / H for full in WINDOWS for w in (full, full * 3 // 4)}),
            "elapsed_spans": "uniform 0-14 days",
        },
        "bare_loop_us_per_op": _bare_loop(adds, args.repeat),
        "calendars": measured,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_result(result, "calendar", started, args)
    summary = {
        name: {k: row[k]["ops_per_s"] for k in ("add_warm", "add_cold", "elapsed_warm") if k in row}
        for name, row in measured.items()
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
