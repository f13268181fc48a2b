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
* with ``--pauses`` (``iter_events(..., pauses=True)``): about a quarter of the cases wait on
  the customer for a while (``status-changed`` to ``pending`` and back to ``open``), and ~5% of
  the resolved cases are reopened once and resolved again later. Off by default, so the
  histories of the checked-in benchmark figures stay what they were; the decisions come from a
  second random stream, so turning it on adds events without changing the others' times.

Output is streamed: only the pending events of open cases and a few minutes of delivery buffer
are held in memory. Deterministic for a seed (``random.Random(seed)``, no wall clock, no hash
ordering). Importable: ``iter_events(n, seed, start) -> Iterator[bytes]`` (lines without "\\n").
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_START",
    "GeneratorStats",
    "iter_events",
    "main",
    "make_customer",
    "make_subject",
]

DEFAULT_START = "2026-01-01T00:00:00Z"
DEFAULT_RATE = 400.0
"""Case arrivals per hour."""

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR

# support-plus windows (ms), per priority
_ACK = {1: 1 * HOUR, 2: 4 * HOUR, 3: 8 * HOUR}
_UPDATE = {1: 4 * HOUR, 2: 48 * HOUR, 3: 120 * HOUR}
_TTO = _ACK

_PRIORITIES = (1, 2, 3)
_PRIORITY_WEIGHTS = (0.10, 0.35, 0.55)

# lifecycle shape per priority
_LIFE_MEDIAN = {1: 8 * HOUR, 2: 36 * HOUR, 3: 80 * HOUR}  # log-normal, sigma 0.9
_LIFE_SIGMA = 0.9
_P_ABANDONED = 0.06  # never resolved (activity stops, the case stays open)
_P_NO_REPORTED_AT = 0.25
_P_LATE_OPEN = 0.04  # opened after the time-to-open window
_P_PRE_OPEN_NOTE = 0.03
_P_NEVER_ACK = 0.08
_P_LATE_ACK = 0.12
_P_LATE_UPDATE = 0.10
_CUSTOMER_NOTE_EVERY = {1: 3 * HOUR, 2: 16 * HOUR, 3: 36 * HOUR}  # mean interval
_INTERNAL_NOTE_EVERY = {1: 2 * HOUR, 2: 14 * HOUR, 3: 40 * HOUR}
_P_SYSTEM_NOTE = 0.12  # share of internal notes written by the system
_P_ETA = {1: 0.50, 2: 0.45, 3: 0.20}
_ETA_MEDIAN = {1: 4 * HOUR, 2: 24 * HOUR, 3: 72 * HOUR}
_P_ETA_IN_PAST = 0.08
_P_ETA_IS_ACK = 0.30
_P_RESOLVED_NEAR_ETA = 0.6
_P_REESTIMATE = 0.5
_P_WORKAROUND = {1: 0.30, 2: 0.30, 3: 0.10}
_P_RAISE = 0.06
_P_LOWER = 0.04
_P_NOTE_AFTER_RESOLVED = 0.03
_P_DELAYED = 0.01  # delivered late: out of order
_DELAY_RANGE = (30_000, 10 * MIN)
_P_DUPLICATE = 0.005
_P_PAUSE = 0.25  # with pauses=True: the case waits on the customer once
_P_REOPEN = 0.05  # with pauses=True: a resolved case is reopened once
_DUP_DELAY_RANGE = (0, 90_000)

_CUSTOMERS = 5000
_SUBJECT_A = (
    "Login fails",
    "Checkout returns 500",
    "Invoices not generated",
    "Dashboard loads slowly",
    "API rate limit errors",
    "Webhook deliveries delayed",
    "Cannot reset password",
    "Export to CSV truncated",
    "Payments declined",
    "Search returns no results",
    "SSO redirect loop",
    "Mobile app crashes on start",
    "Email notifications missing",
    "Data sync stuck",
    "Report totals incorrect",
)
_SUBJECT_B = (
    "for all users",
    "in EU region",
    "since last deploy",
    "after upgrade to 4.2",
    "for some accounts",
    "on staging and production",
    "intermittently",
    "with large files",
    "",
)
_RESOLUTIONS = (
    "fixed",
    "service restored",
    "configuration corrected",
    "fixed in release",
    "workaround accepted by customer",
    "duplicate of another case",
    "no longer reproducible",
)

_SUBJECT_REF = ("order", "invoice", "job", "request", "tenant", "build")


def make_customer(rng: random.Random) -> str:
    """A customer id out of a fixed population (ids repeat across cases, as in real desks)."""
    return f"CUST-{rng.randrange(_CUSTOMERS):05d}"


