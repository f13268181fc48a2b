"""What the fault scenarios share: sizes, a continuous load, membership changes, partition
coverage, consumer-group offsets, and the figures each scenario records.

Sizes. ``CASECLOCK_FAULT_SCALE`` (default 1) multiplies the counted sizes of the scenarios
(bad messages, the big case's events, faults per run); 1 is what CI runs, about six minutes on
a 2-core machine. Rates stay as they are: a bigger load rate measures the machine, not faults.

Figures. Each scenario records what it saw (alerts expected and delivered, repeats, catch-ups,
lateness, time to serve again, watchdog restarts) with :func:`write_figures`: into the JSON
file named by ``CASECLOCK_FAULT_REPORT`` (a dict keyed by scenario, merged when the file
exists; bench/faults.py sets it), else into the test's temporary directory. Nothing here
asserts a duration: the machines are shared, timings are figures, correctness is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.state import CaseState
from caseclock.core.timeutil import to_us
from caseclock.replay import Replayer
from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.expectations import (
    MARGIN_US,
    describe,
    due,
    expected_alerts,
    fired,
    load_test_policy,
    percentile,
)
from tests.integration.fault_checks import OutageReport, check_faults
from tests.integration.kafka_io import read_alerts, topic_partitions
from tests.integration.scripts import Sent, partition_of
from tests.integration.times import US, iso, now_us, sleep_until

SCALE_ENV = "CASECLOCK_FAULT_SCALE"
REPORT_ENV = "CASECLOCK_FAULT_REPORT"


def scale() -> float:
    raw = os.environ.get(SCALE_ENV, "").strip()
    value = float(raw) if raw else 1.0
    if value <= 0:
        raise ValueError(f"{SCALE_ENV}={raw!r}: must be a positive number")
    return value


def scaled(n: int) -> int:
    """`n` times CASECLOCK_FAULT_SCALE, at least 1."""
    return max(1, round(n * scale()))


# The FAST_POLICY shape with wider windows: every deadline of a case is at least 3 s from the
# next one, so a fact can be kept `margin_s` clear of both (see LoadGenerator).
FAULT_POLICY = """
[plans.support-plus]
warn_fraction = 0.5
[plans.support-plus.priorities.1]
time_to_open = "10s"
acknowledge = "6s"
update_every = "8s"
elevate = "immediately"
[plans.support-plus.priorities.2]
time_to_open = "20s"
acknowledge = "8s"
update_every = "12s"
elevate = "10s"
[plans.support-plus.priorities.3]
time_to_open = "30s"
acknowledge = "10s"
update_every = "16s"
elevate = "never"
"""

NEUTRAL_NOTES = (("customer", "public"), ("support", "internal"), ("system", "internal"))
"""Notes that are not communications: they change no clock (spec: only a public support note
acknowledges or restarts the update window)."""


def elapsed_s(since_us: int, until_us: int | None = None) -> float:
    return round(((now_us() if until_us is None else until_us) - since_us) / US, 3)


# --- the load ----------------------------------------------------------------------------------


class AsyncThread:
    """A coroutine (`_run`, to be written by subclasses) run in a thread of its own, for the
    test's thread to start, stop (`_stop`) and check (`error`) while it does other things."""

    def __init__(self, name: str) -> None:
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    async def _run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as e:
            self.error = e

    def _join(self, timeout: float) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


@dataclass
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes | None
    at_us: int
    label: str


