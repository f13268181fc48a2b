"""The Faust adapter: the service layer (`live.handlers.CaseService`) on Kafka.

This module wires; the handlers decide. Shape (docs/architecture.md has the whole picture):

* The input topics, co-partitioned by case_id, are subscribed by one agent; Faust's consumer
  hands their messages over a fetch at a time (`live.faust_compat.consumer`) to
  `CaseService.on_inputs`.
* The timer is a task that sleeps until the next deadline of the owned partitions (woken when
  an earlier one is scheduled), pops every due case and hands them, in chunks, to
  `CaseService.on_due`, which evaluates them, sends all their alerts, waits for the
  acknowledgements, then records them. The input's batches and the timer's chunks take turns
  under one lock, so no input is applied to a case between its evaluation and the write that
  records its alerts.
* The table is reached through the `CaseStore` port (`live.faust_store.TableStore`: the local
  store written directly, its changelog produced in batches and flushed after every handler
  call); alerts and dead letters through the `Outbox` port, in batches too
  (`live.producer.BatchProducer`, on the aiokafka producer inside Faust's).
* At-least-once: alerts are acknowledged by the broker before the state that records them is
  written, and Faust flushes the producer before committing offsets. A crash can repeat an
  alert, never lose one; repeats carry the same deterministic alert_id.
* Recovery heals itself: recovery callbacks of an older rebalance are dropped, and the
  watchdog (`watchdog.StallWatch`) restarts a worker whose recovery makes no progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from caseclock.core.policy import Policy
from caseclock.core.timeutil import US
from caseclock.live import failpoints, faust_compat
from caseclock.live.catch_up import CatchUp, NotSeekedYet, backlog
from caseclock.live.changelog_keys import changed_keys
from caseclock.live.config import Config, kafka_security
from caseclock.live.faust_compat.consumer import CaseClockTransport
from caseclock.live.faust_compat.sensors import setup_lean_prometheus_sensors
from caseclock.live.faust_store import NotOwned, TableStore
from caseclock.live.handlers import RETRY_BACKOFF_S, CaseService, OutputFailure
from caseclock.live.index_snapshots import IndexSnapshot, SnapshotDir, plan_restore
from caseclock.live.metrics import FAUST_SENSOR_PREFIX, Metrics, buckets_for_windows
from caseclock.live.ports import DEAD_LETTERS, Inbound, Origin
from caseclock.live.producer import BatchProducer, Record
from caseclock.live.watchdog import CommitWatch, StallWatch, offset_runs, partition_name

log = logging.getLogger("caseclock")

BATCH_MAX = 2000
"""Most input messages handled at once (aiokafka's max_poll_records: one fetch round)."""
BATCH_WITHIN_S = 0.01
"""Longest the agent's stream waits to fill a batch (only without `live.faust_compat.consumer`)."""
REBUILD_YIELD_EVERY = 2000
FIRE_CHUNK = 2000
"""Due cases evaluated per handler call: their alerts share one wait for acknowledgements, and
the input waits at most one chunk's round trip for its turn."""
PRODUCER_BATCH_BYTES = 256 * 1024
"""Largest record batch the producer builds (aiokafka's default is 16 KiB): a handler batch of
alerts or changelog rows for one partition goes in one batch, well under the broker's 1 MB."""
CHANGELOG_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(15 * 60 * 1000),
    "segment.bytes": str(64 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": str(24 * 3600 * 1000),
}
"""Settings of the changelog topic when caseclock creates it. A case's row is rewritten on
every event, so the changelog holds many records per case; Kafka compacts only closed
segments, and by default rolls them weekly and cleans at 50 % dirt. Short segments and a low
dirty ratio keep it near one record per case, so a cold recovery reads cases, not history.
Tombstones (purged cases) stay a day for workers that are behind. (An existing topic keeps its
settings: change them with kafka-configs, see docs/operations.md.)"""
RECOVERY_STUCK_EXIT = 75
"""Exit status when the worker cannot make progress by itself: a recovery without progress, or
commits held by a hole, for their timeouts (EX_TEMPFAIL: restart me)."""
CATCH_UP_HOLD_S = 30.0
"""Longest a newly served partition's timers wait for its input backlog to be read."""
SUMMARY_EVERY_S = 60.0
"""One summary line per this many seconds says what the worker did."""
SNAPSHOT_SETTLE_S = 10.0
"""How long a stopping worker waits for its last changelog rows to be acknowledged before
it saves its index snapshots (`_on_shutdown`); the orchestrator's grace period bounds it too."""
CHANGED_KEYS_READ_S = 10.0
"""A restart from index snapshots taken while the worker ran reads the keys of the changelog
records written after them (`live.changelog_keys`) within CHANGED_KEYS_READ_S, if there are
not too many (`index_snapshots.plan_restore`); otherwise the partition's rows are read."""


def rocksdb_options(cfg: Config) -> dict[str, int]:
    """The RocksDB options of the table, per partition database: bounded write buffers and
    block cache. Faust's defaults (three 64 MiB write buffers and a 2 GiB block cache, per
    partition) let RocksDB keep up to 192 MiB of written rows per partition in memory, more
    than the rows of 1,000,000 cases on 8 partitions take; with them a worker held about
    930 bytes of resident memory per open case
    (bench/results/live-million-recovery-drain-2026-12-01.json)."""
    mib = 1024 * 1024
    return {
        "write_buffer_size": cfg.rocksdb_write_buffer_mb * mib,
        "max_write_buffer_number": 2,
        "block_cache_size": cfg.rocksdb_block_cache_mb * mib,
    }


def wall_us() -> int:
    return time.time_ns() // 1000


class _TopicOutbox:
    """The Outbox port over the alert and dead-letter topics, produced in batches."""

    def __init__(self, producer: BatchProducer, topics: dict[str, str]) -> None:
        self._producer = producer
        self._topics = topics

    async def send_all(
        self, records: Sequence[tuple[str, bytes | None, bytes]]
    ) -> list[Awaitable[object]]:
        topics = self._topics
        return await self._producer.send(
            [Record(topics[channel], key, value) for channel, key, value in records]
        )


class CaseClock:
    """The worker: a Faust app wired to the service layer. Built by a factory, one per process."""

    def __init__(
        self, cfg: Config, policy: Policy, registry: CollectorRegistry | None = None
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.registry = registry or CollectorRegistry()
        windows = policy.windows_seconds()
        self.metrics = Metrics(
            self.registry,
            buckets_for_windows(windows["acknowledge"]),
            buckets_for_windows(windows["time_to_open"]) if windows["time_to_open"] else None,
            priorities=sorted(str(p) for p in policy.all_priorities),
            calendars=sorted(policy.calendar_names),
        )
        self.ready = False
        self.watch = StallWatch(cfg.recovery_timeout)
        self.commits = CommitWatch(cfg.commit_stall_timeout)
        self._admin: Any = None
        """An admin client for the group's committed offsets (the commit watchdog)."""
        self._failing_since: int | None = None
        """When the current infrastructure failure (`failure`) was first seen."""
        self._owned: frozenset[int] = frozenset()
        self._owned_of: object = None
        """The assignment `_owned` was read from (see `owned_partitions`)."""
        self.watch.begin(wall_us())
        self._revoked_mono = 0.0
        """time.monotonic() of the latest revocation: a recovery that began before it is stale."""
        self._rebuilt = 0
        """Rows read by index rebuilds so far (progress for the watchdog)."""
        self._handling = asyncio.Lock()
        """Held by each handler call: the input's batches and the timer's chunks take turns,
        so no input is applied to a case between its evaluation and the write recording its
        alerts (the handlers await the broker in between)."""
        self._wake = asyncio.Event()
        self._read: dict[tuple[str, int], int] = {}
        """Highest offset handled per input (topic, partition)."""
        self.catch_up = CatchUp(round(CATCH_UP_HOLD_S * US))
        """Which owned partitions' timers run (`live.catch_up`)."""
        self.app = self._build_app()
        self._snapshot_dir = SnapshotDir(Path(self.app.conf.tabledir) / "caseclock-index")
        self._snapshots_taken = False
        self._saving = asyncio.Lock()
        """Held while snapshot files are written: a periodic save and the stop's do not mix."""
        self._recounting: asyncio.Future[None] | None = None
        self._stopping = False
        """Set once the worker stops: the timer evaluates nothing more."""
        self.producer = BatchProducer(self._aiokafka_producer)
        self.store = TableStore(
            self.table,
            self.producer,
            on_failure=lambda n: self.metrics.send_failed("changelog", n),
        )
        outbox = _TopicOutbox(
            self.producer, {name: t.get_topic_name() for name, t in self.channels.items()}
        )
        self.svc = CaseService(cfg, policy, self.metrics, self.store, outbox, wall_us)
        self.svc.wake = self._wake.set
        self.svc.abandon = self._abandon_sends
        self.engine = self.svc.engine

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
            broker_max_poll_records=BATCH_MAX,
            producer_max_batch_size=PRODUCER_BATCH_BYTES,
            stream_recovery_delay=0.0,  # the first recovery; then cfg's (`_on_recovered`)
            consumer_group_instance_id=cfg.group_instance_id or None,
            web_enabled=True,
            web_bind=cfg.web_host,
            web_host=cfg.web_host,
            web_port=cfg.web_port,
            key_serializer="raw",
            value_serializer="raw",
            table_standby_replicas=0,
        )
        # Before anything asks for it (app.topic does): Faust's consumer with a commit rule that
        # neither creeps on duplicate acknowledgements nor commits past a message in flight,
        # and that hands the input topics' messages over a fetch at a time
        # (`live.faust_compat.consumer`).
        transport = CaseClockTransport(app.conf.broker_consumer, app)
        transport.deliver_to(self._take, cfg.input_topics)
        app.transport = transport
        self.inputs = app.topic(*cfg.input_topics)
        self.channels = {t: app.topic(name) for t, name in cfg.alert_topics.items()}
        self.channels[DEAD_LETTERS] = app.topic(cfg.dead_letter_topic)
        # key_type/value_type, not only the schema: the Table derives its changelog
        # serializers from them and falls back to json, which cannot read the raw rows back.
        self.table = app.Table(
            "cases",
            partitions=cfg.partitions,
            key_type=bytes,
            value_type=bytes,
            extra_topic_configs=CHANGELOG_CONFIG,
            options=rocksdb_options(cfg) if cfg.store.startswith("rocksdb") else None,
            schema=faust.Schema(
                key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            ),
        )
        self.table.on_recover(self._on_recovered)
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        app.agent(self.inputs, name="caseclock.process")(self._process)
        app.task(self._timer)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.task(self._watchdog)
        app.timer(interval=SUMMARY_EVERY_S, name="caseclock.summary")(self._log_summary)
        if cfg.snapshot_interval > 0 and cfg.store.startswith("rocksdb"):
            app.timer(interval=cfg.snapshot_interval, name="caseclock.snapshots")(
                self._save_snapshots
            )

        if cfg.faust_event_metrics:
            setup_prometheus_sensors(app, registry=self.registry, name_prefix=FAUST_SENSOR_PREFIX)
        else:
            setup_lean_prometheus_sensors(app, self.registry, FAUST_SENSOR_PREFIX)

        @app.page("/healthz")
        async def healthz(view: Any, request: Any) -> Any:
            stuck = self.watch.stuck_for(wall_us())
            if stuck is not None:
                return view.json({"status": "recovery stuck", "seconds": stuck}, status=503)
            return view.json({"status": "ok"})

        @app.page("/readyz")
        async def readyz(view: Any, request: Any) -> Any:
            failure = self.failure()
            ready = self.ready and not app.rebalancing and failure is None
            body: dict[str, Any] = {"ready": ready, "partitions": sorted(self.svc.indexes)}
            if failure is not None:
                body["failure"] = failure
            return view.json(body, status=200 if ready else 503)

        return app

    def _aiokafka_producer(self) -> Any:
        """The aiokafka producer inside Faust's (started with the worker): alerts, dead
        letters and changelog rows go to it in batches (`live.producer`)."""
        return faust_compat.aiokafka_producer(self.app)

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
        """This worker's partitions (of the input topics, which are co-partitioned: Faust
        assigns one partition of every input, and of the table, to the same worker). Read
        again only when the assignor holds a new assignment: the timer asks on
        every run, and building Faust's set of every assigned topic-partition each time took
        4 % of the worker's CPU while it fired alerts (py-spy)."""
        assignment = faust_compat.assignment_token(self.app)
        if assignment is None or assignment is not self._owned_of:
            self._owned = frozenset(
                tp.partition
                for tp in self.app.assignor.assigned_actives()
                if tp.topic in self.cfg.input_topics
            )
            self._owned_of = assignment
        return set(self._owned)

    async def _on_revoked(self, sender: Any, revoked: Iterable[Any], **kwargs: Any) -> None:
        """Stop reporting partitions at once: until recovery says which ones are ours again,
        gauges from this worker would double-count with the worker that takes them.

        Fencing: Faust has waited for every input message delivered to be acknowledged (so
        every handler call's rows are durable); the timer chunk in progress, if any, is
        waited for here (its broker waits give up during a rebalance: `_abandon_sends`), then
        the store drops what is staged for the revoked partitions and refuses writes to them
        until a recovery gives them back. After this returns, this worker writes no row,
        changelog record or alert for them: the revocation is fenced."""
        self.ready = False
        self.watch.begin(wall_us())
        self.commits.reset()
        self._revoked_mono = time.monotonic()
        self.metrics.set_recovery_complete(False)
        self.catch_up.reset()
        async with self._handling:
            self.store.fence(self._partitions_of(revoked))
            self.svc.forget_partitions()
            failpoints.hit("revoke")

    def _partitions_of(self, tps: Iterable[Any]) -> set[int]:
        """The partitions of the input topics and the changelog among `tps`."""
        topics = {*self.cfg.input_topics, self.store.topic}
        return {tp.partition for tp in tps if tp.topic in topics}

    def _abandon_sends(self) -> bool:
        """Whether the handlers should stop waiting for the broker: a rebalance is under way
        (the revocation waits for the call in progress) or the worker stops."""
        return bool(self.app.rebalancing) or self._stopping

    def failure(self) -> str | None:
        """The infrastructure failure that stops the line (the store, the changelog or the
        alert topics), or None: while there is one, input is not acknowledged and the worker
        is not ready; after CASECLOCK_COMMIT_STALL_TIMEOUT the watchdog restarts it."""
        return self.store.failure or self.svc.output_failure

    def _recovery_marker(self) -> tuple[int, int, bool, int, int]:
        """What changes while a recovery makes progress: a new rebalance or generation, the
        recovery's phase, changelog offsets applied, rows read by the index rebuild."""
        return (*faust_compat.recovery_marker(self.app), self._rebuilt)

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
        every = min(5.0, self.cfg.recovery_timeout / 4, self.cfg.commit_stall_timeout / 4)
        try:
            while True:
                await self._watch_once(every)
        finally:  # the worker stops (the task is cancelled): close the admin client it opened
            admin, self._admin = self._admin, None
            if admin is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(admin.close(), 5.0)

    async def _watch_once(self, every: float) -> None:
        """One round of the watchdog: the recovery's progress, else the group's commits."""
        await asyncio.sleep(every)
        now = wall_us()
        self.watch.observe(now, self._recovery_marker())
        stuck = self.watch.stuck_for(now)
        if stuck is None:
            await self._check_failure(now)
            await self._check_commits(now)
            return
        if not await self._broker_answers():
            self.watch.observe(now, ("broker down", now))  # waiting on Kafka is no stall
            return
        log.error(
            "caseclock: recovery made no progress for %.0f s (CASECLOCK_RECOVERY_TIMEOUT=%s, "
            "recovering for %.0f s); exiting so that the worker is restarted",
            stuck,
            self.cfg.recovery_timeout,
            self.watch.elapsed(now) or 0.0,
        )
        logging.shutdown()
        os._exit(RECOVERY_STUCK_EXIT)

    async def _check_failure(self, now: int) -> None:
        """Exit (status 75) when an infrastructure failure (`failure`) has stopped the line
        for CASECLOCK_COMMIT_STALL_TIMEOUT while the broker answers: a fresh process opens
        the store and the producer again, and reads again what was not acknowledged. A
        broker that does not answer is waited for: a restart would not bring it back."""
        failure = self.failure()
        self.metrics.set_input_stopped(failure is not None)
        if failure is None:
            self._failing_since = None
            return
        if self._failing_since is None:
            self._failing_since = now
            return
        failing = (now - self._failing_since) / US
        if failing < self.cfg.commit_stall_timeout or not await self._broker_answers():
            return
        log.error(
            "caseclock: input not acknowledged for %.0f s: %s "
            "(CASECLOCK_COMMIT_STALL_TIMEOUT=%s); exiting so that the worker is restarted",
            failing,
            failure,
            self.cfg.commit_stall_timeout,
        )
        logging.shutdown()
        os._exit(RECOVERY_STUCK_EXIT)

    async def _group_committed(self) -> dict[tuple[str, int], int]:
        """The offsets the group committed at the broker (the next one to read), by
        (topic, partition); partitions with no commit are absent."""
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.cfg.bootstrap_servers, **kafka_security(self.cfg)
            )
            await asyncio.wait_for(admin.start(), 10.0)
            self._admin = admin
        offsets = await asyncio.wait_for(
            self._admin.list_consumer_group_offsets(self.app.conf.id), 10.0
        )
        return {(tp.topic, tp.partition): om.offset for tp, om in offsets.items() if om.offset >= 0}

    async def _commit_positions(self) -> dict[object, tuple[int | None, int | None]]:
        """Per owned input partition: the offset the group committed at the broker (the next
        one to read) and the highest offset this worker has read. Asked of the broker, not of
        Faust's bookkeeping, because a stall is exactly where the two disagree."""
        committed = await self._group_committed()
        owned = self.owned_partitions()
        return {
            tp: (committed.get(tp), read) for tp, read in list(self._read.items()) if tp[1] in owned
        }

    async def _check_commits(self, now: int) -> None:
        """Exit (status 75) when a partition's committed offset has stayed put, behind what
        this worker read, for CASECLOCK_COMMIT_STALL_TIMEOUT: a fresh process re-reads from the
        committed offset what Faust may have dropped (faust-streaming#596)."""
        if self.watch.recovering or self.app.rebalancing:
            self.commits.reset()
            return
        try:
            positions = await self._commit_positions()
        except Exception as exc:  # the broker will answer the next round
            # Commits cannot be made while the broker cannot be asked either: what was read
            # before an outage is judged afresh after it, not as if it had been left behind.
            log.debug("caseclock: could not read the group's committed offsets: %s", exc)
            self.commits.reset()
            return
        self.commits.observe(now, positions)
        stalled = self.commits.stalled(now)
        if not stalled:
            return
        log.error(
            "caseclock: committed offsets of %s have not caught up for %.0f s with messages "
            "read (CASECLOCK_COMMIT_STALL_TIMEOUT=%s; Faust's commit bookkeeping is stuck, "
            "faust-streaming#596); exiting so that the worker is restarted and re-reads them. "
            "Faust's bookkeeping: %s",
            ", ".join(sorted(partition_name(tp) for tp in stalled)),
            max(stalled.values()),
            self.cfg.commit_stall_timeout,
            "; ".join(self._commit_bookkeeping(tp) for tp in sorted(stalled, key=str)),
        )
        logging.shutdown()
        os._exit(RECOVERY_STUCK_EXIT)

    def _commit_bookkeeping(self, tp: object) -> str:
        """What Faust's consumer holds for `tp` when its commit is stuck, for the log: the
        offset it believes committed, the one it read last, the acknowledged offsets waiting
        (the first run of consecutive ones is what its next commit takes), the gaps it
        recorded and the messages it delivered that were never acknowledged."""
        try:
            book = faust_compat.commit_bookkeeping(self.app.consumer, tp)
        except Exception as exc:  # a diagnosis only
            return f"{partition_name(tp)}: unreadable ({exc!r})"
        acked, gaps, unacked = book["acked"], book["gaps"], book["unacked"]
        return (
            f"{partition_name(tp)}: committed={book['committed']} read={book['read']}"
            f" acked={len(acked)} {offset_runs(acked)}"
            f" gaps={[(g.begin, g.end) for g in gaps[:8]]}{'...' if len(gaps) > 8 else ''}"
            f" unacked={len(unacked)} {unacked[:8]}"
        )

    def _stale_recovery(self, rebalances: int) -> bool:
        """Whether the recovery whose callback runs now is not the current one: it began before
        the latest revocation (a callback of an older generation, run late), or a rebalance
        began since the callback started. Its index would be for partitions no longer ours."""
        began = faust_compat.recovery_started_at(self.app)
        if began is not None and began < self._revoked_mono:
            return True
        return self.app.rebalancing_count != rebalances

    async def _on_recovered(self) -> None:
        """Rebuild the deadline index and the gauges from the table for owned partitions.

        From now on recoveries wait CASECLOCK_RECOVERY_DELAY after a rebalance; the first one
        did not. A worker that owns nothing yet has no recovery to spare by waiting: its
        progress is kept (offsets and rows in RocksDB) if a join cuts it short, the broker's
        initial rebalance delay already gathers workers starting together, and an
        orchestrator's rolling restart waits for this worker to be ready before the next."""
        faust_compat.set_recovery_delay(self.app, self.cfg.recovery_delay)
        rebalances = self.app.rebalancing_count
        if self._stale_recovery(rebalances):
            log.info("caseclock: ignoring the completion of an outdated recovery")
            return
        owned = self.owned_partitions()
        self.store.unfence(owned)
        self.svc.begin_rebuild(owned)
        index = self.svc.index_row
        restored, changed = await self._restore_snapshots(owned)
        if self._stale_recovery(rebalances):
            log.info("caseclock: a rebalance began during the index rebuild; dropped")
            return
        indexed = await self._each_row(self.store.rows(self.svc.scanning), rebalances, index)
        if indexed is None:
            log.info("caseclock: a rebalance began during the index rebuild; dropped")
            return
        self.svc.finish_rebuild()
        self.ready = True
        self.watch.done()
        self.metrics.set_recovery_complete(True)
        self._wake.set()
        log.info(
            "caseclock: recovered partitions %s: %d rows read, %d deadlines from index "
            "snapshots, %d of them read again",
            sorted(owned),
            indexed,
            restored,
            sum(len(keys) for keys in changed.values()),
        )
        if changed:
            self._recounting = asyncio.ensure_future(self._recount(sorted(changed), rebalances))
            self._recounting.add_done_callback(_log_failure)

    async def _restore_snapshots(self, owned: set[int]) -> tuple[int, dict[int, set[bytes]]]:
        """Restore the owned partitions that have a usable index snapshot (the rest are
        rebuilt from their rows): an exact one as it is, one taken while the worker ran
        with the rows changed since read again (`live.index_snapshots`). Returns the
        deadlines restored and, per partition restored that way, the keys read again."""
        offsets = self.store.read_offsets(owned)
        plan = plan_restore(
            self._take_snapshots(),
            owned,
            offsets,
            self.svc.fingerprint,
            written=bool(self.store.writes),
        )
        for p in plan.stale:
            log.info("caseclock: index snapshot of partition %s is stale; rows read", p)
        for p, n in plan.too_far.items():
            log.info(
                "caseclock: %d changelog records of partition %s since its index snapshot: "
                "its rows are read",
                n,
                p,
            )
        exact, behind = plan.exact, plan.behind
        restored = sum(self.svc.restore(snap) for snap in exact)
        changed: dict[int, set[bytes]] = {}
        if behind:
            found = await changed_keys(
                self.cfg,
                self.store.topic,
                {p: since for p, (_, since) in behind.items()},
                within=CHANGED_KEYS_READ_S,
            )
            for p, keys in found.items():
                if keys is None:
                    continue  # not read in time: its rows are read
                restored += self.svc.restore(behind[p][0])
                for key in keys:
                    self.svc.reindex(p, key, self.store.get(p, key))
                changed[p] = keys
        return restored, changed

    async def _recount(self, partitions: list[int], rebalances: int) -> None:
        """Count the gauges of partitions restored from a snapshot taken while the worker ran
        again from their rows, once the worker is ready (`CaseService.begin_recount`)."""
        started, n = time.monotonic(), 0
        for p in partitions:
            async with self._handling:  # between handler calls: every row written
                if self._stale_recovery(rebalances):
                    return
                rows = iter(self.store.rows([p]))
                first = next(rows, None)  # RocksDB's point-in-time view is taken here
                self.svc.begin_recount(p)
            view = itertools.chain([first] if first else [], rows)
            recount = functools.partial(self.svc.recount_row, p)
            counted = await self._each_row(view, rebalances, recount)
            if counted is None:
                return
            n += counted
            self.svc.finish_recount(p)
        log.info(
            "caseclock: gauges of partitions %s counted again from %d rows in %.1f s",
            partitions,
            n,
            time.monotonic() - started,
        )

    async def _each_row(
        self,
        rows: Iterable[tuple[bytes, bytes]],
        rebalances: int,
        each: Callable[[bytes, bytes], int],
    ) -> int | None:
        """Hand every (key, row) to `each` and return the sum of what it returns, yielding
        to the loop every REBUILD_YIELD_EVERY rows (progress for the recovery watchdog);
        None, at once, when a rebalance has made this recovery stale."""
        total = 0
        for i, (key, row) in enumerate(rows, 1):
            total += each(key, row)
            if i % REBUILD_YIELD_EVERY == 0:
                self._rebuilt += REBUILD_YIELD_EVERY
                await asyncio.sleep(0)
                if self._stale_recovery(rebalances):
                    return None
        return total

    async def _save_snapshots(self) -> None:
        """Every CASECLOCK_SNAPSHOT_INTERVAL: save each owned partition's index snapshot,
        taken between handler calls (one partition at a time, so the input and the timer
        wait at most one partition's copy), written by a thread."""
        if not self.ready or self.app.rebalancing or self._stopping or not self.store.persistent:
            return
        snaps = []
        for p in sorted(self.svc.indexes):
            await asyncio.sleep(0)  # the lock is often free: taking it would not yield
            async with self._handling:
                if self._stopping:
                    return
                snaps.append(self.svc.snapshot(p, self.store.offsets.get(p)))
        await self._write_snapshots(snaps, periodic=True)

    async def _write_snapshots(self, snaps: list[IndexSnapshot], *, periodic: bool) -> None:
        """Write snapshot files, one save at a time. A periodic save is written by a thread
        and not at all once the stop has begun (the stop writes exact ones); the stop's in
        the loop, which has nothing left to do. A save that fails is logged: the worker, or
        its stop, goes on."""
        async with self._saving:
            if periodic and self._stopping:
                return
            save = self._snapshot_dir.save
            try:
                n = await asyncio.to_thread(save, snaps) if periodic else save(snaps)
            except OSError as exc:
                log.warning("caseclock: could not save the index snapshots: %s", exc)
                return
        log.info(
            "caseclock: saved the index snapshots of %d partitions%s",
            n,
            " (periodic)" if periodic else "",
        )

    def _take_snapshots(self) -> dict[int, IndexSnapshot]:
        """The index snapshots of the last clean stop, at the first rebuild only (they are
        read once: `live.index_snapshots`); none for the memory store."""
        if self._snapshots_taken or not self.store.persistent:
            return {}
        self._snapshots_taken = True
        return self._snapshot_dir.take()

    async def _on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        """Save each owned partition's index snapshot, once the streams have stopped: the
        timer is stopped first (not ready), then under the handling lock every row is
        written and its changelog acknowledged, so the snapshot and the stored offsets agree.
        Skipped when the index is not whole (stopping during a rebalance or a recovery) or
        the broker does not acknowledge in time."""
        ready, self.ready = self.ready and not self.app.rebalancing, False
        self._stopping = True
        if not ready or not self.store.persistent:
            return
        async with self._handling:
            try:
                settled = await self.store.settle(within=SNAPSHOT_SETTLE_S)
            except Exception as exc:
                log.warning("caseclock: no index snapshot: the last rows were not written: %s", exc)
                return
            if not settled:
                log.warning(
                    "caseclock: no index snapshot: changelog rows were not acknowledged "
                    "within %.0f s; the next start reads every row",
                    SNAPSHOT_SETTLE_S,
                )
                return
            offsets = self.store.offsets
            snaps = [self.svc.snapshot(p, offsets.get(p)) for p in sorted(self.svc.indexes)]
            await self._write_snapshots(snaps, periodic=False)  # after a periodic one, if any

    # --- the input -----------------------------------------------------------------------------

    async def _process(self, stream: Any) -> None:
        """The agent subscribes the input topics (Faust's assignor and recovery go by it); their
        messages reach `_take` through the consumer's drain (`live.faust_compat.consumer`), not
        this stream. Whatever the stream does deliver (a consumer without the drain) takes the
        same way."""
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            await self._take([event.message for event in events])

    async def _take(self, messages: Sequence[Any]) -> None:
        """Handle one fetch's input messages; they are acknowledged when this returns, so it
        returns only once every row they changed is durable (the commit order,
        docs/architecture.md). While the store or the broker fails it does not return: input
        is not acknowledged, /readyz says why, and the watchdog restarts the worker after
        CASECLOCK_COMMIT_STALL_TIMEOUT."""
        for attempt in itertools.count():
            try:
                await self._on_batch(messages)
            except NotOwned as exc:  # revoked meanwhile: the new owner reads them again
                log.info("caseclock: %d messages were not applied: %s", len(messages), exc)
                return
            except OutputFailure as exc:  # dead letters refused: the line stops
                log.warning("caseclock: %s; the batch is tried again", exc)
                await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
                continue
            except Exception:
                # The handlers isolate cases; an error that still escapes must not lose the
                # batch. Applying a message again is harmless (the fold is idempotent), so
                # the batch is retried one message at a time, and a message that fails
                # alone is a dead letter.
                log.exception("caseclock: failed on a batch of %d messages", len(messages))
                await self._one_by_one(messages)
            break
        await self._until_durable(self.store.seals)
        failpoints.hit("input-before-ack")

    async def _until_durable(self, seal: int) -> None:
        """Wait until every row handed over up to flush number `seal` is acknowledged and
        written, sending again what the broker did not take."""
        while not await self.store.wait_durable(seal, 1.0) or self.svc.output_failure:
            if self.store.flush_due:  # rows sent again, or written again to a freed disk
                async with self._handling:
                    await self.store.flush()
            elif self.store.durable(seal):  # alerts refused: the timer's retries clear it
                await asyncio.sleep(1.0)

    async def _one_by_one(self, messages: Sequence[Any]) -> None:
        for msg in messages:
            for attempt in itertools.count():
                try:
                    await self._alone(msg)
                except NotOwned:  # revoked meanwhile: the new owner reads it again
                    pass
                except OutputFailure as exc:
                    log.warning("caseclock: %s; the message is tried again", exc)
                    await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
                    continue
                break

    async def _alone(self, msg: Any) -> None:
        """Apply one message; if it fails alone, dead-letter it (`processing-failed`)."""
        try:
            await self._on_batch([msg])
        except (NotOwned, OutputFailure):
            raise
        except Exception as exc:
            log.exception(
                "caseclock: %s[%s]@%s failed alone: dead-lettered",
                msg.topic,
                msg.partition,
                msg.offset,
            )
            value = msg.value
            raw = value if isinstance(value, bytes) else b""
            origin = Origin(msg.topic, msg.partition, msg.offset, msg.key)
            async with self._handling:
                await self.svc.dead_letter_failed(origin, raw, exc)

    async def _on_batch(self, messages: Sequence[Any]) -> None:
        inputs: list[Inbound] = []
        for msg in messages:
            value = msg.value
            origin = Origin(msg.topic, msg.partition, msg.offset, msg.key)
            inputs.append(Inbound(origin, value if isinstance(value, bytes) else None))
        async with self._handling:
            await self.svc.on_inputs(inputs)
            await self.store.flush()  # sealed: `_take` waits until it is durable
            read = self._read  # handled (the commit watchdog's "read")
            for msg in messages:
                tp = (msg.topic, msg.partition)
                if msg.offset > read.get(tp, -1):
                    read[tp] = msg.offset

    # --- the timer -----------------------------------------------------------------------------

    async def _timer(self) -> None:
        """Sleep until the next deadline of the owned partitions (or until an earlier one is
        scheduled), then evaluate every due case, in batches, and emit what is due."""
        idle_s = self.cfg.tick_interval
        gauges_at = 0
        while True:
            if self.app.rebalancing or not self.ready:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.1)
                continue
            now = wall_us()
            owned = self.owned_partitions()
            served = await self._served_partitions(owned, now)
            try:
                await self._fire(now, served)
            except Exception:  # the due cases were re-armed: they are evaluated again
                log.exception("caseclock: could not evaluate due cases")
            now = wall_us()
            if now >= gauges_at:  # at most once per interval, however busy the timer is
                gauges_at = now + round(idle_s * US)
                self.metrics.set_oldest_overdue_seconds(self.svc.timer_lag(now, owned) / US)
                self.metrics.set_timer_index_size(sum(len(i) for i in self.svc.indexes.values()))
            nxt = self.svc.next_deadline(served)
            self._wake.clear()
            self.svc.timer_target = nxt
            wait = idle_s if nxt is None else min(idle_s, max(0.0, (nxt - now) / US))
            if self.catch_up.waiting:  # look again soon: the input backlog is being read
                wait = min(wait, 0.05)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await asyncio.sleep(0)  # a backlog: yield to the input between runs
            self.svc.timer_target = None

    async def _fire(self, now: int, served: set[int]) -> None:
        """Evaluate what is due in the served partitions, FIRE_CHUNK cases at a time, each
        chunk under the handling lock (no input is applied to a case between its
        evaluation and the write that records its alerts)."""
        due = self.svc.due(now, served)
        chunk: list[tuple[int, list[tuple[str, int]]]] = []
        size = 0
        for p, entries in due:
            for i in range(0, len(entries), FIRE_CHUNK):
                part = entries[i : i + FIRE_CHUNK]
                chunk.append((p, part))
                size += len(part)
                if size >= FIRE_CHUNK:
                    await self._fire_chunk(chunk)
                    chunk, size = [], 0
        if chunk:
            await self._fire_chunk(chunk)
        if self.store.flush_due:  # rows the broker did not take or the disk refused: again
            async with self._handling:
                await self.store.flush()

    async def _fire_chunk(self, chunk: list[tuple[int, list[tuple[str, int]]]]) -> None:
        async with self._handling:
            if self._stopping or self.app.rebalancing:  # they stay re-armed
                return
            fenced = self.store.fenced  # revoked while the run went on: not ours to fire
            chunk = [(p, entries) for p, entries in chunk if p not in fenced]
            if not chunk:
                return
            cut_off = await self.svc.on_due(chunk)
            await self.store.flush()
        if cut_off:
            log.warning(
                "caseclock: alerts took %.0f s or more to be acknowledged: the broker was "
                "away; partitions %s are served again once their input is read, and catch up",
                self.svc.retry_us / US,
                sorted(self.catch_up.reset()),
            )

    async def _served_partitions(self, owned: set[int], now: int) -> set[int]:
        """The owned partitions whose timers may run (`live.catch_up`): a newly owned one
        waits until its input is read up to its end offsets as of the takeover, at most
        CATCH_UP_HOLD_S."""
        catch_up = self.catch_up
        new = catch_up.new(owned)
        if new:
            try:
                ends = await self._input_backlog(new, catch_up.positions_known(now))
            except NotSeekedYet:  # the streams are not seeked yet: the next round
                catch_up.not_seeked(now)
                return owned & catch_up.served
            except Exception as exc:  # the broker will answer the next round
                log.warning("caseclock: could not read input end offsets: %s", exc)
                return owned & catch_up.served
            catch_up.begin(new, ends, now)
        served, late = catch_up.step(owned, self._read, now)
        for p, behind in late.items():
            log.warning(
                "caseclock: partition %s served before its input caught up (%d messages "
                "behind after %.0f s)",
                p,
                behind,
                CATCH_UP_HOLD_S,
            )
        return served

    async def _input_backlog(
        self, partitions: set[int], positions_known: bool
    ) -> dict[int, dict[tuple[str, int], int]]:
        """Asks the broker for the input topics' end offsets and the consumer for its
        positions, each call bounded (aiokafka's position() waits for one with no bound of
        its own), and returns `catch_up.backlog` of them."""
        from faust.types import TP

        consumer = self.app.consumer
        tps = [TP(t, p) for t in self.cfg.input_topics for p in partitions]
        highwaters = await asyncio.wait_for(consumer.highwaters(*tps), 10.0)
        ends: dict[tuple[str, int], int] = {}
        positions: dict[tuple[str, int], int | None] = {}
        for tp in tps:
            key = (tp.topic, tp.partition)
            ends[key] = int(highwaters.get(tp, 0) or 0)
            try:
                position = await asyncio.wait_for(consumer.position(tp), 10.0)
            except Exception:
                position = None
            positions[key] = None if position is None else int(position)
            if position is None and not positions_known:
                log.warning("caseclock: %s has no position; served without waiting", key)
        return backlog(ends, positions, self._read, positions_known=positions_known)

    async def _log_summary(self) -> None:
        now = wall_us()
        owned = sorted(self.svc.indexes) if self.ready else []
        extra = (
            f"partitions {owned}, {sum(len(i) for i in self.svc.indexes.values())} timers, "
            f"timer lag {self.svc.timer_lag(now, owned) / US:.1f} s"
            if self.ready
            else f"recovering for {self.watch.elapsed(now) or 0.0:.0f} s"
        )
        log.info("caseclock: last %.0f s: %s", SUMMARY_EVERY_S, self.svc.summary.line(extra))


def _log_failure(task: asyncio.Future[None]) -> None:
    """A background recount that failed (its store closed by a stop, say): said, not raised;
    the gauges keep the snapshot's counts until the next rebuild."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("caseclock: the gauges were not counted again: %r", task.exception())