def make_subject(rng: random.Random) -> str:
    """A short subject line; most carry a reference number, so most are unique strings."""
    subject = f"{rng.choice(_SUBJECT_A)} {rng.choice(_SUBJECT_B)}".rstrip()
    if rng.random() < 0.7:
        subject += f" ({rng.choice(_SUBJECT_REF)} {rng.randrange(10**6):06d})"
    return subject


# event kinds inside the simulation (compact tuples; encoded when popped)
_OPENED, _NOTED, _ETA, _RESOLVED, _PRIORITY, _STATUS, _REOPENED = range(7)


class GeneratorStats:
    """Counters of what a generator run produced (filled as lines are yielded)."""

    def __init__(self) -> None:
        self.lines = 0
        self.by_type: Counter[str] = Counter()
        self.cases = 0
        self.delayed = 0
        self.duplicates = 0
        self.pre_open_notes = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        span_h = None
        if self.first_ms is not None and self.last_ms is not None:
            span_h = round((self.last_ms - self.first_ms) / HOUR, 1)
        return {
            "lines": self.lines,
            "cases_generated": self.cases,
            "by_type": dict(sorted(self.by_type.items())),
            "delayed": self.delayed,
            "duplicates": self.duplicates,
            "pre_open_notes": self.pre_open_notes,
            "span_hours": span_h,
        }


def _parse_start(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"naive timestamp {text!r}: a UTC offset is required")
    return int(dt.timestamp() * 1000)


_ts_cache: dict[int, str] = {}


