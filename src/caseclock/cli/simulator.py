"""The support-desk simulator: one model of a desk's traffic for the demo, the benchmarks and
the tests.

Three places need a support desk that produces inbound events, and each used to have its own:

* ``caseclock demo`` (a shipped entrypoint): cases played in real time under the demo policy,
  each following a random but plausible story, so that a newcomer sees every clock fire within
  a minute or two (`StoryDesk`, played by `play`);
* the benchmarks (``bench/generate.py``, ``replay_bench.py``, ``live_bench.py``): long realistic
  histories on a virtual clock, streamed, deterministic per seed (`iter_events`);
* the observability end-to-end test: 30 s of load on the production policy, back-dated so that
  every kind of alert and every dead-letter reason falls due while the test watches
  (`BackdatedDesk`, played by `play`).

What they share lives here once: the shape of an inbound event document (`event_doc`), the
timestamps, the customers and subjects, the support-plus windows (read from the built-in
policy, not re-typed), the malformed message of each dead-letter reason (`malformed`), a
desk's counters and its timeline of scheduled sends (`Desk`), and the wall-clock player that
sends what a desk has due, tick by tick (`play`). No Kafka client is imported: `play` is handed
a `send` coroutine, so the demo, the test and a benchmark bring their own producer.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson

from caseclock.contracts.inbound import REJECT_REASONS
from caseclock.core.policy import Plan, load_policy

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_START",
    "INPUT_REASONS",
    "MALFORMED_KINDS",
    "BackdatedDesk",
    "Desk",
    "GeneratorStats",
    "Message",
    "StoryDesk",
    "event_doc",
    "iter_events",
    "make_customer",
    "make_subject",
    "malformed",
    "play",
    "random_event_id",
    "rfc3339_ms",
    "support_plus",
]

Message = tuple[str, bytes | None, bytes | None]
"""(topic, key, value) of one record to produce; a value of None is a tombstone."""

Route = Callable[[str], str]
"""The topic an event type is produced to."""

DEFAULT_START = "2026-01-01T00:00:00Z"
DEFAULT_RATE = 400.0
"""Case arrivals per hour."""

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


# --- the vocabulary ----------------------------------------------------------------------------


def event_doc(
    type_: str, case_id: str, occurred_at: str, event_id: str, **fields: Any
) -> dict[str, Any]:
    """An inbound event document (the contract's common fields first, then the type's own)."""
    return {
        "event_id": event_id,
        "type": type_,
        "case_id": case_id,
        "occurred_at": occurred_at,
        **fields,
    }


def random_event_id(rng: random.Random) -> str:
    """A UUID-shaped event id drawn from `rng` (so a seeded desk repeats its ids too)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(dt: datetime) -> str:
    """RFC 3339 as Python writes it (``+00:00``), for wall-clock timestamps."""
    return dt.isoformat()


_ts_cache: dict[int, str] = {}


