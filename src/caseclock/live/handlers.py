"""The service layer: batched handlers for inbound messages and due timers, over ports.

Faust-free and broker-free: it takes messages and time, talks to a `CaseStore` and an
`Outbox`, and keeps the per-partition deadline indexes and gauges. The Faust adapter
(`caseclock.live.faust_app`) feeds it batches and runs its timer; unit tests feed it with fakes.

Batching is where the speed is. A batch of inbound messages is decoded, grouped by case, each
case loaded once, all its events applied, its row written once. A batch of due timers is
evaluated case by case, every alert of the batch is handed to the producer before any
acknowledgement is awaited (one round trip per batch, not per alert), and only then are the
states that record those alerts written: at-least-once, as before (a crash can repeat an alert,
never lose one; repeats carry the same alert_id).

No single message or case can stop the worker: a state over the size bound, a record the broker
refuses for good, an unexpected error on one case each end up in the dead letters with a
reason, and the rest of the batch goes on; transient broker errors are waited out (nothing can
be committed while they last, and giving up would lose records).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from caseclock.contracts.deadletter import DeadLetter
from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.alerts import Alert, breach_clock
from caseclock.core.engine import Engine
from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy
from caseclock.core.schedule import DeadlineIndex
from caseclock.core.state import CaseState
from caseclock.core.timeutil import US, from_us
from caseclock.live import failpoints
from caseclock.live.config import Config
from caseclock.live.index_snapshots import IndexSnapshot
from caseclock.live.logs import Summary
from caseclock.live.metrics import Metrics
from caseclock.live.partitioning import misrouted, partition_function
from caseclock.live.ports import DEAD_LETTERS, CaseStore, Clock, Inbound, Origin, Outbox
from caseclock.live.rows import (
    Standing,
    decode_row,
    encode_row,
    read_header,
    row_fingerprint,
    row_partition,
)

log = logging.getLogger("caseclock")

MAX_DUE_PER_RUN = 20_000
"""Due cases dispatched per timer run, so that a backlog yields to the event loop."""
RETRY_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Waits between attempts while the broker is unreachable (the last one repeats)."""


RECORD_FAULTS = (
    "RecordTooLargeError",
    "MessageSizeTooLargeError",
    "RecordListTooLargeError",
    "CorruptRecordException",
    "UnsupportedForMessageFormatError",
    "InvalidTimestampError",
)
"""aiokafka errors that refuse one record for what it is (its size, its format), not the
topic or the worker: such an alert is dead-lettered and counts as emitted. Any other lasting
refusal (not authorised, no such topic) is an infrastructure failure."""


TRUNCATED_DEAD_LETTER_BYTES = 1024
"""How much of the original value a dead letter keeps when the topic refused it for its size."""


class OutputFailure(Exception):
    """Records the broker refused for a reason that is not theirs (an ACL, a missing topic):
    the line stops (input is not acknowledged) until it works again or the worker restarts."""


class Abandoned(Exception):
    """A send whose acknowledgement was no longer waited for: a rebalance or a stop began."""


def record_fault(exc: BaseException) -> bool:
    """Whether a lasting send failure is the record's own fault (`RECORD_FAULTS`)."""
    return any(type(c).__name__ in RECORD_FAULTS for c in (exc, exc.__cause__) if c is not None)


def transient(exc: BaseException) -> bool:
    """Whether a send failed because the broker is (for now) unreachable or busy, as opposed
    to refusing this record for good (too large, invalid, not authorised, unserialisable)."""
    from aiokafka.errors import KafkaError, KafkaTimeoutError, KafkaUnavailableError

    if isinstance(exc, (KafkaTimeoutError, KafkaUnavailableError, TimeoutError)):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


@dataclass(slots=True)
class _Loaded:
    """A case as loaded for one batch: its key, state, when its latest fact arrived, and its
    standing as stored (what the index and gauges hold of it until its row is rewritten)."""

    key: bytes
    state: CaseState
    touched: int
    standing: Standing


async def _raise(exc: BaseException) -> object:
    raise exc