class LoadGenerator(AsyncThread):
    """A ticketing system feeding one deployment from a background thread, like a steady
    support desk: `rate` messages per second over many cases, new cases at `new_cases_per_s`
    (P1, P2, P3), and for open cases neutral notes, communications (public support notes,
    ETAs, workarounds), priority changes, resolutions and exact resends (duplicates). Each
    message is a JSON event whose occurred_at is the wall time it was made; one idempotent
    producer sends them in that order and each is recorded (``scripts.Sent``) once the broker
    acknowledged it. `extra` messages (as given: bad ones, for instance) are interleaved at
    `extra_rate` per second.

    Which facts may go when. Replay learns a fact at its occurred_at; a live worker when it
    reads it. They agree as long as the fact and its case's deadlines are further apart than
    that delay. So a *decisive* fact (one that can suppress or move an alert: a communication,
    an ETA, a priority change, a resolution, another case-opened for the case) is sent only
    when no alert of its case fires within `margin_s` before it or falls due within `margin_s`
    after it, as a shadow Replayer fed the same messages says; otherwise a neutral note goes
    instead. Around a fault
    no margin holds (partitions go unserved for seconds), so :meth:`quiet` restricts the load
    to facts that cannot suppress anything (new cases, notes that are not communications,
    resends) until :meth:`resume`.
    """

    def __init__(
        self,
        dep: Deployment,
        *,
        rate: float = 150.0,
        new_cases_per_s: float = 6.0,
        open_cases: int = 150,
        margin_s: float = 1.5,
        seed: int = 1,
        stem: str = "L",
        extra: Iterable[Outgoing] = (),
        extra_rate: float = 0.0,
    ) -> None:
        self.dep = dep
        self.rate = rate
        self.p_open = min(1.0, new_cases_per_s / rate)
        self.target_open = open_cases
        self.margin_us = round(margin_s * US)
        self.rng = random.Random(seed)
        self.stem = stem
        self.extra = list(extra)
        self.extra_rate = extra_rate
        self.policy = load_test_policy(dep)
        self.shadow = Replayer(self.policy)
        self.last_fired: dict[str, int] = {}
        self.open: list[str] = []
        self.cases: list[str] = []
        self.last_msg: dict[str, Outgoing] = {}
        self.sent: list[Sent] = []
        self.counts: Counter[str] = Counter()
        self.marks: dict[TopicPartition, int] = {}
        self._seq = 0
        self._extra_at = 0
        self._extra_lock = threading.Lock()
        self._quiet = threading.Event()
        self._quiet_ack = threading.Event()
        self._quiet_marks: dict[TopicPartition, int] = {}
        super().__init__(f"load-{stem}")

    # --- control (from the test's thread) --------------------------------------------------

    def start(self) -> LoadGenerator:
        self._thread.start()
        return self

    def quiet(self, timeout: float = 60.0) -> dict[TopicPartition, int]:
        """Send only facts that suppress nothing from now on. Returns the next offset per
        partition after everything sent before (wait for the worker to commit past them)."""
        self._quiet_ack.clear()
        self._quiet.set()
        if not self._quiet_ack.wait(timeout):
            self.check()
            raise AssertionError(f"the load did not go quiet in {timeout}s")
        return dict(self._quiet_marks)

    def resume(self) -> None:
        self._quiet.clear()

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the load generator failed: {self.error!r}") from self.error

    def inject(self, messages: Iterable[Outgoing], rate: float) -> None:
        """Interleave `messages` (sent as they are) at `rate` per second from now on."""
        with self._extra_lock:
            self.extra.extend(messages)
            self.extra_rate = rate

    def extra_sent(self) -> bool:
        with self._extra_lock:
            return self._extra_at >= len(self.extra)

    def stop(self, timeout: float = 180.0) -> list[Sent]:
        self._join(timeout)
        assert not self._thread.is_alive(), "the load generator did not stop"
        self.check()
        return list(self.sent)

    def finish(self, tail_s: float) -> tuple[list[Sent], int, list[dict[str, Any]]]:
        """Stop the load, let the deadlines of the next `tail_s` seconds fall due, and read
        every alert copy: (what was sent, the cut-off, the live alerts)."""
        sent = self.stop()
        cutoff = now_us() + round(tail_s * US)
        sleep_until(cutoff)
        return sent, cutoff, run(read_alerts(self.dep.bootstrap, self.dep, idle=0.5))

    def figures(self) -> dict[str, Any]:
        return {
            "messages_sent": len(self.sent),
            "cases": len(self.cases),
            "load": dict(self.counts),
        }

    # --- the producing thread --------------------------------------------------------------

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.dep.bootstrap,
            acks="all",
            enable_idempotence=True,  # in order per case, no copies, across broker restarts
            linger_ms=5,
            request_timeout_ms=180_000,  # outlives a broker outage of the scenarios
        )
        await producer.start()
        try:
            credit = extra_credit = 0.0
            last = time.monotonic()
            while not self._stop.is_set():
                if self._quiet.is_set() and not self._quiet_ack.is_set():
                    self._quiet_marks = dict(self.marks)  # all sent before were acknowledged
                    self._quiet_ack.set()
                mono = time.monotonic()
                credit = min(credit + (mono - last) * self.rate, self.rate)
                extra_credit = min(
                    extra_credit + (mono - last) * self.extra_rate, 1 + self.extra_rate
                )
                last = mono
                batch = [self._next(now_us()) for _ in range(int(credit))]
                credit -= len(batch)
                with self._extra_lock:
                    while extra_credit >= 1 and self._extra_at < len(self.extra):
                        m = self.extra[self._extra_at]
                        batch.append(Outgoing(m.topic, m.key, m.value, now_us(), m.label))
                        self._extra_at += 1
                        extra_credit -= 1
                futures = [await producer.send(m.topic, m.value, key=m.key) for m in batch]
                for m, md in zip(batch, await asyncio.gather(*futures), strict=True):
                    self.sent.append(
                        Sent(md.topic, md.partition, md.offset, m.key, m.value, m.at_us, m.label)
                    )
                    tp = TopicPartition(md.topic, md.partition)
                    self.marks[tp] = max(self.marks.get(tp, 0), md.offset + 1)
                await asyncio.sleep(0.02)
        finally:
            await producer.stop()

    def _next(self, at: int) -> Outgoing:
        for a in self.shadow.finish(at):
            self.last_fired[a.case_id] = max(self.last_fired.get(a.case_id, 0), a.fired_us)
        rng = self.rng
        if not self.open or rng.random() < self.p_open:
            return self._send(self._open(at))
        quiet = self._quiet.is_set()
        roll = rng.random()
        if roll < 0.04:
            case = rng.choice(self.cases)
            again = self.last_msg[case]
            self.counts["resend"] += 1
            return Outgoing(again.topic, again.key, again.value, at, "resend")
        if roll < 0.10:  # notes keep coming for resolved cases too
            return self._send(self._neutral(rng.choice(self.cases), at))
        case = rng.choice(self.open)
        resolve_share = 0.12 * (len(self.open) / self.target_open) ** 2
        pick = rng.random()
        if pick < 0.45 or quiet or not self._clear_of_deadlines(case, at):
            if pick >= 0.45:
                self.counts["decisive-held-back"] += 1
            return self._send(self._neutral(case, at))
        state = self.shadow.states[case]
        if pick < 0.45 + resolve_share:
            return self._send(self._event(at, "case-resolved", case, "resolve"))
        if pick < 0.75:
            return self._send(
                self._event(
                    at,
                    "case-noted",
                    case,
                    "communication",
                    author="support",
                    visibility="public",
                    workaround=rng.random() < 0.1,
                )
            )
        if pick < 0.88:
            eta = iso(at + rng.randint(3, 9) * US)
            return self._send(self._event(at, "eta-set", case, "eta", eta=eta))
        current = self.shadow.engine.current(state)
        others = [p for p in (1, 2, 3) if current is None or p != current[1].priority]
        return self._send(
            self._event(at, "priority-changed", case, "priority", priority=rng.choice(others))
        )

    def _clear_of_deadlines(self, case: str, at: int) -> bool:
        state: CaseState = self.shadow.states[case]
        nxt = self.shadow.engine.next_due(state)
        prev = self.last_fired.get(case)  # fired, not due: a fact can make an alert due at once
        return (prev is None or at - prev >= self.margin_us) and (
            nxt is None or nxt - at >= self.margin_us
        )

    def _open(self, at: int) -> Outgoing:
        case = f"{self.stem}-{len(self.cases):05d}"
        self.cases.append(case)
        self.open.append(case)
        fields: dict[str, Any] = {"priority": self.rng.choices((1, 2, 3), (3, 4, 3))[0]}
        if self.rng.random() < 0.5:
            fields["customer_id"] = f"cust-{self.rng.randrange(40)}"
            fields["subject"] = f"ticket {case}"
        return self._event(at, "case-opened", case, "open", **fields)

    def _neutral(self, case: str, at: int) -> Outgoing:
        author, visibility = self.rng.choice(NEUTRAL_NOTES)
        return self._event(at, "case-noted", case, "note", author=author, visibility=visibility)

    def _event(self, at: int, type_: str, case: str, label: str, **fields: Any) -> Outgoing:
        self._seq += 1
        doc = {"event_id": f"{case}-{self._seq}", "type": type_, "case_id": case}
        doc.update(fields, occurred_at=iso(at))
        if type_ == "case-resolved":
            self.open.remove(case)
        return Outgoing(self.dep.topic(type_), case.encode(), orjson.dumps(doc), at, label)

    def _send(self, m: Outgoing) -> Outgoing:
        assert m.value is not None and m.key is not None
        ev = decode_event(m.value, self.policy, key=m.key)
        for a in self.shadow.feed(ev):
            self.last_fired[a.case_id] = max(self.last_fired.get(a.case_id, 0), a.fired_us)
        self.last_msg[m.key.decode()] = m
        self.counts[m.label] += 1
        return m