def rfc3339_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-01-01T09:30:00.123Z (fast: a history of a
    million events formats two million of these)."""
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


def support_plus() -> Plan:
    """The built-in support-plus plan: the windows the history and the end-to-end desk are
    shaped around, read from the policy file itself so that they cannot drift from it."""
    return load_policy().plans["support-plus"]


# The history simulation's shape (times in milliseconds), tuned to look like a real desk.
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


INPUT_REASONS = REJECT_REASONS[: REJECT_REASONS.index("misrouted")]
"""The reason codes of bad input in a message's key and value (the contract's reasons before
`misrouted`, which is about the partition a message was produced to; the ones after it are
faults of the service, not something a producer can send)."""

MALFORMED_KINDS = ("oversized", "tombstone", *(r for r in INPUT_REASONS if r != "oversized"))
"""Every kind of message a worker dead-letters at the door: one per input reason code, plus a
tombstone (rejected as ``invalid-json``). `BackdatedDesk` cycles through them in this order,
"oversized" first (see the end-to-end test's dead-letter topic)."""


def malformed(reason: str, route: Route, case: str, event_id: str, now: datetime) -> Message:
    """A message that the worker dead-letters for `reason` (one of `MALFORMED_KINDS`)."""
    opened = route("case-opened")
    key = case.encode()
    base: dict[str, Any] = {"type": "case-opened", "event_id": event_id, "case_id": case}
    ts = iso(now)
    if reason == "invalid-json":
        return opened, key, b'{"type": "case-opened", "event_id": '
    if reason == "tombstone":
        return route("case-noted"), key, None
    if reason == "invalid-event":
        doc = {**base, "type": "case-noted", "occurred_at": ts}  # no author, no visibility
        return route("case-noted"), key, orjson.dumps(doc)
    if reason == "unknown-type":
        return opened, key, orjson.dumps({**base, "type": "case-merged", "occurred_at": ts})
    if reason == "unknown-plan":
        doc = {**base, "occurred_at": ts, "priority": 1, "plan": "platinum"}
        return opened, key, orjson.dumps(doc)
    if reason == "unknown-priority":
        return opened, key, orjson.dumps({**base, "occurred_at": ts, "priority": 7})
    if reason == "naive-timestamp":
        doc = {**base, "occurred_at": now.replace(tzinfo=None).isoformat(), "priority": 2}
        return opened, key, orjson.dumps(doc)
    if reason == "timestamp-out-of-range":
        # valid RFC 3339, but no real fact: the year 9999 (the range is 1970 to 2200)
        doc = {**base, "occurred_at": ts, "priority": 2, "reported_at": "9999-12-31T10:00:00Z"}
        return opened, key, orjson.dumps(doc)
    if reason == "key-mismatch":
        return opened, b"someone-else", orjson.dumps({**base, "occurred_at": ts, "priority": 3})
    if reason == "oversized":
        # unknown fields are ignored, but the size limit (64 KiB) comes first
        doc = {**base, "occurred_at": ts, "priority": 3, "attachment": "x" * 70_000}
        return opened, key, orjson.dumps(doc)
    raise ValueError(f"no malformed message of kind {reason!r}")


# --- the benchmarks' histories: a virtual clock, deterministic per seed ---------------------


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


class _History:
    """The discrete-event simulation behind `iter_events` (times in epoch milliseconds)."""

    def __init__(
        self, seed: int, start_ms: int, rate: float, stats: GeneratorStats, pauses: bool = False
    ) -> None:
        self.pauses = pauses
        # Pauses and reopens draw from their own stream: turning them on adds events without
        # moving the others.
        self.life_rng = random.Random(seed * 1_000_003 + 7)
        rules = support_plus().priorities
        self.ack = {p: r.acknowledge // 1000 for p, r in rules.items()}
        self.tto = {p: (r.time_to_open or r.acknowledge) // 1000 for p, r in rules.items()}
        self.update = {p: r.update_every // 1000 for p, r in rules.items()}
        self.rng = random.Random(seed)
        self.start = start_ms
        self.rate_per_ms = rate / HOUR
        self.stats = stats
        self.heap: list[tuple[int, int, str, int, Any]] = []
        self.seq = 0
        self.case_no = 0
        self.next_arrival = start_ms + self._interarrival()

    # --- helpers ---------------------------------------------------------------------------

    def _interarrival(self) -> int:
        return max(1, round(self.rng.expovariate(self.rate_per_ms)))

    def _push(self, t: int, case_id: str, kind: int, extra: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, case_id, kind, extra))

    def _event_id(self) -> str:
        return random_event_id(self.rng)

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
            lag = round(self.tto[prio] * rng.uniform(1.05, 3.0))
        else:
            lag = min(round(rng.expovariate(1.0 / (0.15 * self.tto[prio]))), self.tto[prio])
        lag = max(lag, 2000)
        t_open = arrival + lag
        opened: dict[str, Any] = {"priority": prio, "plan": "support-plus"}
        if rng.random() >= _P_NO_REPORTED_AT:
            opened["reported_at"] = rfc3339_ms(arrival)
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
                t_ack = t_open + round(self.ack[prio] * rng.uniform(1.0, 2.5))
            else:
                t_ack = t_open + round(self.ack[prio] * rng.uniform(0.02, 0.7))
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
                w = self.update[prio_at(t)]
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
        at = rfc3339_ms(t)
        ev: dict[str, Any]
        if kind == _NOTED:
            author, vis, wa = extra
            ev = event_doc(
                "case-noted", case_id, at, self._event_id(), author=author, visibility=vis
            )
            if wa:
                ev["workaround"] = True
        elif kind == _OPENED:
            ev = event_doc("case-opened", case_id, at, self._event_id(), **extra)
        elif kind == _ETA:
            ev = event_doc("eta-set", case_id, at, self._event_id(), eta=rfc3339_ms(extra))
        elif kind == _RESOLVED:
            ev = event_doc("case-resolved", case_id, at, self._event_id(), resolution=extra)
        elif kind == _STATUS:
            ev = event_doc("status-changed", case_id, at, self._event_id(), status=extra)
        elif kind == _REOPENED:
            ev = event_doc("case-reopened", case_id, at, self._event_id())
        else:
            ev = event_doc("priority-changed", case_id, at, self._event_id(), priority=extra)
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
                self.next_arrival += self._interarrival()
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
    (about a quarter of the cases wait on the customer once) and reopened cases (about 5% of
    the resolved ones); off by default, so existing seeds keep their histories.
    """
    start_ms = start if isinstance(start, int) else _parse_start(start)
    sim = _History(seed, start_ms, rate, stats if stats is not None else GeneratorStats(), pauses)
    return sim.run(n)


# --- desks on the wall clock: the demo and the end-to-end test ---------------------------------


class Desk:
    """A desk that sends at wall-clock times, for `play`.

    Builds its messages (ids, timestamps, topics, counted by kind in `sent`) and keeps the
    timeline of what it has scheduled: `schedule(delay, make)` sends `make(now)` `delay`
    seconds from now, with `now` the wall time of sending, so an event's occurred_at is when
    it was produced. Subclasses say what each tick adds (`tick`) and when they are done."""

    def __init__(self, route: Route, seed: int | None, id_prefix: str) -> None:
        self.route = route
        self.rng = random.Random(seed)
        self.id_prefix = id_prefix
        self.sent: Counter[str] = Counter()
        self.stopped = threading.Event()
        """Set (from any thread) to make `play` return after the current tick."""
        self._later: list[tuple[float, int, Callable[[datetime], Message]]] = []
        self._seq = 0

    def new_id(self) -> str:
        self._seq += 1
        return f"{self.id_prefix}-{self._seq}"

    def doc(self, type_: str, case: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return event_doc(type_, case, iso(at), self.new_id(), **fields)

    def message(self, doc: dict[str, Any]) -> Message:
        self.sent[doc["type"]] += 1
        return self.route(doc["type"]), str(doc["case_id"]).encode(), orjson.dumps(doc)

    def malformed(self, reason: str, case: str, now: datetime) -> Message:
        self.sent[f"dead:{reason}"] += 1
        return malformed(reason, self.route, case, f"bad-{self.new_id()}", now)

    def schedule(self, delay: float, make: Callable[[datetime], Message]) -> None:
        self._seq += 1
        heapq.heappush(self._later, (time.monotonic() + delay, self._seq, make))

    def due(self, mono: float) -> list[Message]:
        """The scheduled messages due by `mono` (time.monotonic()), in order, made now."""
        out: list[Message] = []
        while self._later and self._later[0][0] <= mono:
            _, _, make = heapq.heappop(self._later)
            out.append(make(datetime.now(UTC)))
        return out

    @property
    def scheduled(self) -> int:
        return len(self._later)

    def tick(self, i: int) -> list[Message]:
        """What tick `i` sends besides the scheduled messages now due."""
        return []

    def finished(self) -> bool:
        """True when the desk has nothing more to send (`play` then returns)."""
        return False


async def play(
    desk: Desk,
    send: Callable[[list[Message]], Awaitable[None]],
    *,
    tick: float,
    seconds: float | None = None,
) -> None:
    """Run `desk` on the wall clock: every `tick` seconds, `send` what the tick adds and what
    fell due, in that order, until `seconds` passed, the desk is stopped or it is finished.
    Ticks are kept on a fixed grid, so a slow `send` does not stretch the desk's timeline."""
    t0 = time.monotonic()
    i = 0
    while (
        (seconds is None or time.monotonic() - t0 < seconds)
        and not desk.stopped.is_set()
        and not desk.finished()
    ):
        batch = desk.tick(i)
        batch.extend(desk.due(time.monotonic()))
        if batch:
            await send(batch)
        i += 1
        await asyncio.sleep(max(0.0, t0 + i * tick - time.monotonic()))


# The demo's customers and subjects: a few familiar names, easy to follow on a console.
DEMO_CUSTOMERS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
DEMO_SUBJECTS = (
    "Calls failing to connect",
    "Reporting dashboard empty",
    "Agents cannot log in",
    "IVR prompt cut off",
    "Slow call routing",
    "Recording export fails",
    "Typo in the admin page",
)

Step = dict[str, Any] | str
"""One step of a story: an event document without its ids and times, or a dead-letter reason."""


class StoryDesk(Desk):
    """The demo's desk: a case is opened every `every` seconds (jittered) and follows a random
    but plausible story under the demo policy (P1 acknowledge 20 s, P2 40 s, P3 60 s):
    acknowledged in time and worked (ETAs, workarounds, a while waiting on the customer,
    resolutions, some reopened), acknowledged late, raised to P1, or left to the customer;
    some P2/P3 cases are on the business-hours plan; now and then a malformed message."""

    def __init__(
        self, route: Route, every: float, cases: int | None = None, seed: int | None = None
    ) -> None:
        super().__init__(route, seed, f"demo-{os.getpid()}")
        self.every = every
        self.cases = cases
        self.n = 0
        self._next_open = 0.0

    def story(self) -> tuple[str, list[tuple[float, Step]]]:
        """(case_id, [(delay seconds after opening, step)]), sorted by delay."""
        rng = self.rng
        self.n += 1
        case = f"DEMO-{self.n:04d}"
        prio = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
        opened = {
            "type": "case-opened",
            "priority": prio,
            "customer_id": rng.choice(DEMO_CUSTOMERS),
            "subject": rng.choice(DEMO_SUBJECTS),
        }
        if prio > 1 and rng.random() < 0.3:  # P2/P3 on the demo's business-hours plan
            opened["plan"] = "office-hours"
        steps: list[tuple[float, Step]] = [(0.0, opened)]
        ack = {1: 20, 2: 40, 3: 60}[prio]
        support = {"type": "case-noted", "author": "support", "visibility": "public"}
        fate = rng.random()
        if fate < 0.55:  # acknowledged in time, then worked
            t = rng.uniform(0.2, 0.9) * ack
            steps.append((t, support))
            if rng.random() < 0.4:
                steps.append(
                    (t + rng.uniform(5, 25), {"type": "eta-set", "eta_in": rng.uniform(10, 40)})
                )
            if rng.random() < 0.3:
                steps.append((t + rng.uniform(5, 30), {**support, "workaround": True}))
            if rng.random() < 0.3:  # waiting on the customer for a while: clocks stop
                pause = t + rng.uniform(2, 10)
                steps.append((pause, {"type": "status-changed", "status": "pending"}))
                back = pause + rng.uniform(20, 60)
                steps.append((back, {"type": "status-changed", "status": "open"}))
            if rng.random() < 0.6:
                done = t + rng.uniform(30, 120)
                steps.append((done, {"type": "case-resolved"}))
                if rng.random() < 0.25:  # the problem comes back: an update is owed again
                    steps.append((done + rng.uniform(5, 20), {"type": "case-reopened"}))
        elif fate < 0.8:  # acknowledged late
            steps.append((ack * rng.uniform(1.1, 1.8), support))
        elif fate < 0.9:  # raised to P1 after a while
            steps.append((rng.uniform(5, 20), {"type": "priority-changed", "priority": 1}))
        else:  # nobody answers; only the customer writes
            customer = {"type": "case-noted", "author": "customer", "visibility": "public"}
            steps.append((rng.uniform(5, 20), customer))
        if rng.random() < 0.08:
            steps.append((rng.uniform(1, 10), "naive-timestamp"))
        return case, sorted(steps, key=lambda s: s[0])

    def materialise(self, case: str, step: Step, now: datetime) -> Message:
        """The message of `step`, as of `now` (its occurred_at; ETAs and report times are
        relative to it)."""
        if isinstance(step, str):
            return self.malformed(step, case, now)
        fields = {k: v for k, v in step.items() if k != "type"}
        if step["type"] == "case-opened" and self.rng.random() < 0.5:
            fields["reported_at"] = iso(now - timedelta(seconds=self.rng.uniform(0, 15)))
        if "eta_in" in fields:
            fields["eta"] = iso(now + timedelta(seconds=fields.pop("eta_in")))
        return self.message(self.doc(step["type"], case, now, **fields))

    def tick(self, i: int) -> list[Message]:
        mono = time.monotonic()
        if (self.cases is None or self.n < self.cases) and mono >= self._next_open:
            case, steps = self.story()
            for delay, step in steps:
                self.schedule(delay, partial(self.materialise, case, step))
            self._next_open = mono + self.every * self.rng.uniform(0.5, 1.5)
        return []

    def finished(self) -> bool:
        return self.cases is not None and self.n >= self.cases and not self.scheduled


class BackdatedDesk(Desk):
    """The end-to-end test's desk on the support-plus policy, one wave of messages a second.

    Each wave opens fresh P1/P2/P3 cases (some reported more than their time-to-open window
    earlier) and works them a few seconds later (public support notes, ETAs that pass during
    the test, workarounds, customer and internal notes, pauses, resolutions and reopens,
    priority raises and lowers), and back-dates a few more so that something falls due live:
    acknowledgement warnings (cases at risk), acknowledgement breaches (the P1 page), catch-up
    breaches, update warnings, P2 elevations; plus duplicates and one malformed message of
    each dead-letter reason in turn.
    """

    def __init__(self, route: Route, seed: int = 20260131) -> None:
        super().__init__(route, seed, "e2e")
        plan = support_plus()
        rules = plan.priorities
        self.ack = {p: r.acknowledge / 1e6 for p, r in rules.items()}
        self.tto = {p: (r.time_to_open or r.acknowledge) / 1e6 for p, r in rules.items()}
        self.update = {p: r.update_every / 1e6 for p, r in rules.items()}
        self.elevate_p2 = (rules[2].elevate_after or 0) / 1e6
        self.warn = plan.warn_fraction or 0.75
        self.fresh: dict[int, list[str]] = {1: [], 2: [], 3: []}
        self.last_open: Message | None = None
        self.last_note: Message | None = None
        self.dead = 0

    # -- building messages ----------------------------------------------------------------

    def open(
        self, case: str, priority: int, at: datetime, reported: datetime | None = None
    ) -> Message:
        extra: dict[str, Any] = {"customer_id": f"cust-{self.rng.randrange(40)}"}
        if reported is not None:
            extra["reported_at"] = iso(reported)
        msg = self.message(
            self.doc("case-opened", case, at, priority=priority, subject="Login fails", **extra)
        )
        self.last_open = msg
        return msg

    def note(
        self, case: str, at: datetime, *, author: str = "support", public: bool = True, **kw: Any
    ) -> Message:
        visibility = "public" if public else "internal"
        msg = self.message(
            self.doc("case-noted", case, at, author=author, visibility=visibility, **kw)
        )
        if author == "support" and public:
            self.last_note = msg
        return msg

    def eta_set(self, case: str, eta: datetime, at: datetime) -> Message:
        return self.message(self.doc("eta-set", case, at, eta=iso(eta)))

    def resolve(self, case: str, at: datetime) -> Message:
        return self.message(self.doc("case-resolved", case, at, resolution="fixed"))

    def status(self, case: str, status: str, at: datetime) -> Message:
        return self.message(self.doc("status-changed", case, at, status=status))

    def reopen(self, case: str, at: datetime) -> Message:
        return self.message(self.doc("case-reopened", case, at))

    def dead_letter(self, case: str, now: datetime) -> Message:
        reason = MALFORMED_KINDS[self.dead % len(MALFORMED_KINDS)]
        self.dead += 1
        return self.malformed(reason, case, now)

    # -- one wave -----------------------------------------------------------------------------

    def tick(self, i: int) -> list[Message]:
        return self.wave(i)

    def wave(self, i: int) -> list[Message]:
        rng = self.rng
        now = datetime.now(UTC)
        ack, tto, update, warn = self.ack, self.tto, self.update, self.warn
        out: list[Message] = []

        def ago(seconds: float) -> datetime:
            return now - timedelta(seconds=seconds)

        # Fresh cases, worked during the test.
        for p in (1, 2, 3):
            case = f"F{i:03d}-{p}"
            reported = ago(rng.uniform(0.2, 1.4) * tto[p]) if rng.random() < 0.8 else None
            out.append(self.open(case, p, now, reported))
            self.fresh[p].append(case)
            r = rng.random()
            if r < 0.4:
                self.schedule(rng.uniform(1, 5), partial(self.note, case))
            elif r < 0.65:  # an ETA that passes during the test: an eta-passed update breach
                eta = now + timedelta(seconds=rng.uniform(4, 9))
                self.schedule(rng.uniform(1, 3), partial(self.eta_set, case, eta))
            elif r < 0.8:
                self.schedule(rng.uniform(1, 5), partial(self.note, case, workaround=True))
            else:
                self.schedule(rng.uniform(1, 5), partial(self.note, case, author="customer"))
            if rng.random() < 0.3:
                self.schedule(rng.uniform(1, 6), partial(self.note, case, public=False))
            if rng.random() < 0.2:  # waiting on the customer for a few seconds
                pause = rng.uniform(1, 4)
                self.schedule(pause, partial(self.status, case, "pending"))
                self.schedule(pause + rng.uniform(1, 3), partial(self.status, case, "open"))
            if rng.random() < 0.5:
                done = rng.uniform(4, 10)
                self.schedule(done, partial(self.resolve, case))
                if rng.random() < 0.25:  # reopened a little later
                    self.schedule(done + rng.uniform(1, 4), partial(self.reopen, case))

        # An acknowledgement warning falls due in a few seconds: the case is at risk.
        p = i % 3 + 1
        case = f"W{i:03d}-{p}"
        out.append(self.open(case, p, ago(warn * ack[p] - rng.uniform(1, 4))))
        if rng.random() < 0.5:
            self.schedule(rng.uniform(6, 10), partial(self.note, case))

        # Acknowledged late (or just in time) now: time-to-acknowledge of minutes to hours.
        if i % 2 == 0:
            p = rng.choice((1, 2, 3))
            case = f"L{i:03d}-{p}"
            opened = ago(rng.uniform(0.3, 1.5) * ack[p])
            out.append(
                self.open(case, p, opened, opened - timedelta(seconds=rng.uniform(60, 1800)))
            )
            self.schedule(1.0, partial(self.note, case))

        # Learned of long after its deadlines: a catch-up acknowledgement breach.
        if i % 3 == 1:
            p = rng.choice((1, 2, 3))
            out.append(self.open(f"C{i:03d}-{p}", p, ago(rng.uniform(1.2, 2.0) * ack[p])))

        # P1 acknowledgement breach falling due live (its warning is already past).
        if i % 4 == 2:
            out.append(self.open(f"B{i:03d}-1", 1, ago(ack[1] - rng.uniform(2, 5))))

        # P2 acknowledged in time but no ETA/workaround: elevation due live.
        if i % 4 == 0:
            case = f"E{i:03d}-2"
            opened = ago(self.elevate_p2 - rng.uniform(2, 5))
            out.append(self.open(case, 2, opened, opened - timedelta(minutes=20)))
            out.append(self.note(case, opened + timedelta(minutes=10)))

        # Update warning falling due live (last public update ~3/4 of the window ago).
        if i % 4 == 1:
            p = rng.choice((1, 2))
            case = f"U{i:03d}-{p}"
            last = ago(warn * update[p] - rng.uniform(2, 5))
            opened = last - timedelta(hours=2)
            out.append(self.open(case, p, opened))
            out.append(self.note(case, opened + timedelta(minutes=5)))
            out.append(self.note(case, last))

        # Priority raises (P3 -> P1: immediate elevation) and lowers (P1 -> P2).
        if i % 5 == 3 and self.fresh[3]:
            case = self.fresh[3].pop(0)
            out.append(self.message(self.doc("priority-changed", case, now, priority=1)))
        if i % 5 == 0 and self.fresh[1]:
            case = self.fresh[1].pop(0)
            out.append(self.message(self.doc("priority-changed", case, now, priority=2)))

        # Duplicate deliveries (the same bytes again).
        if i % 3 == 2:
            for msg in (self.last_open, self.last_note):
                if msg is not None:
                    self.sent["duplicate"] += 1
                    out.append(msg)

        # One malformed message every other wave, cycling through the dead-letter reasons.
        if i % 2 == 1:
            out.append(self.dead_letter(f"X{i:03d}", now))
        return out
