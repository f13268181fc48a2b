"""The live service: the engine on Kafka, with Faust.

Shape (see ../shared/notes on Faust's traps):

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
"""

from __future__ import annotations

import asyncio
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
from .metrics import FAUST_SENSOR_PREFIX, Metrics, buckets_for_windows
from .policy import Policy
from .schedule import DeadlineIndex
from .timeutil import US, from_us

log = logging.getLogger("caseclock")

MAX_TICKS_PER_RUN = 2000
"""Cap on ticks sent per timer run, so a catch-up after downtime yields to the event loop."""
REBUILD_YIELD_EVERY = 2000
RECOVERY_STUCK_EXIT = 75
"""Exit status when recovery outlasts its timeout (EX_TEMPFAIL: restart me)."""


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
        self.recovering_since: int | None = wall_us()
        """When the current (re)covery began; None once the index is rebuilt."""
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

        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, registry=self.registry, name_prefix=FAUST_SENSOR_PREFIX)

        @app.page("/healthz")
        async def healthz(view: Any, request: Any) -> Any:
            stuck = self._recovery_stuck_for(wall_us())
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
        self.recovering_since = wall_us()
        self.metrics.set_recovery_complete(False)
        self.metrics.set_assigned_partitions(())
        self.open_counts.clear()
        self.risk_counts.clear()
        self.inflight.clear()

    def _recovery_stuck_for(self, now: int) -> float | None:
        since = self.recovering_since
        if since is None or now - since <= self.cfg.recovery_timeout * US:
            return None
        return (now - since) / US

    async def _watchdog(self) -> None:
        """Exit when a recovery outlasts CASECLOCK_RECOVERY_TIMEOUT.

        Faust's changelog recovery can stall after quick successive rebalances (seen here:
        "Resuming flow..." and then no changelog record for minutes), leaving the worker owning
        partitions it never serves. A fresh process recovers; so /healthz turns 503 (for
        liveness probes) and the worker exits with status 75 for its supervisor to restart it.
        """
        while True:
            await asyncio.sleep(min(5.0, self.cfg.recovery_timeout / 4))
            stuck = self._recovery_stuck_for(wall_us())
            if stuck is not None:
                log.error(
                    "caseclock: recovery stuck for %.0f s (CASECLOCK_RECOVERY_TIMEOUT=%s); "
                    "exiting so that the worker is restarted",
                    stuck,
                    self.cfg.recovery_timeout,
                )
                logging.shutdown()
                os._exit(RECOVERY_STUCK_EXIT)

    async def _on_recovered(self) -> None:
        """Rebuild the deadline index and the gauges from the table for owned partitions."""
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
                await asyncio.sleep(0)
        self.indexes = indexes
        self.inflight.clear()
        self.open_counts = opens
        self.risk_counts = risks
        self.metrics.set_assigned_partitions(owned)
        for p in owned:
            self._publish_counts(p)
        self.metrics.set_timer_index_size(sum(len(i) for i in indexes.values()))
        self.ready = True
        self.recovering_since = None
        self.metrics.set_recovery_complete(True)
        log.info("caseclock: recovered %d cases on partitions %s", n, sorted(owned))

    # --- the agent -----------------------------------------------------------------------------

    async def _process(self, stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                if msg.topic == self.cfg.tick_topic:
                    await self._on_tick(msg.key, msg.partition)
                else:
                    with self.metrics.time_event_processing():
                        await self._on_input(msg, event.value)
            except Exception:  # never stop the stream on one case; the tick retry re-arms it
                log.exception(
                    "caseclock: failed on %s[%s]@%s", msg.topic, msg.partition, msg.offset
                )

    def _load(self, key: bytes) -> tuple[CaseState | None, int | None]:
        row = self.table.get(key)
        if row is None:
            return None, None
        doc = orjson.loads(row)
        return CaseState.from_dict(doc["s"]), doc["t"]

    def _save(self, key: bytes, state: CaseState, partition: int, touched: int) -> None:
        self.table[key] = orjson.dumps({"p": partition, "t": touched, "s": state.to_dict()})

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
            self.metrics.event_consumed(ev.type)
            self._observe_new_facts(state, was_open, was_acked)
            self._save(key, state, p, now)
            self._index(p).schedule(state.case_id, self._wake_at(state, now))
        else:
            self.metrics.event_duplicate(ev.type)
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

    async def _on_tick(self, key: bytes, partition: int) -> None:
        self.inflight.pop((partition, key.decode()), None)
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
            await self._emit(key, alerts, touched)
            self._save(key, state, partition, touched)
            self.metrics.tick("fired")
        else:
            self.metrics.tick("stale")
        self._count(partition, state, +1)
        self._publish_counts(partition)
        idx.schedule(state.case_id, self._wake_at(state, touched))

    async def _emit(self, key: bytes, alerts: list[Alert], touched: int) -> None:
        """Send alerts and wait until the broker has them, before their state is recorded.

        Lateness is measured from max(due, when the case's latest fact arrived): an alert
        cannot fire before the fact that makes it due is known, so late upstream data does not
        read as slow timers, while downtime does."""
        pending = [await self.alert_topics[a.type].send(key=key, value=a.to_json()) for a in alerts]
        await asyncio.gather(*pending)
        for a in alerts:
            late = (a.fired_us - max(a.due_us, touched)) / US
            self.metrics.alert_emitted(
                a.type, a.stage, str(a.priority), lateness_seconds=late, catch_up=a.catch_up
            )
            if a.stage == "breach":
                self.metrics.sla_breach("ack" if a.type == "ack-due" else "update", str(a.priority))
                if a.type == "ack-due":
                    self.metrics.acknowledgement(str(a.priority), in_time=False)
            elif a.reason == "no-eta-or-workaround":
                self.metrics.sla_breach("elevation", str(a.priority))
            log.info(
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
        fut = await self.dead_letters.send(key=msg.key, value=record.to_json())
        await fut
        self.metrics.dead_letter(r.reason)
        log.warning(
            "caseclock: dead-lettered %s[%s]@%s: %s: %s",
            msg.topic,
            msg.partition,
            msg.offset,
            r.reason,
            r.detail,
        )

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