# --- consumer-group offsets ----------------------------------------------------------------------


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        got = await admin.list_consumer_group_offsets(group)
        return {tp: om.offset for tp, om in got.items() if om.offset >= 0}
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = await topic_partitions(c, topics)
        c.assign(tps)  # aiokafka's stop() trips over a consumer never assigned anything
        return dict(await c.end_offsets(tps)) if tps else {}
    finally:
        await c.stop()


def wait_committed(
    dep: Deployment, marks: Mapping[TopicPartition, int], timeout: float, what: str = ""
) -> float:
    """Wait until the workers' consumer group committed every partition of `marks` up to its
    offset (the worker applied those messages and flushed what they caused); returns the
    seconds waited. Faust commits every few seconds, so this is a few seconds at least."""
    t0 = now_us()
    behind: dict[TopicPartition, tuple[int, int]] = dict.fromkeys(marks, (0, 0))
    last_error: Exception | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done = run(_committed(dep.bootstrap, dep.app_id))
        except Exception as e:  # the coordinator may be moving: ask again
            last_error = e
        else:
            last_error = None
            behind = {tp: (done.get(tp, 0), m) for tp, m in marks.items() if done.get(tp, 0) < m}
            if not behind:
                return elapsed_s(t0)
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout}s waiting for the group to commit {what}: "
        f"(committed, wanted) {sorted(behind.items())[:8]} {last_error or ''}"
    )