class CaseService:
    """Per-worker live state: deadline indexes and gauges of the owned partitions, and the
    handlers that change cases. One instance per worker; the adapter owns its lifecycle."""

    def __init__(
        self,
        cfg: Config,
        policy: Policy,
        metrics: Metrics,
        store: CaseStore,
        outbox: Outbox,
        clock: Clock,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.engine = Engine(policy)
        self.fingerprint = row_fingerprint(policy)
        """What the standings stored in rows are valid under (`live.rows`)."""
        self.metrics = metrics
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self._sleep = sleep
        self.summary = Summary()
        self.indexes: dict[int, DeadlineIndex] = {}
        self.open_counts: dict[int, Counter[tuple[str, str]]] = {}
        self.risk_counts: dict[int, Counter[tuple[str, str]]] = {}
        self._scanning: set[int] = set()
        """Partitions being rebuilt from their rows (`begin_rebuild`, `restore`)."""
        self._recounts: dict[int, tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]] = {}
        """Partitions whose gauge counts are being counted again from their rows
        (`begin_recount`): (open cases, cases at risk) so far."""
        self.inflight: dict[tuple[int, str], tuple[int, int]] = {}
        """Due cases taken for evaluation and not yet evaluated: (partition, case_id) -> (when
        first taken, the deadline it was taken for). A retry (its evaluation failed) carries
        that deadline, not its retry instant, so a retry does not turn its points into
        catch-up."""
        self.rebuilt_at: dict[int, int] = {}
        """When this worker began serving each partition: its first batch of due cases after
        the index was rebuilt (the timer may dispatch before Faust resumes the streams, so the
        dispatch time is too early). What fell due before then catches up."""
        self.retry_us = max(5 * US, round(5 * cfg.tick_interval * US))
        self.skew_us = round(cfg.input_skew * US)
        """How long a deadline already past when a fact is applied waits (CASECLOCK_INPUT_SKEW):
        a case's facts come on several topics, consumed independently, so the note that
        acknowledged a case may be read a batch after the case-opened that made it due."""
        self.timer_target: int | None = None
        """The deadline the timer sleeps until; an earlier one scheduled calls `wake`."""
        self.wake: Callable[[], None] = lambda: None
        self.abandon: Callable[[], bool] = lambda: False
        """Whether the timer's waits for the broker should give up now (a rebalance or a
        stop began: the revocation waits for the call in progress, so it must end)."""
        self.output_failure: str | None = None
        """A lasting refusal of alerts or dead letters that is not the records' fault, until
        a send works again: the adapter stops acknowledging input while it lasts."""
        self._consumed: Counter[str] = Counter()
        self._duplicates: Counter[str] = Counter()
        """Events applied and duplicates by type in the batch being handled."""

    # --- inbound ---------------------------------------------------------------------------

    async def on_inputs(self, batch: Sequence[Inbound]) -> None:
        """Apply a batch of inbound messages: decode, group by case, apply, write once."""
        started = time.perf_counter()
        now = self.clock()
        rejected: list[tuple[Rejected, Origin, bytes]] = []
        cases: dict[tuple[int, bytes], list[tuple[Inbound, InboundEvent]]] = {}
        n = self.cfg.partitions  # the input topics' partition count (co-partitioned)
        route = partition_function(self.cfg.input_partitioner)  # None: not checked
        for msg in batch:
            raw = msg.value
            if raw is None:
                rejected.append(
                    (Rejected("invalid-json", "empty message (tombstone)"), msg.origin, b"")
                )
                continue
            key = msg.origin.key
            try:
                if key is None:  # its state could not be stored (compacted changelog) nor found
                    raise Rejected("key-mismatch", "the message has no key: key it by case_id")
                p = msg.origin.partition
                if route is not None and key and route(key, n) != p:  # empty: key-mismatch
                    partitioner = self.cfg.input_partitioner
                    raise Rejected("misrouted", misrouted(partitioner, key, p, n))
                ev = decode_event(raw, self.policy, key=key, max_bytes=self.cfg.max_message_bytes)
            except Rejected as r:
                rejected.append((r, msg.origin, raw))
                continue
            cases.setdefault((msg.origin.partition, key), []).append((msg, ev))
        touched_partitions: set[int] = set()
        self._consumed.clear()
        self._duplicates.clear()
        for (p, key), items in cases.items():
            touched_partitions.add(p)
            try:
                rejected.extend(self._apply_case(p, key, items, now))
            except Exception as exc:  # a bug on one case must not stop the others
                log.exception("caseclock: failed to apply events of case %r", key)
                reason = Rejected("processing-failed", f"{type(exc).__name__}: {exc}")
                rejected.extend((reason, m.origin, m.value or b"") for m, _ in items)
        for p in touched_partitions:
            self._publish_counts(p)
        for type_, n in self._consumed.items():  # one counter update per type and batch
            self.metrics.event_consumed(type_, n)
        for type_, n in self._duplicates.items():
            self.metrics.event_duplicate(type_, n)
        self.summary.add("applied", self._consumed.total())
        self.summary.add("duplicate", self._duplicates.total())
        await self._dead_letter_all(rejected)
        if batch:
            self.metrics.event_processing.observe(time.perf_counter() - started)

    def _apply_case(
        self, p: int, key: bytes, items: list[tuple[Inbound, InboundEvent]], now: int
    ) -> list[tuple[Rejected, Origin, bytes]]:
        loaded = self._load(p, key)
        state = None if loaded is None else loaded.state
        stored = None if loaded is None else loaded.standing
        was_open = state is not None and state.opened
        was_acked = was_open and state is not None and state.comm_first is not None
        if stored is not None:
            self._count(p, stored, -1)
        touched = now if loaded is None else loaded.touched
        try:
            return self._apply_loaded(
                p, key, items, now, state, stored, was_open, was_acked, touched
            )
        except Exception:
            if stored is not None:  # its gauge contribution is the stored row's again
                self._count(p, stored, +1)
            raise

    def _apply_loaded(
        self,
        p: int,
        key: bytes,
        items: list[tuple[Inbound, InboundEvent]],
        now: int,
        state: CaseState | None,
        stored: Standing | None,
        was_open: bool,
        was_acked: bool,
        touched: int,
    ) -> list[tuple[Rejected, Origin, bytes]]:
        """Apply the events to the loaded state; write the row once, and count the case in the
        gauges by the standing its row now has (`stored` if nothing was written).

        A batch of duplicates only still schedules the case by its stored row (`touched`: when
        the row was written): the index may lack what the row holds after a crash, when the
        row reached RocksDB but not the changelog and the index came from a snapshot taken
        before it (`live.index_snapshots`); the input that wrote it, not committed, is what
        is read again."""
        applied: list[InboundEvent] = []
        for _, ev in items:
            state, ok = self.engine.apply(state, ev, now)
            if ok:
                applied.append(ev)
            else:
                self._duplicates[ev.type] += 1
        assert state is not None
        rejected: list[tuple[Rejected, Origin, bytes]] = []
        standing = stored
        if applied:
            written: tuple[bytes, Standing] | None = self._encode(state, p, now)
            if written is not None and len(written[0]) > self.cfg.max_state_bytes:
                state, written, applied, rejected = self._apply_within_bound(p, key, items, now)
            if state is not None and written is not None:
                row, standing = written
                for ev in applied:
                    self._consumed[ev.type] += 1
                self._observe_new_facts(state, was_open, was_acked)
                self.store.put(p, key, row)
                self._schedule(p, state.case_id, self._held(p, state.case_id, standing, now))
        elif stored is not None:
            self._schedule(p, state.case_id, self._held(p, state.case_id, stored, now, touched))
        if standing is not None:
            self._count(p, standing, +1)
        return rejected

    def _apply_within_bound(
        self, p: int, key: bytes, items: list[tuple[Inbound, InboundEvent]], now: int
    ) -> tuple[
        CaseState | None,
        tuple[bytes, Standing] | None,
        list[InboundEvent],
        list[tuple[Rejected, Origin, bytes]],
    ]:
        """The slow path when a batch would make the case's row too large: apply its events one
        by one from the stored state and dead-letter each one that would cross the bound (the
        case keeps the state before it)."""
        loaded = self._load(p, key)
        state = None if loaded is None else loaded.state
        written: tuple[bytes, Standing] | None = None
        applied: list[InboundEvent] = []
        rejected: list[tuple[Rejected, Origin, bytes]] = []
        for msg, ev in items:
            before = None if state is None else CaseState.from_dict(state.to_dict())
            candidate, ok = self.engine.apply(state, ev, now)
            if not ok:
                state = candidate
                continue
            encoded = self._encode(candidate, p, now)
            if len(encoded[0]) > self.cfg.max_state_bytes:
                rejected.append((self._too_large(len(encoded[0])), msg.origin, msg.value or b""))
                state = before
                continue
            state, written = candidate, encoded
            applied.append(ev)
        return state, written, applied, rejected

    def _too_large(self, size: int) -> Rejected:
        return Rejected(
            "state-too-large",
            f"the case's state would take {size} bytes, over "
            f"CASECLOCK_MAX_STATE_BYTES={self.cfg.max_state_bytes}; the case keeps its "
            "previous state",
        )

    def _observe_new_facts(self, state: CaseState, was_open: bool, was_acked: bool) -> None:
        if not state.opened:
            return
        cur = self.engine.current(state)
        prio = "unknown" if cur is None else str(cur[1].priority)
        if not was_open:
            tto = self.engine.time_to_open(state)
            if tto is not None:
                self.metrics.observe_time_to_open(str(tto[0]), tto[1] / US)
                if tto[2]:
                    calendar = self.engine.calendar_of(state, tto[0])
                    self.metrics.sla_breach("time_to_open", str(tto[0]), calendar)
        if not was_acked:
            tta = self.engine.time_to_acknowledge(state)  # counted in the window's calendar
            if tta is not None:
                self.metrics.observe_time_to_acknowledge(prio, tta[0] / US)
                if not state.ack_breach_emitted:  # a fired breach was counted late already
                    self.metrics.acknowledgement(prio, tta[1])

    # --- timers ----------------------------------------------------------------------------

    def cut_off(self, now: int, handed_over: int) -> bool:
        """Whether alerts handed to the producer at `handed_over` and acknowledged only `now`
        mean the worker was cut off from the broker; if so, what fell due meanwhile catches up.

        Cut off means the acknowledgements took at least the retry delay, max(5 s, 5 x
        CASECLOCK_TICK_INTERVAL): a broker outage (the producer holds records and retries
        while the broker is away), not a busy broker. Upstream producers held their facts
        through it too, so evaluating what fell due meanwhile before those facts are read
        would fire alerts they cancel (an acknowledgement given during the outage). The
        alerts already handed over went out (they cannot be called back); for everything
        else the outage is downtime, not a timer that fell behind (section 3.7): every
        partition's catch-up boundary is stamped again by its next batch of due cases, and
        the adapter holds their timers until their input is read again, as after a takeover.
        """
        if now - handed_over < self.retry_us:
            return False
        self.rebuilt_at.clear()
        return True

    def due(self, now: int, owned: Iterable[int]) -> list[tuple[int, list[tuple[str, int]]]]:
        """Pop what is due in the owned partitions: [(partition, [(case_id, due), ...])].

        Each popped case is re-armed `retry_us` later, so a case whose evaluation failed (an
        error, a rebalance in between) is tried again; `on_due` replaces that entry by the real
        next deadline.
        """
        out: list[tuple[int, list[tuple[str, int]]]] = []
        budget = MAX_DUE_PER_RUN
        for p in sorted(owned):
            idx = self.indexes.get(p)
            if idx is None or budget <= 0:
                continue
            popped = idx.pop_due(now, budget)
            if not popped:
                continue
            budget -= len(popped)
            retry = now + self.retry_us
            entries = []
            for at, case_id in popped:
                _, owed = self.inflight.setdefault((p, case_id), (now, at))
                idx.schedule(case_id, retry)
                entries.append((case_id, owed))
            out.append((p, entries))
        return out

    def next_deadline(self, owned: Iterable[int]) -> int | None:
        heads = [i.peek() for p in owned if (i := self.indexes.get(p)) is not None]
        return min((h for h in heads if h is not None), default=None)

    async def on_due(self, due: Sequence[tuple[int, Sequence[tuple[str, int]]]]) -> bool:
        """Evaluate batches of due cases, [(partition, [(case_id, due), ...])], and emit what
        is due; returns whether the worker turned out to be cut off from the broker
        (`cut_off`).

        A case is evaluated as of max(its deadline, when it was learned or recomputed), capped
        at now, and its alerts stamped with now: a timer that fell behind emits every point
        it owes (a warning stays a warning), while a case learned or rebuilt after its
        deadlines catches up (only the latest breach of a clock). Every alert of the call is
        handed to the producer, chunk by chunk as the cases are evaluated, before any
        acknowledgement is awaited; the states that record the alerts are written only once
        all are acknowledged (at-least-once)."""
        now = self.clock()
        evaluated: list[tuple[int, _Loaded, list[Alert]]] = []
        sends: list[tuple[int, _Loaded, Alert]] = []
        records: list[tuple[str, bytes | None, bytes]] = []
        acks: list[Awaitable[object]] = []
        handed_over = now
        for partition, entries in due:
            chunk = self._evaluate(partition, entries, now)
            evaluated.extend(chunk)
            new = [(partition, loaded, a) for _, loaded, alerts in chunk for a in alerts]
            if new:  # hand this partition's alerts over before evaluating the next one
                fresh = [(a.type, loaded.key, a.to_json()) for _, loaded, a in new]
                sends.extend(new)
                records.extend(fresh)
                acks.extend(await self._hand_over(fresh))
        failures = await self._settle(records, acks, abandonable=True)
        cut_off = self.cut_off(self.clock(), handed_over) if sends else False
        undeliverable: list[tuple[Rejected, Origin, bytes]] = []
        unsent: set[tuple[int, str]] = set()
        """Cases with an alert not delivered: their rows are not written (the state records
        every alert of the evaluation as emitted) and they stay re-armed for a retry."""
        for (partition, loaded, a), record, failure in zip(sends, records, failures, strict=True):
            if failure is None:
                continue
            if not record_fault(failure):  # abandoned, or refused for good: not emitted
                unsent.add((partition, loaded.state.case_id))
                continue
            detail = f"{a.type} {a.stage} {a.alert_id}: {type(failure).__name__}: {failure}"
            never_written = Origin(self.cfg.alert_topics[a.type], partition, -1, loaded.key)
            reason = Rejected("alert-undeliverable", detail)
            undeliverable.append((reason, never_written, record[2]))
            self.summary.add("undeliverable")
        refused = [f for f in failures if f is not None and not isinstance(f, Abandoned)]
        self._note_output(refused, "alerts")
        for (partition, loaded, a), failure in zip(sends, failures, strict=True):
            if (partition, loaded.state.case_id) not in unsent and (
                failure is None or record_fault(failure)
            ):
                self._alert_sent(a, loaded.touched)  # a record's fault counts as emitted
        await self._dead_letter_all(undeliverable)
        if sends:
            failpoints.hit("alerts-before-row")
        for partition, loaded, alerts in evaluated:
            state = loaded.state
            if (partition, state.case_id) in unsent:  # the stored row stands; retried later
                self._count(partition, loaded.standing, +1)
                continue
            standing = loaded.standing  # no alert: the state and its row are unchanged
            if alerts:  # only now: the alerts it records are acknowledged
                row, standing = self._encode(state, partition, loaded.touched)
                if len(row) <= self.cfg.max_state_bytes:  # evaluation never grows a state
                    self.store.put(partition, loaded.key, row)
            self._count(partition, standing, +1)
            self._schedule(partition, state.case_id, self._wake(standing, loaded.touched))
        for partition, _ in due:
            self._publish_counts(partition)
        return cut_off

    def _evaluate(
        self, partition: int, entries: Sequence[tuple[str, int]], now: int
    ) -> list[tuple[int, _Loaded, list[Alert]]]:
        """Load and evaluate the due cases of one partition (purging expired ones)."""
        rebuilt = self.rebuilt_at.setdefault(partition, now)
        idx = self._index(partition)
        evaluated: list[tuple[int, _Loaded, list[Alert]]] = []
        # A case can be in a batch several times (a retried dispatch): it is evaluated once,
        # as of its earliest deadline, since its row is only written after the batch's alerts
        # are acknowledged.
        earliest: dict[str, int] = {}
        for case_id, at in entries:
            if case_id not in earliest or at < earliest[case_id]:
                earliest[case_id] = at
        for case_id, at in earliest.items():
            self.inflight.pop((partition, case_id), None)
            self.summary.add("tick")
            key = case_id.encode()
            loaded = None
            try:
                loaded = self._load(partition, key)
                if loaded is None:  # deleted meanwhile (a snapshot's entry, a purge elsewhere)
                    idx.remove(case_id)
                    self.metrics.tick("stale")
                    continue
                state = loaded.state
                self._count(partition, loaded.standing, -1)
                if self._expired(state, loaded.touched, now):
                    self.store.delete(partition, key)
                    idx.remove(state.case_id)
                    self.metrics.tick("purged")
                    continue
                as_of = min(now, max(at, loaded.touched, rebuilt))
                alerts = self.engine.evaluate(state, as_of, fired_at=now)
                evaluated.append((partition, loaded, alerts))
                self.metrics.tick("fired" if alerts else "stale")
            except Exception:  # the re-armed retry brings this case back
                log.exception("caseclock: failed to evaluate case %r", case_id)
                if loaded is not None:  # its gauge contribution is the stored row's again
                    self._count(partition, loaded.standing, +1)
        return evaluated

    def _alert_sent(self, a: Alert, touched: int) -> None:
        """Metrics of an acknowledged alert. Lateness is measured from max(due, when the case's
        latest fact arrived plus the input skew): an alert cannot fire before the fact that
        makes it due is known, and a deadline past on arrival waits the skew by design, so
        late upstream data does not read as slow timers, while downtime does."""
        late = (a.fired_us - max(a.due_us, touched + self.skew_us)) / US
        self.metrics.alert_emitted(
            a.type, a.stage, str(a.priority), lateness_seconds=late, catch_up=a.catch_up
        )
        self.summary.add("alert")
        if a.catch_up:
            self.summary.add("catch-up")
        clock = breach_clock(a)
        if clock is not None:
            self.metrics.sla_breach(clock, str(a.priority), a.calendar)
            if clock == "ack":
                self.metrics.acknowledgement(str(a.priority), in_time=False)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "caseclock: %s %s %s case=%s priority=%s due=%s late=%.3fs",
                a.type,
                a.stage,
                a.reason,
                a.case_id,
                a.priority,
                a.due_at.isoformat(),
                late,
            )

    # --- delivery --------------------------------------------------------------------------

    async def _deliver_all(
        self, records: Sequence[tuple[str, bytes | None, bytes]]
    ) -> list[BaseException | None]:
        """Send every record, then wait for all acknowledgements (`_settle`)."""
        return await self._settle(records, await self._hand_over(records))

    async def _hand_over(
        self, records: Sequence[tuple[str, bytes | None, bytes]]
    ) -> list[Awaitable[object]]:
        """Hand records to the producer; per record, the awaitable of its acknowledgement."""
        try:
            return await self.outbox.send_all(records)
        except Exception as exc:
            return [_raise(exc) for _ in records]

    async def _settle(
        self,
        records: Sequence[tuple[str, bytes | None, bytes]],
        acks: Sequence[Awaitable[object]],
        *,
        abandonable: bool = False,
    ) -> list[BaseException | None]:
        """Wait for the acknowledgements of records handed over, all at once; resend those
        that failed transiently until they succeed, or, if `abandonable`, until `abandon`
        says to stop (they fail with Abandoned). Returns, per record, None or its lasting
        failure."""
        result: list[BaseException | None] = [None] * len(records)
        todo = list(range(len(records)))
        attempt = 0
        while todo:
            outcomes = await asyncio.gather(*acks, return_exceptions=True)
            retry = []
            for i, outcome in zip(todo, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                    if transient(outcome):
                        retry.append(i)
                    else:
                        result[i] = outcome
            failed = Counter(
                "dead-letter" if records[i][0] == DEAD_LETTERS else "alert"
                for i, outcome in zip(todo, outcomes, strict=True)
                if isinstance(outcome, BaseException)
            )
            for record, n in failed.items():
                self.metrics.send_failed(record, n)
            todo = retry
            if todo and abandonable and self.abandon():
                for i in todo:
                    result[i] = Abandoned("a rebalance or a stop began")
                log.info("caseclock: %d sends abandoned: a rebalance or a stop began", len(todo))
                break
            if todo:
                wait = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                attempt += 1
                log.warning("caseclock: broker unavailable, %d sends retried", len(todo))
                await self._sleep(wait)  # type: ignore[misc]
                acks = await self._hand_over([records[i] for i in todo])
        return result

    async def _dead_letter_all(self, rejected: Sequence[tuple[Rejected, Origin, bytes]]) -> None:
        """Send the dead letters; raises OutputFailure when the topic refuses them for a reason
        not their own (their input must then not be acknowledged). A dead letter refused for
        its size (a dead-letter topic whose max.message.bytes is below the input's) is sent
        again with only the first TRUNCATED_DEAD_LETTER_BYTES of the original value, flagged
        `value_truncated`; if even that is refused it is logged and counted as lost: a message
        must never stop the worker."""
        if not rejected:
            return
        received = from_us(self.clock())

        def record(r: Rejected, origin: Origin, raw: bytes, cap: int | None = None) -> bytes:
            extra = {} if cap is None else {"max_value_bytes": cap}
            return DeadLetter.build(
                reason=r.reason,
                detail=r.detail,
                topic=origin.topic,
                partition=origin.partition,
                offset=origin.offset,
                key=origin.key,
                value=raw,
                received_at=received,
                **extra,
            ).to_json()

        records = [(DEAD_LETTERS, o.key, record(r, o, raw)) for r, o, raw in rejected]
        failures = await self._deliver_all(records)
        too_large = [i for i, f in enumerate(failures) if f is not None and record_fault(f)]
        lost: set[int] = set()
        if too_large:
            again = [
                (
                    DEAD_LETTERS,
                    rejected[i][1].key,
                    record(*rejected[i], TRUNCATED_DEAD_LETTER_BYTES),
                )
                for i in too_large
            ]
            for i, failure in zip(too_large, await self._deliver_all(again), strict=True):
                failures[i] = failure
                if failure is not None and record_fault(failure):
                    r, origin, _ = rejected[i]
                    log.error(
                        "caseclock: could not dead-letter %s[%s]@%s (%s), even truncated: %r",
                        origin.topic,
                        origin.partition,
                        origin.offset,
                        r.reason,
                        failure,
                    )
                    failures[i] = None  # lost, loudly: a message must not stop the worker
                    lost.add(i)
        refused = [f for f in failures if f is not None]
        self._note_output(refused, "dead letters")
        if refused:  # nowhere to put them: their input must not be acknowledged
            raise OutputFailure(f"{len(refused)} dead letters refused: {refused[0]!r}")
        for i, (r, origin, _) in enumerate(rejected):
            if i in lost:
                continue
            self.metrics.dead_letter(r.reason)
            self.summary.add("dead-letter")
            log.warning(
                "caseclock: dead-lettered %s[%s]@%s: %s: %s",
                origin.topic,
                origin.partition,
                origin.offset,
                r.reason,
                r.detail,
            )

    def _note_output(self, refused: Sequence[BaseException], what: str) -> None:
        """Keep `output_failure` up to date after a settle: set by a lasting refusal that is
        not the records' fault, cleared by a settle without one."""
        lasting = [f for f in refused if not record_fault(f)]
        if lasting:
            if self.output_failure is None:
                log.error(
                    "caseclock: %d %s refused for good: %r; input is no longer acknowledged",
                    len(lasting),
                    what,
                    lasting[0],
                )
            self.output_failure = f"{what} refused: {lasting[0]!r}"
        elif self.output_failure is not None:
            log.info("caseclock: %s are taken again (after: %s)", what, self.output_failure)
            self.output_failure = None

    async def dead_letter_failed(self, origin: Origin, raw: bytes, exc: BaseException) -> None:
        """Dead-letter one input message that failed alone (`processing-failed`)."""
        reason = Rejected("processing-failed", f"{type(exc).__name__}: {exc}")
        await self._dead_letter_all([(reason, origin, raw)])

    # --- recovery --------------------------------------------------------------------------

    def begin_rebuild(self, owned: Iterable[int]) -> None:
        """Start rebuilding indexes and gauges for the owned partitions (then `index_row` per
        table row and `finish_rebuild`; the adapter yields to the loop between chunks)."""
        owned = set(owned)
        self.indexes = {p: DeadlineIndex() for p in owned}
        self.open_counts = {p: Counter() for p in owned}
        self.risk_counts = {p: Counter() for p in owned}
        self._scanning = set(owned)
        self._recounts.clear()
        self.inflight.clear()
        self.rebuilt_at.clear()  # stamped when the timer first serves each partition
        self.timer_target = None

    def restore(self, snap: IndexSnapshot) -> int:
        """Take a partition being rebuilt from its snapshot instead of its rows (the adapter
        has checked it is usable: `IndexSnapshot.usable`); returns the deadlines it holds."""
        p = snap.partition
        if p not in self.indexes:
            return 0
        self._scanning.discard(p)
        self.indexes[p] = DeadlineIndex.of(snap.keys, snap.dues)
        self.open_counts[p] = Counter(snap.opens)
        self.risk_counts[p] = Counter(snap.risks)
        return len(self.indexes[p])

    def reindex(self, partition: int, key: bytes, row: bytes | None) -> None:
        """Schedule a case of a restored partition by its row as it is now (None: deleted),
        replacing what the snapshot held: a row changed after the snapshot was taken
        (`live.index_snapshots`). The gauges are left to `begin_recount`: the snapshot's
        counts hold the case's contribution as it was then, which is not known."""
        case_id = key.decode()
        if row is None:
            self._index(partition).remove(case_id)
            return
        _, touched, standing = self._row_standing(row)
        self._index(partition).schedule(case_id, self._wake(standing, touched))

    def begin_recount(self, partition: int) -> None:
        """Count the partition's gauges again from its rows, read from a point-in-time view
        of the store taken now, between handler calls (then `recount_row` per row and
        `finish_recount`). Meanwhile the handlers' changes, which remove a case's old
        contribution and add its new one, apply to the recount as well, so whether a row is
        read before or after it changes, the recount ends at what the rows hold."""
        self._recounts[partition] = (Counter(), Counter())

    def recount_row(self, partition: int, key: bytes, row: bytes) -> int:
        """Count one row of a partition being counted again; returns 1 if it was."""
        recount = self._recounts.get(partition)
        if recount is None:
            return 0
        self._tally(*recount, self._row_standing(row)[2], +1)
        return 1

    def finish_recount(self, partition: int) -> None:
        """The recount replaces the partition's counts (if it is still owned and counting)."""
        recount = self._recounts.pop(partition, None)
        if recount is None or partition not in self.indexes:
            return
        self.open_counts[partition], self.risk_counts[partition] = recount
        self._publish_counts(partition)

    @property
    def scanning(self) -> frozenset[int]:
        """The partitions being rebuilt whose rows `index_row` still wants."""
        return frozenset(self._scanning)

    def snapshot(self, partition: int, offset: int | None) -> IndexSnapshot:
        """The partition's index and gauge counts, for a restart (`live.index_snapshots`),
        taken between handler calls. A case taken for evaluation and not yet evaluated
        keeps the deadline it was taken for, so the restart evaluates it again."""
        idx = self._index(partition)
        keys, dues = idx.deadlines()
        for (p, case_id), (_, owed) in self.inflight.items():
            if p == partition:  # appended: a key repeated later wins (`DeadlineIndex.of`)
                armed = idx.due_of(case_id)
                keys.append(case_id)
                dues.append(owed if armed is None else min(owed, armed))
        return IndexSnapshot(
            partition=partition,
            fingerprint=self.fingerprint,
            offset=offset,
            keys=keys,
            dues=dues,
            opens=Counter(self.open_counts.get(partition, ())),
            risks=Counter(self.risk_counts.get(partition, ())),
        )

    def index_row(self, key: bytes, row: bytes) -> int:
        """Index one table row (`key` is its case_id) if its partition is being rebuilt;
        returns 1 if it was.

        Cheap on what it does not need: the partition is read from the row's prefix (rows of
        other partitions are not parsed), and of the rest only the header before the state
        (`live.rows`); a state is decoded only if its row was written under another policy
        or caseclock version."""
        p = row_partition(row)
        if p is not None and p not in self._scanning:
            return 0
        p, touched, standing = self._row_standing(row)
        if p not in self._scanning:
            return 0
        self.indexes[p].schedule(key.decode(), self._wake(standing, touched))
        self._tally(self.open_counts[p], self.risk_counts[p], standing, +1)
        return 1

    def _row_standing(self, row: bytes) -> tuple[int, int, Standing]:
        """(partition, touched, standing) of a row, parsing only its header unless the row
        was written under another policy or caseclock version."""
        head = read_header(row, self.fingerprint)
        standing = head.standing
        if standing is None:
            standing = self.standing(decode_row(row)[0])
        return head.partition, head.touched, standing

    def finish_rebuild(self) -> None:
        self._scanning = set()
        owned = set(self.indexes)
        self.metrics.set_assigned_partitions(owned)
        for p in owned:
            self._publish_counts(p)
        self.metrics.set_timer_index_size(sum(len(i) for i in self.indexes.values()))

    def forget_partitions(self) -> None:
        """On revocation: stop reporting at once (the new owner reports them)."""
        self.metrics.set_assigned_partitions(())
        self.open_counts.clear()
        self.risk_counts.clear()
        self._recounts.clear()
        self.inflight.clear()

    # --- helpers ---------------------------------------------------------------------------

    def _load(self, partition: int, key: bytes) -> _Loaded | None:
        row = self.store.get(partition, key)
        if row is None:
            return None
        state, touched, standing = decode_row(row, self.fingerprint)
        if standing is None:  # written under another policy or version: derived again
            standing = self.standing(state)
        return _Loaded(key, state, touched, standing)

    def standing(self, state: CaseState) -> Standing:
        """What the index and the gauges hold of a case (`live.rows.Standing`)."""
        if not state.opened or state.resolved:
            return Standing(True, None, None, ())
        cur = self.engine.current(state)
        if cur is None:
            return Standing(False, self.engine.next_due(state), None, ())
        counted = (str(cur[1].priority), cur[0].name)
        return Standing(
            False, self.engine.next_due(state), counted, tuple(self.engine.at_risk(state))
        )

    def _encode(self, state: CaseState, partition: int, touched: int) -> tuple[bytes, Standing]:
        """The case's row, and the standing it records."""
        standing = self.standing(state)
        return encode_row(state, partition, touched, standing, self.fingerprint), standing

    def _index(self, partition: int) -> DeadlineIndex:
        idx = self.indexes.get(partition)
        if idx is None:
            idx = self.indexes[partition] = DeadlineIndex()
        return idx

    def _schedule(self, partition: int, case_id: str, at: int | None) -> None:
        self._index(partition).schedule(case_id, at)
        if at is not None and (self.timer_target is None or at < self.timer_target):
            self.timer_target = at
            self.wake()

    def _held(
        self, p: int, case_id: str, standing: Standing, now: int, touched: int | None = None
    ) -> int | None:
        """When the timer must look at a case a fact was just applied to: its `_wake`, but
        a deadline already past (or nearer than the input skew) waits until `now` + skew, for
        the case's facts on the other input topics. Once: a case already waiting that long or
        less keeps its turn, so a case whose facts keep coming is not pushed back by each.
        `touched`: when its row was written, if not now."""
        wake = self._wake(standing, now if touched is None else touched)
        hold = now + self.skew_us
        if wake is None or wake >= hold:
            return wake
        pending = self._index(p).due_of(case_id)
        if pending is not None and pending <= hold:
            return max(wake, pending)
        return hold

    def _expired(self, state: CaseState, touched: int, now: int) -> bool:
        return (state.resolved or not state.opened) and touched + self.cfg.retention_us <= now

    def _wake(self, standing: Standing, touched: int) -> int | None:
        """When the timer must look at this case again: its next alert, or its purge."""
        if standing.closed:
            return touched + self.cfg.retention_us
        return standing.due

    def timer_lag(self, now: int, owned: Iterable[int]) -> int:
        """How long the oldest due timer has waited to be evaluated: a case dispatched but not
        yet handled (since dispatch), or a due deadline still queued behind the per-run cap.
        A case learned late is not "overdue" here: its catch-up is one dispatch away."""
        # Dispatch times only grow and a case keeps its first one (setdefault), so the
        # first entry still in the dict is the oldest: O(1), not a scan of every dispatch.
        oldest = next(iter(self.inflight.values()), (now, now))[0]
        for p in owned:
            idx = self.indexes.get(p)
            head = None if idx is None else idx.peek()
            if head is not None and head < oldest:
                oldest = head
        return max(0, now - oldest)

    # --- gauges ------------------------------------------------------------------------------

    def _count(self, partition: int, standing: Standing, sign: int) -> None:
        """Add (+1) or remove (-1) the case's contribution to its partition's gauges; callers
        remove it before a state change and add it back after, so no per-case copy is kept."""
        opens = self.open_counts.get(partition)
        if opens is None:  # not setdefault: that builds a Counter on every call
            opens = self.open_counts[partition] = Counter()
        risks = self.risk_counts.get(partition)
        if risks is None:
            risks = self.risk_counts[partition] = Counter()
        self._tally(opens, risks, standing, sign)
        if self._recounts:
            recount = self._recounts.get(partition)
            if recount is not None:
                self._tally(*recount, standing, sign)

    @staticmethod
    def _tally(
        opens: Counter[tuple[str, str]],
        risks: Counter[tuple[str, str]],
        standing: Standing,
        sign: int,
    ) -> None:
        counted = standing.counted
        if counted is None:
            return
        opens[counted] += sign
        prio = counted[0]
        for clock in standing.risks:
            risks[(clock, prio)] += sign

    def _publish_counts(self, partition: int) -> None:
        self.metrics.set_partition_counts(
            partition,
            self.open_counts.get(partition, Counter()),
            self.risk_counts.get(partition, Counter()),
        )