def _ts(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-01-01T09:30:00.123Z."""
    s, frac = divmod(ms, 1000)
    day, sod = divmod(s, 86400)
    prefix = _ts_cache.get(day)
    if prefix is None:
        if len(_ts_cache) > 4096:
            _ts_cache.clear()
        prefix = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
        _ts_cache[day] = prefix
    h, rem = divmod(sod, 3600)
    m, sec = divmod(rem, 60)
    return f"{prefix}{h:02d}:{m:02d}:{sec:02d}.{frac:03d}Z"


class _Sim:
    def __init__(
        self, seed: int, start_ms: int, rate: float, stats: GeneratorStats, pauses: bool = False
    ) -> None:
        self.rng = random.Random(seed)
        self.pauses = pauses
        self.life_rng = random.Random(seed * 1_000_003 + 7)
        self.start = start_ms
        self.rate_per_ms = rate / HOUR
        self.stats = stats
        self.heap: list[tuple[int, int, str, int, Any]] = []
        self.seq = 0
        self.case_no = 0
        self.next_arrival = start_ms + self._gap()

    # --- helpers ---------------------------------------------------------------------------

    def _gap(self) -> int:
        return max(1, round(self.rng.expovariate(self.rate_per_ms)))

    def _push(self, t: int, case_id: str, kind: int, extra: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, case_id, kind, extra))

    def _event_id(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _poisson_times(self, start: int, end: int, mean_gap: int) -> list[int]:
        out: list[int] = []
        t = start
        while True:
            t += max(1000, round(self.rng.expovariate(1.0 / mean_gap)))
            if t >= end:
                return out
            out.append(t)

    # --- one case ----------------------------------------------------------------------------

    def new_case(self, arrival: int) -> None:
        rng = self.rng
        self.case_no += 1
        self.stats.cases += 1
        case_id = f"CS-{self.case_no:08d}"
        prio = rng.choices(_PRIORITIES, _PRIORITY_WEIGHTS)[0]

        # opening: some minutes after the customer reported it
        if rng.random() < _P_LATE_OPEN:
            lag = round(_TTO[prio] * rng.uniform(1.05, 3.0))
        else:
            lag = min(round(rng.expovariate(1.0 / (0.15 * _TTO[prio]))), _TTO[prio])
        lag = max(lag, 2000)
        t_open = arrival + lag
        opened: dict[str, Any] = {"priority": prio, "plan": "support-plus"}
        if rng.random() >= _P_NO_REPORTED_AT:
            opened["reported_at"] = _ts(arrival)
        opened["customer_id"] = make_customer(rng)
        opened["subject"] = make_subject(rng)
        self._push(t_open, case_id, _OPENED, opened)
        if rng.random() < _P_PRE_OPEN_NOTE:
            # the customer's original message, recorded before the case was opened
            self._push(arrival + rng.randrange(lag), case_id, _NOTED, ("customer", "public", False))
            self.stats.pre_open_notes += 1

        # lifetime
        life = max(10 * MIN, round(_LIFE_MEDIAN[prio] * math.exp(rng.gauss(0.0, _LIFE_SIGMA))))
        abandoned = rng.random() < _P_ABANDONED
        t_end = t_open + life  # resolution, or the end of activity for an abandoned case

        # priority change: raise or lower once, somewhere in the life of the case
        changes: list[tuple[int, int]] = [(t_open, prio)]
        u = rng.random()
        new_prio = None
        if u < _P_RAISE and prio > 1:
            new_prio = 1 if rng.random() < 0.3 else prio - 1
        elif _P_RAISE <= u < _P_RAISE + _P_LOWER and prio < 3:
            new_prio = prio + 1
        if new_prio is not None:
            t_change = t_open + round(life * rng.uniform(0.05, 0.7))
            changes.append((t_change, new_prio))
            self._push(t_change, case_id, _PRIORITY, new_prio)

        def prio_at(t: int) -> int:
            return changes[-1][1] if t >= changes[-1][0] else changes[0][1]

        # acknowledgement
        t_ack = None
        if rng.random() >= _P_NEVER_ACK:
            if rng.random() < _P_LATE_ACK:
                t_ack = t_open + round(_ACK[prio] * rng.uniform(1.0, 2.5))
            else:
                t_ack = t_open + round(_ACK[prio] * rng.uniform(0.02, 0.7))
            if t_ack >= t_end:
                t_ack = None

        # ETA (may be the acknowledgement itself), possibly re-estimated
        if rng.random() < _P_ETA[prio]:
            if t_ack is not None and rng.random() < _P_ETA_IS_ACK:
                t_set = t_ack
                t_ack_note = None
            else:
                base = t_ack if t_ack is not None else t_open
                mean = max(1.0, 0.2 * (t_end - base))
                t_set = base + min(round(rng.expovariate(1.0 / mean)), (t_end - base) // 2)
                t_ack_note = t_ack
            if rng.random() < _P_ETA_IN_PAST:
                eta = t_set - round(rng.uniform(0.5, 12) * HOUR)  # already past when set
            else:
                eta = t_set + round(_ETA_MEDIAN[prio] * math.exp(rng.gauss(0.0, 0.7)))
            if not abandoned and eta > t_set and rng.random() < _P_RESOLVED_NEAR_ETA:
                t_end = max(t_set + MIN, eta + round((eta - t_set) * rng.uniform(-0.5, 0.2)))
            self._push(t_set, case_id, _ETA, eta)
            if eta > t_set and eta < t_end and rng.random() < _P_REESTIMATE:
                t_re = eta + round(rng.uniform(-0.2, 2.0) * HOUR)
                if t_set < t_re < t_end:
                    self._push(t_re, case_id, _ETA, t_re + round(rng.uniform(2, 48) * HOUR))
            t_ack_first: int | None = t_set if t_ack_note is None else min(t_set, t_ack_note)
        else:
            t_ack_note = t_ack
            t_ack_first = t_ack
        if t_ack_note is not None:
            self._push(t_ack_note, case_id, _NOTED, ("support", "public", False))

        # periodic public updates after the acknowledgement
        if t_ack_first is not None:
            t = t_ack_first
            while True:
                w = _UPDATE[prio_at(t)]
                if rng.random() < _P_LATE_UPDATE:
                    t += round(w * rng.uniform(1.0, 2.0))
                else:
                    t += round(w * rng.uniform(0.05, 0.9))
                if t >= t_end:
                    break
                self._push(t, case_id, _NOTED, ("support", "public", False))

        # workaround
        if t_ack_first is not None and rng.random() < _P_WORKAROUND[prio]:
            t_wa = t_ack_first + round(rng.expovariate(1.0 / max(1, 0.3 * (t_end - t_ack_first))))
            if t_wa < t_end:
                self._push(t_wa, case_id, _NOTED, ("support", "public", True))

        # customer and internal notes
        for t in self._poisson_times(t_open, t_end, _CUSTOMER_NOTE_EVERY[prio]):
            self._push(t, case_id, _NOTED, ("customer", "public", False))
        for t in self._poisson_times(t_open, t_end, _INTERNAL_NOTE_EVERY[prio]):
            if rng.random() < _P_SYSTEM_NOTE:
                vis = "public" if rng.random() < 0.3 else "internal"
                self._push(t, case_id, _NOTED, ("system", vis, False))
            else:
                self._push(t, case_id, _NOTED, ("support", "internal", False))

        # resolution
        if not abandoned:
            self._push(t_end, case_id, _RESOLVED, rng.choice(_RESOLUTIONS))
            if rng.random() < _P_NOTE_AFTER_RESOLVED:
                t_thanks = t_end + round(rng.expovariate(1.0 / (2 * HOUR)))
                self._push(t_thanks, case_id, _NOTED, ("customer", "public", False))
        if self.pauses:
            self._lifecycle(case_id, t_open, t_end, abandoned)

    def _lifecycle(self, case_id: str, t_open: int, t_end: int, abandoned: bool) -> None:
        """Pauses and a reopen (only with pauses=True), drawn from their own random stream."""
        lr = self.life_rng
        if lr.random() < _P_PAUSE:
            t_pause = t_open + round((t_end - t_open) * lr.uniform(0.1, 0.6))
            self._push(t_pause, case_id, _STATUS, "pending")
            t_back = t_pause + round((t_end - t_pause) * lr.uniform(0.1, 0.8))
            self._push(t_back, case_id, _STATUS, "open")
        if not abandoned and lr.random() < _P_REOPEN:
            t_reopen = t_end + round(lr.uniform(0.5, 48) * HOUR)
            self._push(t_reopen, case_id, _REOPENED, None)
            self._push(t_reopen + 10 * MIN, case_id, _NOTED, ("support", "public", False))
            self._push(t_reopen + round(lr.uniform(1, 24) * HOUR), case_id, _RESOLVED, "fixed")

    # --- encoding ----------------------------------------------------------------------------

    def encode(self, t: int, case_id: str, kind: int, extra: Any) -> bytes:
        ev: dict[str, Any]
        if kind == _NOTED:
            author, vis, wa = extra
            ev = {
                "event_id": self._event_id(),
                "type": "case-noted",
                "case_id": case_id,
                "occurred_at": _ts(t),
                "author": author,
                "visibility": vis,
            }
            if wa:
                ev["workaround"] = True
        elif kind == _OPENED:
            ev = {
                "event_id": self._event_id(),
                "type": "case-opened",
                "case_id": case_id,
                "occurred_at": _ts(t),
                **extra,
            }
        elif kind == _ETA:
            ev = {
                "event_id": self._event_id(),
                "type": "eta-set",
                "case_id": case_id,
                "occurred_at": _ts(t),
                "eta": _ts(extra),
            }
        elif kind == _RESOLVED:
            ev = {
                "event_id": self._event_id(),
                "type": "case-resolved",
                "case_id": case_id,
                "occurred_at": _ts(t),
                "resolution": extra,
            }
        elif kind == _STATUS:
            ev = {
                "event_id": self._event_id(),
                "type": "status-changed",
                "case_id": case_id,
                "occurred_at": _ts(t),
                "status": extra,
            }
        elif kind == _REOPENED:
            ev = {
                "event_id": self._event_id(),
                "type": "case-reopened",
                "case_id": case_id,
                "occurred_at": _ts(t),
            }
        else:
            ev = {
                "event_id": self._event_id(),
                "type": "priority-changed",
                "case_id": case_id,
                "occurred_at": _ts(t),
                "priority": extra,
            }
        self.stats.by_type[ev["type"]] += 1
        return orjson.dumps(ev)

    # --- the stream --------------------------------------------------------------------------

    def run(self, n: int) -> Iterator[bytes]:
        """Yield n lines in delivery order (mostly occurred_at order; some late, some twice)."""
        rng = self.rng
        heap = self.heap
        stats = self.stats
        delivery: list[tuple[int, int, bytes]] = []
        dseq = 0
        emitted = 0
        while emitted < n:
            if not heap or self.next_arrival <= heap[0][0]:
                self.new_case(self.next_arrival)
                self.next_arrival += self._gap()
                continue
            t, _, case_id, kind, extra = heapq.heappop(heap)
            line = self.encode(t, case_id, kind, extra)
            deliver_at = t
            if rng.random() < _P_DELAYED:
                deliver_at = t + rng.randint(*_DELAY_RANGE)
                stats.delayed += 1
            dseq += 1
            heapq.heappush(delivery, (deliver_at, dseq, line))
            if rng.random() < _P_DUPLICATE:
                dseq += 1
                heapq.heappush(delivery, (deliver_at + rng.randint(*_DUP_DELAY_RANGE), dseq, line))
                stats.duplicates += 1
            while delivery and delivery[0][0] <= t:
                at, _, out = heapq.heappop(delivery)
                emitted += 1
                stats.lines = emitted
                if stats.first_ms is None:
                    stats.first_ms = at
                stats.last_ms = at
                yield out
                if emitted >= n:
                    return


def iter_events(
    n: int,
    seed: int = 1,
    start: str | int = DEFAULT_START,
    *,
    rate: float = DEFAULT_RATE,
    stats: GeneratorStats | None = None,
    pauses: bool = False,
) -> Iterator[bytes]:
    """Yield exactly n JSON-encoded inbound events (bytes, no newline), deterministic per seed.

    `start` is an RFC 3339 timestamp (or epoch milliseconds); `rate` is case arrivals per hour.
    Pass a GeneratorStats to collect counters while iterating. `pauses` adds status changes
    (waiting on the customer) and reopened cases.
    """
    start_ms = start if isinstance(start, int) else _parse_start(start)
    sim = _Sim(seed, start_ms, rate, stats if stats is not None else GeneratorStats(), pauses)
    return sim.run(n)


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
