"""The live service: the engine on Kafka, with Faust.

Shape (docs/architecture.md describes it, and the Faust traps it avoids):

* One agent consumes the input topics *and* an internal tick topic, co-partitioned by case_id.
  It is the only writer of the `cases` table, so every state change happens inside the stream,
  in partition order, with the changelog written by Faust.
* A deadline index per actively owned partition (`schedule.DeadlineIndex`) is rebuilt from the
  table after every recovery. The timer never touches the table: it pops due cases from the
  index and sends a tick (case id, due) to the case's own partition of the tick topic; the
  agent re-checks the state on the tick, emits what the engine says is due, and reschedules.
  A tick whose case moved on does nothing. A lost tick is retried: the timer re-arms the case a
  few ticks later, and the agent replaces that entry with the real next deadline.
* At-least-once: alerts are delivered (acknowledged by the broker) before the state that
  records them is written, and Faust flushes the producer before committing offsets. A crash
  can repeat an alert, never lose one; repeats carry the same deterministic alert_id.
* No single message or case can stop the worker: a case's state is bounded (engine.CaseState)
  and checked against CASECLOCK_MAX_STATE_BYTES before it is written; a record the broker
  refuses for good (an alert, a state) is dead-lettered with a reason and processing goes on;
  only transient broker errors are waited out (nothing can be committed while they last).
* Recovery heals itself: recovery callbacks of an older rebalance are dropped, and the
  watchdog (watchdog.StallWatch) restarts a worker whose recovery makes no progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry

from .config import Config
from .deadletter import DeadLetter
from .engine import CaseState, Engine
from .events import Alert, Rejected, decode_event
from .logs import Summary
from .metrics import FAUST_SENSOR_PREFIX, Metrics, buckets_for_windows
from .policy import Policy
from .schedule import DeadlineIndex
from .timeutil import US, from_us
from .watchdog import StallWatch

log = logging.getLogger("caseclock")

MAX_TICKS_PER_RUN = 2000
"""Cap on ticks sent per timer run, so a catch-up after downtime yields to the event loop."""
REBUILD_YIELD_EVERY = 2000
RECOVERY_STUCK_EXIT = 75
"""Exit status when recovery made no progress for its timeout (EX_TEMPFAIL: restart me)."""
SUMMARY_EVERY_S = 60.0
"""One summary line per this many seconds says what the worker did."""
RETRY_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Waits between attempts while the broker is unreachable (the last one repeats)."""


