"""Realistic support histories as JSON lines of inbound events (docs/semantics.md section 2).

    python bench/generate.py --events 1000000 --seed 1 [--start 2026-01-01T00:00:00Z] [--out -]

The history is a small discrete-event simulation of a support desk on the "support-plus" plan:

* cases arrive as a Poisson process (``--rate`` cases per hour, default 400: with 1M events that
  keeps tens of thousands of cases open at once); priorities ~10% P1, 35% P2, 55% P3;
* a case is opened some minutes after the customer reported it (``reported_at``; a few percent
  exceed the time-to-open window), with a customer id and a subject;
* most cases are acknowledged (a public support note, sometimes an ETA), some late, some never;
  public updates follow at a fraction of the priority's update window (about 1 in 10 late);
* customer notes, internal notes (support and system), ETAs (some in the past, some that pass
  before the case is resolved, some re-estimated), workarounds, priority raises and lowers;
* resolution after hours (P1) to days (P3); some cases are abandoned and never resolved;
* delivery faults: ~1% of events arrive a few minutes late (out of order), ~0.5% are delivered
  twice (same event_id, same bytes), and ~3% of cases have a customer note that occurred (and
  arrives) before their case-opened.
* with ``--pauses``: about a quarter of the cases wait on the customer for a while
  (``status-changed`` to ``pending`` and back to ``open``), and ~5% of the resolved cases are
  reopened once and resolved again later. Off by default, so the histories of the checked-in
  benchmark figures stay what they were; drawn from a second random stream, so turning it on
  adds events without changing the others' times.

Output is streamed: only the pending events of open cases and a few minutes of delivery buffer
are held in memory. Deterministic for a seed (``random.Random(seed)``, no wall clock, no hash
ordering). Importable: ``iter_events(n, seed, start) -> Iterator[bytes]`` (lines without "\\n").

The simulation itself is the package's one support-desk simulator
(``caseclock.cli.simulator``, shared with the demo and the end-to-end test); this file is its
command line, kept where the benchmarks and their results refer to it.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from caseclock.cli.simulator import (
    DEFAULT_RATE,
    DEFAULT_START,
    GeneratorStats,
    iter_events,
    make_customer,
    make_subject,
)

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_START",
    "GeneratorStats",
    "iter_events",
    "main",
    "make_customer",
    "make_subject",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, required=True, help="number of lines to write")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default=DEFAULT_START, help=f"RFC 3339 (default {DEFAULT_START})")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, help="case arrivals per hour")
    p.add_argument("--out", default="-", help="output file, or - for stdout (default)")
    p.add_argument("--stats", action="store_true", help="print counters as JSON on stderr")
    p.add_argument("--pauses", action="store_true", help="add pauses and reopened cases")
    args = p.parse_args(argv)
    stats = GeneratorStats()
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    try:
        buf: list[bytes] = []
        for line in iter_events(
            args.events, args.seed, args.start, rate=args.rate, stats=stats, pauses=args.pauses
        ):
            buf.append(line)
            if len(buf) >= 4096:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")
        out.flush()
    except BrokenPipeError:
        return 0
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    if args.stats:
        print(orjson.dumps(stats.to_dict()).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