def wait_drained(dep: Deployment, timeout: float, what: str = "") -> float:
    """Wait until the workers committed everything now in the input topics."""
    marks = run(end_offsets(dep.bootstrap, dep.input_topics))
    return wait_committed(dep, {tp: m for tp, m in marks.items() if m > 0}, timeout, what)


@dataclass
class FaultWindow:
    """One staged fault: when it began and ended (recovered, backlog committed), and how long
    each step took."""

    start_us: int = 0
    recovered_us: int = 0
    end_us: int = 0
    decisive_committed_s: float = 0.0
    drained_s: float = 0.0

    def figures(self, t0_us: int) -> dict[str, Any]:
        return {
            "at_s": elapsed_s(t0_us, self.start_us),
            "recovered_after_s": elapsed_s(self.start_us, self.recovered_us),
            "backlog_committed_after_s": elapsed_s(self.start_us, self.end_us),
            "quiet_before_s": self.decisive_committed_s,
        }


@contextlib.contextmanager
def staged_fault(load: LoadGenerator, timeout: float = 240.0) -> Iterator[FaultWindow]:
    """Quiet the load and wait until the worker committed past every decisive fact; the body
    makes the fault and sets start_us and recovered_us; then wait until the backlog of the
    fault is committed, and the margin, before the load sends decisive facts again."""
    fw = FaultWindow()
    marks = load.quiet()
    fw.decisive_committed_s = wait_committed(
        load.dep, marks, timeout, "the decisive facts sent before the fault"
    )
    yield fw
    fw.drained_s = wait_drained(load.dep, timeout, "the backlog of the fault")
    fw.end_us = now_us()
    time.sleep(load.margin_us / US)
    load.check()
    load.resume()


# --- which partitions are served ----------------------------------------------------------------


@dataclass
class Sample:
    at_us: int
    owned: dict[str, frozenset[int] | None]
    """Per worker: the partitions of a ready worker, or None (down, or not ready)."""
    alive: frozenset[str]