def transient(exc: BaseException) -> bool:
    """Whether a send failed because the broker is (for now) unreachable or busy, as opposed
    to refusing this record for good (too large, invalid, not authorised, unserialisable)."""
    from aiokafka.errors import KafkaError, KafkaTimeoutError, KafkaUnavailableError

    if isinstance(exc, (KafkaTimeoutError, KafkaUnavailableError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


def wall_us() -> int:
    return time.time_ns() // 1000


class CaseClock:
    """The worker: a Faust app wired to the engine. Built by a factory, one per process."""

    def __init__(
        self, cfg: Config, policy: Policy, registry: CollectorRegistry | None = None
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.engine = Engine(policy)
        self.registry = registry or CollectorRegistry()
        windows = policy.windows_seconds()
        self.metrics = Metrics(
            self.registry,
            buckets_for_windows(windows["acknowledge"]),
            buckets_for_windows(windows["time_to_open"]) if windows["time_to_open"] else None,
            priorities=sorted(str(p) for p in policy.all_priorities),
        )
        self.indexes: dict[int, DeadlineIndex] = {}
        self.open_counts: dict[int, Counter[tuple[str, str]]] = {}
        self.risk_counts: dict[int, Counter[tuple[str, str]]] = {}
        self.inflight: dict[tuple[int, str], int] = {}
        """Ticks sent and not yet processed: (partition, case_id) -> when sent."""
        self.ready = False
        self.watch = StallWatch(cfg.recovery_timeout)
        self.watch.begin(wall_us())
        self._revoked_mono = 0.0
        """time.monotonic() of the latest revocation: a recovery that began before it is stale."""
        self._rebuilt = 0
        """Rows read by index rebuilds so far (progress for the watchdog)."""
        self.summary = Summary()
        self._retry_us = max(5 * US, round(5 * cfg.tick_interval * US))
        self.app = self._build_app()

    # --- wiring ------------------------------------------------------------------------------

    def _build_app(self) -> faust.App:
        cfg = self.cfg
        app = faust.App(
            cfg.app_id,
            broker=[f"kafka://{b.strip()}" for b in cfg.bootstrap_servers.split(",")],
            broker_credentials=self._credentials(),
            store=cfg.store,
            datadir=cfg.data_dir,
            topic_partitions=cfg.partitions,
            topic_replication_factor=cfg.replication_factor,
            topic_allow_declare=True,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=cfg.session_timeout,
            broker_heartbeat_interval=max(1.0, cfg.session_timeout / 10),
            producer_acks=-1,
            stream_recovery_delay=cfg.recovery_delay,
            consumer_group_instance_id=cfg.group_instance_id or None,
            web_enabled=True,
            web_bind=cfg.web_host,
            web_host=cfg.web_host,
            web_port=cfg.web_port,
            key_serializer="raw",
            value_serializer="raw",
            table_standby_replicas=0,
        )
        self.inputs = app.topic(*cfg.input_topics, cfg.tick_topic)
        self.ticks = app.topic(cfg.tick_topic, partitions=cfg.partitions, internal=True)
        self.alert_topics = {t: app.topic(name) for t, name in cfg.alert_topics.items()}
        self.dead_letters = app.topic(cfg.dead_letter_topic)
        # key_type/value_type, not only the schema: the Table derives its changelog
        # serializers from them and falls back to json, which cannot read the raw rows back.
        self.table = app.Table(
            "cases",
            partitions=cfg.partitions,
            key_type=bytes,
            value_type=bytes,
            schema=faust.Schema(
                key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            ),
        )
        self.table.on_recover(self._on_recovered)
        app.agent(self.inputs, name="caseclock.process")(self._process)
        app.timer(interval=cfg.tick_interval, name="caseclock.fire_due")(self._fire_due)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.task(self._watchdog)
        app.timer(interval=SUMMARY_EVERY_S, name="caseclock.summary")(self._log_summary)

        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, registry=self.registry, name_prefix=FAUST_SENSOR_PREFIX)

        @app.page("/healthz")
        async def healthz(view: Any, request: Any) -> Any:
            stuck = self.watch.stuck_for(wall_us())
            if stuck is not None:
                return view.json({"status": "recovery stuck", "seconds": stuck}, status=503)
            return view.json({"status": "ok"})

        @app.page("/readyz")
        async def readyz(view: Any, request: Any) -> Any:
            ready = self.ready and not app.rebalancing
            return view.json(
                {"ready": ready, "partitions": sorted(self.indexes)}, status=200 if ready else 503
            )

        return app

    def _credentials(self) -> Any:
        cfg = self.cfg
        ctx = cfg.ssl_context()
        if cfg.security_protocol.startswith("SASL"):
            return faust.SASLCredentials(
                username=cfg.sasl_username,
                password=cfg.sasl_password,
                mechanism=cfg.sasl_mechanism,
                ssl_context=ctx,
            )
        if ctx is not None:
            return faust.SSLCredentials(ctx)
        return None

    # --- partitions and recovery -----------------------------------------------------------

    def owned_partitions(self) -> set[int]:
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.cfg.tick_topic
        }

    async def _on_revoked(self, sender: Any, revoked: Iterable[Any], **kwargs: Any) -> None:
        """Stop reporting partitions at once: until recovery says which ones are ours again,
        gauges from this worker would double-count with the worker that takes them."""
        self.ready = False
        self.watch.begin(wall_us())
        self._revoked_mono = time.monotonic()
        self.metrics.set_recovery_complete(False)
        self.metrics.set_assigned_partitions(())
        self.open_counts.clear()
        self.risk_counts.clear()
        self.inflight.clear()

    def _recovery(self) -> Any:
        """Faust's table recovery service (not in the public TableManager type)."""
        return self.app.tables.recovery  # type: ignore[attr-defined]

    def _recovery_marker(self) -> tuple[int, int, bool, int, int]:
        """What changes while a recovery makes progress: a new rebalance or generation, the
        recovery's phase, changelog offsets applied, rows read by the index rebuild."""
        app = self.app
        rec = self._recovery()
        applied = sum(int(v) for v in rec.active_offsets.values() if v is not None)
        return (
            app.rebalancing_count,
            app.consumer_generation_id,
            bool(rec.in_recovery),
            applied,
            self._rebuilt,
        )

    async def _broker_answers(self) -> bool:
        """Whether a bootstrap server accepts a TCP connection: with the broker down there is
        no recovery to make progress, and restarting the worker would not bring it back."""
        for server in self.cfg.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 3.0)
            except (TimeoutError, OSError, ValueError):
                continue
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()
            return True
        return False

    async def _watchdog(self) -> None:
        """Exit when a recovery makes no progress for CASECLOCK_RECOVERY_TIMEOUT.

        Faust's changelog recovery can stall for good after quick successive rebalances
        ("Resuming flow..." and then no changelog record), leaving the worker owning partitions
        it never serves; only a fresh process recovers. So /healthz turns 503 (for liveness
        probes) and the worker exits with status 75 for its supervisor to restart it. A long
        recovery that progresses is left alone, and so is a worker waiting for a broker that
        does not answer (a restart would not help it).
        """
        every = min(5.0, self.cfg.recovery_timeout / 4)
        while True:
            await asyncio.sleep(every)
            now = wall_us()
            self.watch.observe(now, self._recovery_marker())
            stuck = self.watch.stuck_for(now)
            if stuck is None:
                continue
            if not await self._broker_answers():
                self.watch.observe(now, ("broker down", now))  # waiting on Kafka is no stall
                continue
            log.error(
                "caseclock: recovery made no progress for %.0f s (CASECLOCK_RECOVERY_TIMEOUT=%s, "
                "recovering for %.0f s); exiting so that the worker is restarted",
                stuck,
                self.cfg.recovery_timeout,
                self.watch.elapsed(now) or 0.0,
            )
            logging.shutdown()
            os._exit(RECOVERY_STUCK_EXIT)

    def _stale_recovery(self, rebalances: int) -> bool:
        """Whether the recovery whose callback runs now is not the current one: it began before
        the latest revocation (a callback of an older generation, run late), or a rebalance
        began since the callback started. Its index would be for partitions no longer ours."""
        began = getattr(self._recovery(), "_recovery_started_at", None)
        if began is not None and began < self._revoked_mono:
            return True
        return self.app.rebalancing_count != rebalances

    async def _on_recovered(self) -> None:
        """Rebuild the deadline index and the gauges from the table for owned partitions."""
        rebalances = self.app.rebalancing_count
        if self._stale_recovery(rebalances):
            log.info("caseclock: ignoring the completion of an outdated recovery")
            return
        owned = self.owned_partitions()
        indexes = {p: DeadlineIndex() for p in owned}
        opens: dict[int, Counter[tuple[str, str]]] = {p: Counter() for p in owned}
        risks: dict[int, Counter[tuple[str, str]]] = {p: Counter() for p in owned}
        n = 0
        for _key, row in list(self.table.items()):
            doc = orjson.loads(row)
            p = doc["p"]
            if p not in owned:
                continue
            state = CaseState.from_dict(doc["s"])
            indexes[p].schedule(state.case_id, self._wake_at(state, doc["t"]))
            self._tally(opens[p], risks[p], state, +1)
            n += 1
            if n % REBUILD_YIELD_EVERY == 0:
                self._rebuilt += REBUILD_YIELD_EVERY
                await asyncio.sleep(0)
                if self._stale_recovery(rebalances):
                    log.info("caseclock: a rebalance began during the index rebuild; dropped")
                    return
        self.indexes = indexes
        self.inflight.clear()
        self.open_counts = opens
        self.risk_counts = risks
        self.metrics.set_assigned_partitions(owned)
        for p in owned:
            self._publish_counts(p)
        self.metrics.set_timer_index_size(sum(len(i) for i in indexes.values()))
        self.ready = True
        self.watch.done()
        self.metrics.set_recovery_complete(True)
        log.info("caseclock: recovered %d cases on partitions %s", n, sorted(owned))

    # --- the agent -----------------------------------------------------------------------------

    async def _process(self, stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                if msg.topic == self.cfg.tick_topic:
                    await self._on_tick(msg, msg.key, msg.partition)
                else:
                    with self.metrics.time_event_processing():
                        await self._on_input(msg, event.value)
            except Exception as exc:
                # Never stop the stream on one message. A tick is retried (the timer re-armed
                # its case); an input message goes to the dead letters with the error, so it
                # is neither lost silently nor retried into a crash loop.
                log.exception(
                    "caseclock: failed on %s[%s]@%s", msg.topic, msg.partition, msg.offset
                )
                if msg.topic != self.cfg.tick_topic:
                    await self._dead_letter_quietly(
                        Rejected("processing-failed", f"{type(exc).__name__}: {exc}"),
                        msg,
                        event.value if isinstance(event.value, bytes) else b"",
                    )

    def _load(self, key: bytes) -> tuple[CaseState | None, int | None]:
        row = self.table.get(key)
        if row is None:
            return None, None
        doc = orjson.loads(row)
        return CaseState.from_dict(doc["s"]), doc["t"]

    def _row(self, state: CaseState, partition: int, touched: int) -> bytes:
        return orjson.dumps({"p": partition, "t": touched, "s": state.to_dict()})

    def _oversized(self, row: bytes) -> Rejected | None:
        if len(row) <= self.cfg.max_state_bytes:
            return None
        return Rejected(
            "state-too-large",
            f"the case's state would take {len(row)} bytes, over "
            f"CASECLOCK_MAX_STATE_BYTES={self.cfg.max_state_bytes}; the case keeps its "
            "previous state",
        )

    async def _on_input(self, msg: Any, raw: bytes | None) -> None:
        if raw is None:
            await self._dead_letter(Rejected("invalid-json", "empty message (tombstone)"), msg, b"")
            return
        try:
            ev = decode_event(raw, self.policy, key=msg.key, max_bytes=self.cfg.max_message_bytes)
        except Rejected as r:
            await self._dead_letter(r, msg, raw)
            return
        now = wall_us()
        key: bytes = msg.key
        p: int = msg.partition
        state, _ = self._load(key)
        was_open = state is not None and state.opened
        was_acked = state is not None and state.opened and state.comm_first is not None
        if state is not None:
            self._count(p, state, -1)
        state, applied = self.engine.apply(state, ev, now)
        if applied:
            row = self._row(state, p, now)
            too_large = self._oversized(row)
            if too_large is not None:
                state, _ = self._load(key)  # apply() changed our copy in place: take it back
                if state is not None:
                    self._count(p, state, +1)
                    self._publish_counts(p)
                await self._dead_letter(too_large, msg, raw)
                return
            self.metrics.event_consumed(ev.type)
            self.summary.add("applied")
            self._observe_new_facts(state, was_open, was_acked)
            self.table[key] = row
            self._index(p).schedule(state.case_id, self._wake_at(state, now))
        else:
            self.metrics.event_duplicate(ev.type)
            self.summary.add("duplicate")
        self._count(p, state, +1)
        self._publish_counts(p)

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
                    self.metrics.sla_breach("time_to_open", str(tto[0]))
        if not was_acked and state.comm_first is not None and state.opened_at is not None:
            took = state.comm_first - state.opened_at
            self.metrics.observe_time_to_acknowledge(prio, took / US)
            if cur is not None and not state.ack_breach_emitted:  # a fired breach counted late
                self.metrics.acknowledgement(prio, took <= cur[1].acknowledge)

    async def _on_tick(self, msg: Any, key: bytes, partition: int) -> None:
        self.inflight.pop((partition, key.decode()), None)
        self.summary.add("tick")
        state, touched = self._load(key)
        if state is None or touched is None:
            self.metrics.tick("stale")
            return
        now = wall_us()
        idx = self._index(partition)
        self._count(partition, state, -1)
        if self._expired(state, touched, now):
            self.table.pop(key, None)
            idx.remove(state.case_id)
            self._publish_counts(partition)
            self.metrics.tick("purged")
            return
        alerts = self.engine.evaluate(state, now)
        if alerts:
            await self._emit(msg, key, alerts, touched)
            # Evaluation never grows a state, but the bound holds on every write.
            row = self._row(state, partition, touched)
            if self._oversized(row) is None:
                self.table[key] = row
            self.metrics.tick("fired")
        else:
            self.metrics.tick("stale")
        self._count(partition, state, +1)
        self._publish_counts(partition)
        idx.schedule(state.case_id, self._wake_at(state, touched))

    async def _deliver(self, topic: Any, key: bytes | None, value: bytes) -> None:
        """Send one record and wait for the broker's acknowledgement, waiting out transient
        failures (broker down, leader moving) for as long as they last: nothing can be
        committed meanwhile, and giving up would lose the record. A permanent refusal of the
        record raises to the caller, which dead-letters it."""
        attempt = 0
        while True:
            try:
                fut = await topic.send(key=key, value=value)
                await fut
                return
            except Exception as exc:
                if not transient(exc):
                    raise
                wait = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                attempt += 1
                log.warning("caseclock: broker unavailable, send retried: %s", type(exc).__name__)
                await asyncio.sleep(wait)

    async def _emit(self, msg: Any, key: bytes, alerts: list[Alert], touched: int) -> None:
        """Send alerts and wait until the broker has them, before their state is recorded.

        An alert the broker refuses for good goes to the dead letters (with the tick's
        position and the alert as the value), so that one record cannot stop its case's clock
        or retry forever; it counts as emitted.

        Lateness is measured from max(due, when the case's latest fact arrived): an alert
        cannot fire before the fact that makes it due is known, so late upstream data does not
        read as slow timers, while downtime does."""
        for a in alerts:
            value = a.to_json()
            try:
                await self._deliver(self.alert_topics[a.type], key, value)
            except Exception as exc:
                detail = f"{a.type} {a.stage} {a.alert_id}: {type(exc).__name__}: {exc}"
                await self._dead_letter(Rejected("alert-undeliverable", detail), msg, value)
                self.summary.add("undeliverable")
                continue
            late = (a.fired_us - max(a.due_us, touched)) / US
            self.metrics.alert_emitted(
                a.type, a.stage, str(a.priority), lateness_seconds=late, catch_up=a.catch_up
            )
            self.summary.add("alert")
            if a.catch_up:
                self.summary.add("catch-up")
            if a.stage == "breach":
                self.metrics.sla_breach("ack" if a.type == "ack-due" else "update", str(a.priority))
                if a.type == "ack-due":
                    self.metrics.acknowledgement(str(a.priority), in_time=False)
            elif a.reason == "no-eta-or-workaround":
                self.metrics.sla_breach("elevation", str(a.priority))
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

    async def _dead_letter(self, r: Rejected, msg: Any, raw: bytes) -> None:
        record = DeadLetter.build(
            reason=r.reason,
            detail=r.detail,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=raw,
            received_at=from_us(wall_us()),
        )
        await self._deliver(self.dead_letters, msg.key, record.to_json())
        self.metrics.dead_letter(r.reason)
        self.summary.add("dead-letter")
        log.warning(
            "caseclock: dead-lettered %s[%s]@%s: %s: %s",
            msg.topic,
            msg.partition,
            msg.offset,
            r.reason,
            r.detail,
        )

    async def _dead_letter_quietly(self, r: Rejected, msg: Any, raw: bytes) -> None:
        """Dead-letter from the last-resort handler: a failure here is logged, not raised."""
        try:
            await self._dead_letter(r, msg, raw)
        except Exception:
            log.exception(
                "caseclock: could not dead-letter %s[%s]@%s", msg.topic, msg.partition, msg.offset
            )

    async def _log_summary(self) -> None:
        now = wall_us()
        owned = sorted(self.indexes) if self.ready else []
        extra = (
            f"partitions {owned}, {sum(len(i) for i in self.indexes.values())} timers, "
            f"timer lag {self._timer_lag(now, owned) / US:.1f} s"
            if self.ready
            else f"recovering for {self.watch.elapsed(now) or 0.0:.0f} s"
        )
        log.info("caseclock: last %.0f s: %s", SUMMARY_EVERY_S, self.summary.line(extra))

    # --- deadlines ---------------------------------------------------------------------------

    def _index(self, partition: int) -> DeadlineIndex:
        idx = self.indexes.get(partition)
        if idx is None:
            idx = self.indexes[partition] = DeadlineIndex()
        return idx

    def _expired(self, state: CaseState, touched: int, now: int) -> bool:
        return (state.resolved or not state.opened) and touched + self.cfg.retention_us <= now

    def _wake_at(self, state: CaseState, touched: int) -> int | None:
        """When the timer must look at this case again: its next alert, or its purge."""
        if state.resolved or not state.opened:
            return touched + self.cfg.retention_us
        return self.engine.next_due(state)

    async def _fire_due(self) -> None:
        if self.app.rebalancing or not self.ready:
            return
        now = wall_us()
        owned = self.owned_partitions()
        sent = 0
        for p in sorted(owned):
            idx = self.indexes.get(p)
            if idx is None:
                continue
            for due, case_id in idx.pop_due(now, MAX_TICKS_PER_RUN - sent):
                await self.ticks.send(
                    key=case_id.encode(), value=orjson.dumps({"due": due}), partition=p
                )
                self.inflight.setdefault((p, case_id), now)
                idx.schedule(case_id, now + self._retry_us)
                sent += 1
            if sent >= MAX_TICKS_PER_RUN:
                break
        self.metrics.set_oldest_overdue_seconds(self._timer_lag(now, owned) / US)
        self.metrics.set_timer_index_size(sum(len(i) for i in self.indexes.values()))

    def _timer_lag(self, now: int, owned: Iterable[int]) -> int:
        """How long the oldest due timer has waited to be evaluated: a tick sent but not yet
        processed (since it was sent), or a due deadline still queued behind the per-run cap.
        A case learned late is not "overdue" here: its catch-up is one tick away."""
        oldest = min(self.inflight.values(), default=now)
        for p in owned:
            idx = self.indexes.get(p)
            head = None if idx is None else idx.peek()
            if head is not None and head < oldest:
                oldest = head
        return max(0, now - oldest)

    # --- gauges --------------------------------------------------------------------------------

    def _count(self, partition: int, state: CaseState, sign: int) -> None:
        """Add (+1) or remove (-1) the case's contribution to its partition's gauges; callers
        remove it before a state change and add it back after, so no per-case copy is kept."""
        self._tally(
            self.open_counts.setdefault(partition, Counter()),
            self.risk_counts.setdefault(partition, Counter()),
            state,
            sign,
        )

    def _tally(
        self,
        opens: Counter[tuple[str, str]],
        risks: Counter[tuple[str, str]],
        state: CaseState,
        sign: int,
    ) -> None:
        if not state.opened or state.resolved:
            return
        cur = self.engine.current(state)
        if cur is None:
            return
        prio = str(cur[1].priority)
        opens[(prio, cur[0].name)] += sign
        for clock in self.engine.at_risk(state):
            risks[(clock, prio)] += sign

    def _publish_counts(self, partition: int) -> None:
        self.metrics.set_partition_counts(
            partition,
            self.open_counts.get(partition, Counter()),
            self.risk_counts.get(partition, Counter()),
        )
