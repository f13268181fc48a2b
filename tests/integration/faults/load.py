"""A continuous, realistic load for the fault scenarios, and faults staged around it.

`LoadGenerator` feeds a deployment from a thread like a support desk would; `staged_fault`
quiets it around a fault so that live workers and replay can still agree on every alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from caseclock.contracts.inbound import decode_event
from caseclock.core.state import CaseState
from caseclock.replay import Replayer
from tests.integration.deployment import Deployment, run
from tests.integration.expectations import load_test_policy
from tests.integration.faults.figures import elapsed_s
from tests.integration.faults.offsets import wait_committed, wait_drained
from tests.integration.kafka_io import read_alerts
from tests.integration.scripts import Sent
from tests.integration.times import US, iso, now_us, sleep_until

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
def staged_fault(
    load: LoadGenerator,
    timeout: float = 240.0,
    *,
    committed_first: bool = True,
    unless: Callable[[], bool] | None = None,
) -> Iterator[FaultWindow]:
    """Quiet the load and wait until the worker committed past every decisive fact; the body
    makes the fault and sets start_us and recovered_us; then wait until the backlog of the
    fault is committed, and the margin, before the load sends decisive facts again.

    `committed_first=False` quiets the load without waiting for the commit: for a fault that
    struck already (a worker that killed itself), or one meant to catch decisive facts in
    flight (they are applied before what they could suppress is evaluated: a taken-over
    partition's timers wait until its input backlog is read). `unless`: stop waiting for the
    backlog once it holds (the worker went down again) and leave the load quiet, for the
    window of what follows."""
    fw = FaultWindow()
    marks = load.quiet()
    if committed_first:
        fw.decisive_committed_s = wait_committed(
            load.dep, marks, timeout, "the decisive facts sent before the fault"
        )
    yield fw
    fw.drained_s = wait_drained(load.dep, timeout, "the backlog of the fault", unless)
    fw.end_us = now_us()
    if unless is not None and unless():
        return
    time.sleep(load.margin_us / US)
    load.check()
    load.resume()