class Coverage:
    """Which partitions the workers serve, sampled from their /readyz every `interval` s in a
    thread (which also restarts a worker whose watchdog fired, as its supervisor would).

    A partition is *served* when exactly one ready worker claims it; the deployment is
    *settled* when every partition is served and every running worker serves some (when there
    are at least as many partitions as workers): a rebalance is over."""

    def __init__(
        self, workers: Sequence[WorkerProcess], partitions: int, interval: float = 0.2
    ) -> None:
        self.workers = list(workers)
        self.partitions = partitions
        self.interval = interval
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="coverage", daemon=True)

    def __enter__(self) -> Coverage:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _probe(self, w: WorkerProcess) -> frozenset[int] | None:
        w.supervise()
        if not w.alive():
            return None
        try:
            status, body = w.get("/readyz", timeout=1.0)
            doc = orjson.loads(body)
        except (OSError, orjson.JSONDecodeError):
            return None
        return frozenset(doc.get("partitions", ())) if status == 200 and doc.get("ready") else None

    def _main(self) -> None:
        while not self._stop.is_set():
            at = now_us()  # when probing began: a sample never predates a change it saw
            owned = {w.name: self._probe(w) for w in self.workers}
            alive = frozenset(w.name for w in self.workers if w.alive())
            with self._lock:
                self.samples.append(Sample(at, owned, alive))
            self._stop.wait(self.interval)

    def served(self, s: Sample) -> bool:
        claims = Counter(p for parts in s.owned.values() if parts for p in parts)
        return set(claims) == set(range(self.partitions)) and all(n == 1 for n in claims.values())

    def settled(self, s: Sample) -> bool:
        if not self.served(s):
            return False
        if len(s.alive) > self.partitions:
            return True
        return all(s.owned.get(name) for name in s.alive)

    def _since(self, after_us: int) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.at_us >= after_us]

    def wait(
        self, pred: Callable[[Sample], bool], after_us: int, timeout: float, what: str
    ) -> Sample:
        """The first sample taken at or after `after_us` for which `pred` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = next((s for s in self._since(after_us) if pred(s)), None)
            if hit is not None:
                return hit
            time.sleep(self.interval)
        last = self._since(after_us)[-1:]
        tails = "\n".join(f"--- {w.name}:\n{w.log_tail(15)}" for w in self.workers)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last {last}\n{tails}")

    def unserved_s(self, start_us: int, end_us: int) -> float:
        """How long, between the two instants, some partition had no ready owner."""
        with self._lock:
            window = [s for s in self.samples if start_us <= s.at_us <= end_us]
        total = 0
        for a, b in itertools.pairwise(window):
            if not self.served(a):
                total += b.at_us - a.at_us
        return round(total / US, 3)

    def takeover(self, partition: int, start_us: int, end_us: int) -> tuple[int, int] | None:
        """Bounds (A, B) of when `partition` was taken over after a change at `start_us` that
        had settled by `end_us`, from its first stretch of samples without exactly one ready
        owner: the previous owner had stopped serving it by A, the sample after the first of
        the stretch (the first one's probes found no ready owner); the next owner began after
        B, the last of the stretch (its probe found that owner not ready). None when no sample
        found the partition unserved (a rebalance between two samples)."""
        with self._lock:
            window = [s for s in self.samples if start_us <= s.at_us <= end_us]
        first = last = None
        for k, s in enumerate(window):
            owners = sum(1 for parts in s.owned.values() if parts and partition in parts)
            if owners != 1:
                first = k if first is None else first
                last = k
            elif first is not None:
                break
        if first is None or last is None or first + 1 >= len(window):
            return None
        return window[first + 1].at_us, window[last].at_us

    def longest_gaps(self) -> dict[int, float]:
        """Per partition, the longest stretch (seconds) without a ready owner."""
        with self._lock:
            samples = list(self.samples)
        out: dict[int, float] = {}
        for p in range(self.partitions):
            longest = 0
            since: int | None = None
            for s in samples:
                owners = sum(1 for parts in s.owned.values() if parts and p in parts)
                if owners == 1:
                    if since is not None:
                        longest = max(longest, s.at_us - since)
                    since = None
                elif since is None:
                    since = s.at_us
            if since is not None and samples:
                longest = max(longest, samples[-1].at_us - since)
            out[p] = round(longest / US, 3)
        return out


# --- membership changes ---------------------------------------------------------------------------


@dataclass
class Change:
    kind: str
    worker: str
    at_us: int
    settled_us: int = 0
    unserved_s: float = 0.0
    stalls: int = 0
    """Watchdog restarts (exit status 75) of any worker while this change settled."""

    def figures(self, t0_us: int) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "worker": self.worker,
            "at_s": elapsed_s(t0_us, self.at_us),
            "settled_after_s": elapsed_s(self.at_us, self.settled_us),
            "unserved_s": self.unserved_s,
            "stalls": self.stalls,
        }


class Membership:
    """Applies membership changes to a set of workers and measures how long until the group
    settled again (Coverage.settled): ``kill`` (SIGKILL), ``stop`` (SIGTERM, graceful),
    ``start``, ``restart`` (SIGKILL and start at once, as a supervisor restarts a crashed
    pod). A kill counts from when the process is dead, a stop from its SIGTERM."""

    def __init__(self, workers: Sequence[WorkerProcess], coverage: Coverage) -> None:
        self.by_name = {w.name: w for w in workers}
        self.coverage = coverage
        self.changes: list[Change] = []

    def stalls(self) -> int:
        return sum(w.restarts for w in self.by_name.values())

    def takeover(self, i: int, case_id: str) -> tuple[int, int] | None:
        """For check_faults: bounds of the i-th change's takeover of the case's partition
        (Coverage.takeover)."""
        change = self.changes[i]
        p = partition_of(case_id.encode(), self.coverage.partitions)
        return self.coverage.takeover(p, change.at_us, change.settled_us)

    def apply(self, kind: str, name: str, settle_timeout: float = 240.0) -> Change:
        w = self.by_name[name]
        before = self.stalls()
        if kind not in ("kill", "restart", "stop", "start"):
            raise ValueError(f"unknown membership change {kind!r}")
        change = Change(kind, name, now_us())
        if kind in ("kill", "restart"):
            w.kill()
            change.at_us = now_us()  # once it is dead: a SIGKILL takes no time to act
        elif kind == "stop":
            w.stop()  # timed from the SIGTERM: the group may rebalance while it shuts down
        if kind in ("start", "restart"):
            w.start()
        hit = self.coverage.wait(
            self.coverage.settled, change.at_us + 1, settle_timeout, f"{kind} {name} to settle"
        )
        change.settled_us = hit.at_us
        change.unserved_s = self.coverage.unserved_s(change.at_us, hit.at_us)
        change.stalls = self.stalls() - before
        self.changes.append(change)
        return change

    def stop_all(self) -> None:
        for w in self.by_name.values():
            w.kill()


# --- expectations and figures ---------------------------------------------------------------------


def expected_for(dep: Deployment, sent: Iterable[Sent], horizon_us: int) -> list[dict[str, Any]]:
    """expectations.expected_alerts over messages from several producers, in the order made."""
    return expected_alerts(dep, sorted(sent, key=lambda s: s.at_us), horizon_us)


def resolutions(dep: Deployment, sent: Iterable[Sent]) -> dict[str, int]:
    """Case -> when it was resolved (the earliest valid case-resolved's occurred_at)."""
    policy = load_test_policy(dep)
    out: dict[str, int] = {}
    for s in sent:
        if s.value is None or not s.topic.endswith("case-resolved"):
            continue
        try:
            ev = decode_event(s.value, policy, key=s.key)
        except Rejected:
            continue
        t = to_us(ev.occurred_at)
        out[ev.case_id] = min(out.get(ev.case_id, t), t)
    return out


def after_resolution(
    live: Iterable[Mapping[str, Any]], resolved: Mapping[str, int]
) -> list[Mapping[str, Any]]:
    """Live alerts due after their case was resolved (there must be none)."""
    return [a for a in live if a["case_id"] in resolved and due(a) > resolved[a["case_id"]]]


def compare_with_replay(
    dep: Deployment,
    sent: Sequence[Sent],
    live: Sequence[Mapping[str, Any]],
    figures: Figures,
    *,
    t0_us: int,
    cutoff_us: int,
    faults_us: Sequence[int] = (),
    outages: Sequence[tuple[int, int]] = (),
    logs: Iterable[Path] = (),
    takeover: Callable[[int, str], tuple[int, int] | None] | None = None,
) -> tuple[list[dict[str, Any]], OutageReport]:
    """The live alerts against replay of the exact bytes `sent` (fault_checks.check_faults, with
    what was sent for a failing case, and `takeover` for its no-storm check), and none due
    after its case was resolved; records alert_figures and the resolutions. Returns replay's
    alerts and the report."""
    expected = expected_for(dep, sent, cutoff_us)
    report = check_faults(
        live,
        expected,
        t0_us=t0_us,
        faults_us=faults_us,
        cutoff_us=cutoff_us,
        context="worker logs: " + ", ".join(map(str, logs)),
        explain=history(sent, t0_us),
        takeover=takeover,
    )
    figures.update(**alert_figures(live, expected, report, cutoff_us=cutoff_us, outages=outages))
    resolved = resolutions(dep, sent)
    late_ones = after_resolution(live, resolved)
    figures.update(resolved_cases=len(resolved), alerts_after_resolution=len(late_ones))
    assert not late_ones, describe(late_ones, t0_us)
    return expected, report


def history(sent: Sequence[Sent], t0_us: int) -> Callable[[str], str]:
    """For check_faults' `explain`: the messages sent for a case, one a line (topic,
    partition@offset, seconds after t0, label, the event's fields)."""

    def explain(case_id: str) -> str:
        key = case_id.encode()
        lines = []
        for s in sent:
            if s.key != key:
                continue
            try:
                doc = orjson.loads(s.value or b"")
            except orjson.JSONDecodeError:
                doc = {}
            fields = {k: v for k, v in doc.items() if k not in ("case_id", "occurred_at")}
            lines.append(
                f"  {s.topic.split('-', 1)[-1]:<16} "
                f"{s.partition}@{s.offset:<6} {(s.at_us - t0_us) / US:8.3f}s "
                f"{s.label:<14} {fields}"
            )
        return "\n".join(lines) or "  (nothing)"

    return explain


def alert_figures(
    live: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    report: OutageReport,
    *,
    cutoff_us: int,
    outages: Sequence[tuple[int, int]] = (),
) -> dict[str, Any]:
    """Alerts expected (replay, due before the compared horizon) and delivered, repeats,
    catch-ups and what they stood for, and the lateness of the alerts that fell due while the
    service was up (outside every (start - margin, end) of `outages`: an alert due just before
    a fault may not have been evaluated when it struck). Lateness is measured from when replay
    fires the alert: its due_at, or the fact that made it due when that came later (a priority
    raised after the deadline), as the worker's own lateness histogram does."""
    upto = cutoff_us - MARGIN_US
    when = {a["alert_id"]: fired(a) for a in expected if due(a) <= upto}
    first: dict[str, Mapping[str, Any]] = {}
    for a in sorted(live, key=fired):
        first.setdefault(a["alert_id"], a)

    def late(a: Mapping[str, Any]) -> float:
        return (fired(a) - when[a["alert_id"]]) / US

    up_alerts = [
        a
        for a in first.values()
        if a["alert_id"] in when
        and not any(s - MARGIN_US <= when[a["alert_id"]] <= e for s, e in outages)
    ]
    up = [late(a) for a in up_alerts]
    worst = max(up_alerts, key=late, default=None)
    return {
        "alerts_expected": len(when),
        "alerts_delivered": len(when.keys() & first.keys()),
        "stood_for_by_catch_up": report.skipped,
        "alert_copies": len(live),
        "repeats": report.repeats,
        "catch_ups": report.catch_ups,
        "lateness_up_s": {
            "alerts": len(up),
            "p50": round(percentile(up, 50), 3) if up else None,
            "p99": round(percentile(up, 99), 3) if up else None,
            "max": round(max(up), 3) if up else None,
            "latest": None
            if worst is None
            else {k: worst[k] for k in ("case_id", "type", "stage", "due_at", "fired_at")},
        },
    }


def run_checks(figures: Figures, *checks: Callable[[], None]) -> None:
    """Run every check, so that one failing does not hide the others; record which failed
    (`checks_failed`) and fail with all their messages."""
    failed = []
    for check in checks:
        try:
            check()
        except AssertionError as e:
            failed.append(f"{check.__name__}: {e}")
    figures.update(checks_failed=[f.split(":", 1)[0] for f in failed])
    assert not failed, "\n\n".join(failed)


@dataclass
class Figures:
    """One scenario's figures, written by :func:`write_figures` when the scenario ends."""

    scenario: str
    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def update(self, **values: Any) -> None:
        self.values.update(values)

    def write(self, outcome: str) -> None:
        self.values["runtime_s"] = round(time.monotonic() - self.started, 1)
        self.values["outcome"] = outcome
        self.values["scale"] = scale()
        write_figures(self.path, self.scenario, self.values)


def write_figures(path: Path, scenario: str, figures: Mapping[str, Any]) -> None:
    """Merge one scenario's figures into the JSON report at `path` (a dict by scenario)."""
    data: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    data[scenario] = dict(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    tmp.write_bytes(orjson.dumps(data, option=option) + b"\n")
    tmp.replace(path)


def report_path(tmp_dir: Path) -> Path:
    configured = os.environ.get(REPORT_ENV, "").strip()
    return Path(configured) if configured else tmp_dir / "faults.json"
