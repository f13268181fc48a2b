"""The consumer's batched delivery of the input topics (caseclock.live.faust_compat.consumer):
which topics take it, and that a fetch is tracked before the sink sees it and acknowledged
after. That the worker consumes, commits and rebalances on it is the broker tier
(tests/integration)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from caseclock.core.policy import load_policy
from caseclock.live.config import Config
from caseclock.live.faust_app import CaseClock
from caseclock.live.faust_compat.consumer import BatchingConsumer, CaseClockTransport
from caseclock.live.faust_compat.sensors import LeanPrometheusMonitor
from caseclock.live.metrics import FAUST_SENSOR_PREFIX


def test_the_worker_hands_its_input_topics_to_the_handlers_a_fetch_at_a_time() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    transport = cc.app.transport
    assert isinstance(transport, CaseClockTransport)
    assert transport.Consumer is BatchingConsumer
    assert transport.sink_topics == frozenset(cc.cfg.input_topics)
    assert transport.sink == cc._take


async def test_a_fetch_is_tracked_before_the_sink_and_acknowledged_after() -> None:
    seen: list[tuple[str, Any]] = []
    messages = [SimpleNamespace(tp=("in", p), offset=o) for p, o in [(0, 5), (1, 9), (0, 6)]]

    async def sink(batch: Any) -> None:
        seen.append(("sink", [m.offset for m in batch]))

    monitor = SimpleNamespace(stream_inbound_time={})
    consumer: Any = SimpleNamespace(
        track_message=lambda m: seen.append(("track", m.offset)),
        ack=lambda m: seen.append(("ack", m.offset)),
        app=SimpleNamespace(
            monitor=monitor,
            sensors=SimpleNamespace(on_message_out=lambda tp, o, m: seen.append(("out", o))),
        ),
        _commit_every=None,
    )
    await BatchingConsumer._deliver(consumer, sink, messages)
    assert seen == [
        ("track", 5), ("track", 9), ("track", 6),
        ("sink", [5, 9, 6]),
        ("ack", 5), ("out", 5), ("ack", 9), ("out", 9), ("ack", 6), ("out", 6),
    ]  # fmt: skip
    assert set(monitor.stream_inbound_time) == {("in", 0), ("in", 1)}


@dataclass(frozen=True)
class Msg:
    tp: TP
    offset: int


async def test_the_lean_monitor_counts_a_fetch_a_partition_at_a_time() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    monitor = cc.app.monitor
    assert isinstance(monitor, LeanPrometheusMonitor)
    tps = [TP("in", 0), TP("in", 1)]
    messages = [Msg(tps[p], o) for p, o in [(0, 5), (1, 9), (0, 6)]]
    unacked: set[Any] = set()
    active_in_sink: list[int] = []

    async def sink(batch: Any) -> None:
        active_in_sink.append(monitor.messages_active)
        assert set(batch) <= unacked  # tracked: a commit cannot pass them

    consumer: Any = SimpleNamespace(
        _unacked_messages=unacked,
        ack=unacked.discard,
        app=SimpleNamespace(monitor=monitor, sensors=[monitor]),
        _commit_every=None,
    )
    await BatchingConsumer._deliver(consumer, sink, messages)
    assert active_in_sink == [3] and monitor.messages_active == 0 and not unacked
    assert monitor.messages_received_by_topic["in"] == 3
    assert monitor.tp_read_offsets == {tps[0]: 6, tps[1]: 9}
    sample = cc.registry.get_sample_value
    per_topic = f"{FAUST_SENSOR_PREFIX}_messages_received_per_topic_total"
    assert sample(per_topic, {"topic": "in"}) == 3.0  # the dashboard's input rate
    assert sample(f"{FAUST_SENSOR_PREFIX}_active_messages") == 0.0


def test_a_recovered_changelog_is_buffered_and_applied_a_full_buffer_at_a_time() -> None:
    """`_replay` does what Faust's recovery loop does per record: records at or below the
    partition's applied offset are skipped, the rest buffered, a full buffer applied to the
    table and emptied, and the recovery's offset advanced to the last record."""
    tp = TP("app-cases-changelog", 3)
    applied: list[list[tuple[bytes, bytes | None, int]]] = []

    class Table:
        recovery_buffer_size = 3
        _on_changelog_event = None

        def apply_changelog_batch(self, batch: list[Any]) -> None:
            applied.append([(e.key, e.value, e.message.offset) for e in batch])

    table = Table()
    recovery: Any = SimpleNamespace(
        in_recovery=True,
        active_tps={tp},
        tp_to_table={tp: table},
        active_offsets={tp: 11},  # applied up to 11 (a recovery cut short, resumed)
        buffer_sizes={},
        buffers={table: []},
        _active_events_received_at={},
        _last_flush_at=None,
    )
    consumer: Any = SimpleNamespace(
        _read_offset={},
        _to_message=lambda tp, r: SimpleNamespace(tp=tp, offset=r[0], key=r[1], value=r[2]),
        replayed=0,
    )
    assert BatchingConsumer._replayable(recovery, tp)
    assert not BatchingConsumer._replayable(recovery, TP("app-cases-changelog", 4))
    records = [(o, b"k%d" % o, None if o == 14 else b"v%d" % o) for o in range(10, 17)]
    BatchingConsumer._replay(consumer, recovery, tp, records)
    assert applied == [[(b"k12", b"v12", 12), (b"k13", b"v13", 13), (b"k14", None, 14)]]
    assert [e.message.offset for e in recovery.buffers[table]] == [15, 16]  # the next flush
    assert recovery.active_offsets[tp] == 16 and consumer._read_offset[tp] == 16
    assert recovery.buffer_sizes[tp] == 3 and tp in recovery._active_events_received_at
    recovery.in_recovery = False
    assert not BatchingConsumer._replayable(recovery, tp)  # outside a recovery: Faust's path
