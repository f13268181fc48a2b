"""Faust's consumer, subclassed: its commit rule replaced (`CommitSafeConsumer`, the rule itself
is `live.commits`) and the input topics' messages handed to the handlers a fetch at a time.

Faust delivers every fetched message on its own: its drain loop (`Consumer._drain_messages`)
awaits, per message, the first of two tasks it creates (the topic conductor's callback and the
flow's suspension), the conductor takes a lock, decodes, wraps the message in an Event and
queues it, and the agent's stream takes it out again, buffers it for `take_events` and
acknowledges it. In py-spy on the ingest benchmark (rocksdb://) that machinery held about
half of the worker's main thread against a third for the handlers themselves.

`BatchingConsumer` keeps Faust's consumer (its aiokafka consumer thread, fetching, offsets,
commits, rebalances, recovery) and replaces only that per-message delivery for the topics a
sink was registered for: each `getmany` round's messages of those topics go to the sink in
one call, in fetch order, then are acknowledged through Faust's `ack`, so its commit rule
(`live.commits`) and its wait for in-flight messages on a rebalance see them as before.

The changelog of a table being recovered is replayed a fetch at a time too. Faust's path costs
per record two tasks in the drain loop, the conductor's decode and Event, a queue, and a task
(`wait_for`) and a scan of every partition's remaining count in its recovery loop
(`Recovery._slurp_changelogs`): a py-spy profile of a recovery with the data directory wiped
(bench/results/live-recovery-profile-2026-12-02.txt) had the recovery loop at 12 % of the
samples, the drain loop's per-record tasks and the conductor at about 17 %, and the event
loop's own handling of all those tasks at 15 % more; the worker replayed about 12,700 records
a second. `_replay` does what that loop does for an
active partition, a partition's records at a time: skip what was applied already, buffer the
rest into Faust's recovery buffer, apply a full buffer to the table
(`Table.apply_changelog_batch`, one RocksDB write batch and the stored offset), advance the
recovery's offsets, and signal the end of the recovery when no active partition has records
left, as Faust does. Anything else (a standby partition, a table with its own changelog
callback, a changelog read outside a recovery) still takes Faust's path.

A round gathered while the flow was being stopped (a rebalance began) is dropped before it is
tracked: its partitions may be someone else's by now, and the seek back to the committed
offsets reads it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from caseclock.live.commits import committable, lowest_in_flight
from caseclock.live.faust_compat.sensors import LeanPrometheusMonitor

log = logging.getLogger("caseclock")

Sink = Callable[[Sequence[Any]], Awaitable[None]]
"""Takes one fetch's messages of the sink's topics (Faust `Message`s, raw key and value)."""


class _ChangelogEvent:
    """What Faust's table stores read of a changelog event: its key, value and message."""

    __slots__ = ("key", "message", "value")

    def __init__(self, message: Any) -> None:
        self.message = message
        self.key = message.key  # raw bytes, as the table's raw schema decodes them
        self.value = message.value


class CommitSafeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with `committable` as its commit rule."""

    _in_flight: dict[Any, int] | None = None
    """The lowest in-flight offset per partition, found once per commit (one pass over the
    messages in flight rather than one per partition)."""

    def _filter_committable_offsets(self, tps: Any) -> Any:
        self._in_flight = lowest_in_flight(list(self._unacked_messages), self._committed_offset)
        try:
            return super()._filter_committable_offsets(tps)
        finally:
            self._in_flight = None

    def _new_offset(self, tp: Any) -> int | None:
        acked: list[int] = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        if gaps:  # as Faust: never-delivered offsets below the highest acknowledged are done
            top = max(acked)
            found = sorted(gaps.overlap(0, top), key=lambda iv: iv.begin)
            if found:
                for iv in found:
                    acked.extend(range(iv.begin, iv.end))
                gaps.chop(0, max(found[-1].end - 1, top + 1))
        in_flight = getattr(self, "_in_flight", None)
        if in_flight is None:
            in_flight = lowest_in_flight(list(self._unacked_messages), self._committed_offset)
        repeats = len(acked) - len(set(acked))
        if repeats:
            log.info(
                "caseclock: %d offsets of %s[%s] were acknowledged twice (a gap Faust recorded "
                "over offsets read again after a seek, robinhood/faust#559); counted once",
                repeats,
                tp.topic,
                tp.partition,
            )
        offset, left = committable(acked, self._committed_offset[tp], in_flight.get(tp))
        acked[:] = left
        if offset is not None:
            index = self._acked_index[tp]
            index.difference_update([o for o in index if o < offset])
        return offset


class BatchingConsumer(CommitSafeConsumer):
    """Faust's consumer, delivering the sink's topics a fetch at a time (module docstring)."""

    replayed = 0
    """Changelog records replayed by `_replay` in the current recovery."""

    def _sink(self) -> tuple[Sink, frozenset[str]] | None:
        transport = cast(CaseClockTransport, self.transport)
        if transport.sink is None:
            return None
        return transport.sink, transport.sink_topics

    async def _drain_messages(self, fetcher: Any) -> None:  # a Faust service's loop
        routed = self._sink()
        if routed is None:
            return await super()._drain_messages(fetcher)
        sink, topics = routed
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = await self._fetch_round(topics)
                if batch and self.flow_active:
                    await self._deliver(sink, batch)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("caseclock: the broker stopped the consumer while shutting down")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _fetch_round(self, topics: frozenset[str]) -> list[Any]:
        """One fetch: the sink's messages gathered, the others delivered Faust's way.

        Faust's `getmany`, read a partition at a time rather than a message at a time: the
        same checks (flow stopped or generation changed: stop; a partition not active: skip;
        flow stopped before the fetch: seek back), the end offset noted once per partition,
        and Faust's read-offset and gap bookkeeping per message."""
        batch: list[Any] = []
        await self.sleep(0)  # as Faust: a fetch may return at once, round after round
        if self.should_stop:
            return batch
        records, active = await self._wait_next_records(1.0)
        generation = self.app.consumer_generation_id
        if not records or self.should_stop:
            return batch
        if not self.flow_active:
            try:
                await self.perform_seek()
            except Exception as exc:  # as Faust: the next fetch tries again
                log.warning("caseclock: seek back while the flow is stopped failed: %r", exc)
            return batch
        callback = self.callback
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        to_message = self._to_message
        monitor = self.app.monitor
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]
        replayed = False
        for tp, tp_records in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation:
                break
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            monitor.track_tp_end_offset(tp, self.highwater(tp))
            sink = tp.topic in topics
            if not sink and self._replayable(recovery, tp):
                self._replay(recovery, tp, tp_records)
                replayed = True
                continue
            for record in tp_records:
                message = to_message(tp, record)
                offset = message.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    continue  # read already (a fetch from before a seek back): Faust drops it
                if last and offset - last > 1 and acks_enabled_for(tp.topic):
                    await self._add_gap(tp, last + 1, offset)
                if sink:
                    batch.append(message)
                else:
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                read_offset[tp] = offset
        if replayed and recovery.in_recovery and not recovery.need_recovery():
            recovery.flush_buffers()  # Faust's end of a recovery (`_slurp_changelogs`)
            recovery._set_recovery_ended()
            recovery.signal_recovery_end.set()
            log.info("caseclock: changelog replayed a fetch at a time: %d records", self.replayed)
            self.replayed = 0
        return batch

    @staticmethod
    def _replayable(recovery: Any, tp: Any) -> bool:
        """Whether `tp` is the changelog of a table this worker is recovering as active."""
        if not recovery.in_recovery or tp not in recovery.active_tps:
            return False
        table = recovery.tp_to_table.get(tp)
        return table is not None and table._on_changelog_event is None

    def _replay(self, recovery: Any, tp: Any, tp_records: Sequence[Any]) -> None:
        """Buffer a partition's changelog records into the recovery, as Faust's recovery loop
        does one by one; a full buffer is applied to the table."""
        table = recovery.tp_to_table[tp]
        offsets = recovery.active_offsets
        size = recovery.buffer_sizes.get(tp)
        if size is None:
            size = recovery.buffer_sizes[tp] = table.recovery_buffer_size
        buffer = recovery.buffers[table]
        read_offset = self._read_offset
        to_message = self._to_message
        seen = offsets.get(tp)
        self.replayed += len(tp_records)
        for record in tp_records:
            message = to_message(tp, record)
            offset = message.offset
            if seen is None or offset > seen:
                seen = offset
                buffer.append(_ChangelogEvent(message))
                if len(buffer) >= size:
                    table.apply_changelog_batch(buffer)
                    buffer.clear()
                    recovery._last_flush_at = monotonic()
            read_offset[tp] = offset
        if seen is not None:
            offsets[tp] = seen
        recovery._active_events_received_at[tp] = monotonic()

    async def _deliver(self, sink: Sink, batch: list[Any]) -> None:
        """Hand `batch` to the sink, then acknowledge it. Tracked first, as Faust's conductor
        does, so a commit never passes a message the sink still holds. The monitor counts the
        batch a partition at a time when it can (`LeanPrometheusMonitor`), else per message."""
        monitor = self.app.monitor
        lean = monitor if isinstance(monitor, LeanPrometheusMonitor) else None
        if lean is not None and list(self.app.sensors) != [lean]:
            lean = None  # another sensor wants every message
        if lean is None:
            for message in batch:
                self.track_message(message)
        else:
            unacked = self._unacked_messages
            for message in batch:
                unacked.add(message)
        if monitor is not None:
            last: dict[Any, list[int]] = {}
            for message in batch:
                seen = last.get(message.tp)
                if seen is None:
                    last[message.tp] = [1, message.offset]
                else:
                    seen[0] += 1
                    seen[1] = message.offset
            now = monotonic()
            for tp, (n, offset) in last.items():
                monitor.stream_inbound_time[tp] = now  # what Faust's idle-stream check reads
                if lean is not None:
                    lean.on_messages_in(tp, n, offset)
        await sink(batch)
        ack = self.ack
        if lean is None:
            message_out = self.app.sensors.on_message_out  # as the stream's ack does
            for message in batch:
                ack(message)
                message_out(message.tp, message.offset, message)
        else:
            for message in batch:
                ack(message)
            lean.on_messages_out(len(batch))
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()


class CaseClockTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with caseclock's consumer: commits by `live.commits`, and
    the topics of a registered sink delivered a fetch at a time."""

    Consumer = BatchingConsumer
    sink: Sink | None = None
    sink_topics: frozenset[str] = frozenset()

    def deliver_to(self, sink: Sink, topics: Sequence[str]) -> None:
        """Send every fetch's messages of `topics` to `sink` (before the worker starts)."""
        self.sink = sink
        self.sink_topics = frozenset(topics)
