"""Faust's Prometheus sensor without its per-event and per-key bookkeeping.

Faust calls its monitor for every stream event (in and out) and every table read and write.
In py-spy on the ingest benchmark (rocksdb://) those hooks took about 5 % of the worker's
samples; turned off, four alternating runs (bench/results/live-sensors-2026-12-01.json) gave
2,397-2,445 events per worker CPU-second against 1,863-2,076 with them on rocksdb://, and
no difference beyond the noise on memory://. None of what they count is read by the
dashboard, the alert rules or the runbook: caseclock counts events, alerts and table rows in
its own metrics (`live/metrics.py`), batched. What the dashboard does read stays: messages
received per topic and the offsets (`on_message_in`), commits, sends, rebalances, errors.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors.prometheus import PrometheusMonitor, setup_prometheus_sensors
from prometheus_client import CollectorRegistry


class LeanPrometheusMonitor(PrometheusMonitor):
    """PrometheusMonitor minus the per-event and per-key counters, and with the per-message
    ones kept cheap: each partition's labelled series are looked up once, not on every
    message (`labels()` was 14 % of the worker's samples once the input came in batches)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._series: dict[Any, tuple[Any, Any, Any]] = {}

    def _series_of(self, tp: Any) -> tuple[Any, Any, Any]:
        """The partition's series: messages received on its topic, its read offset and its
        end offset."""
        series = self._series.get(tp)
        if series is None:
            m = self._metrics
            series = self._series[tp] = (
                m.messages_received_per_topics.labels(topic=tp.topic),
                m.messages_received_per_topics_partition.labels(
                    topic=tp.topic, partition=tp.partition
                ),
                m.topic_partition_end_offset.labels(topic=tp.topic, partition=tp.partition),
            )
        return series

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        # Faust's Monitor.on_message_in and PrometheusMonitor's, with the series looked up once.
        self.messages_received_total += 1
        self.messages_active += 1
        self.messages_received_by_topic[tp.topic] += 1
        self.tp_read_offsets[tp] = offset
        message.time_in = self.time()
        self._metrics.messages_received.inc()
        self._metrics.active_messages.inc()
        received, read_offset, _ = self._series_of(tp)
        received.inc()
        read_offset.set(offset)

    def on_messages_in(self, tp: Any, n: int, last_offset: int) -> None:
        """`on_message_in` for `n` messages of a partition at once, up to `last_offset`
        (`live.faust_compat.consumer` delivers a fetch at a time). Messages get no `time_in`:
        nothing here reads their time in the worker."""
        self.messages_received_total += n
        self.messages_active += n
        self.messages_received_by_topic[tp.topic] += n
        self.tp_read_offsets[tp] = last_offset
        self._metrics.messages_received.inc(n)
        self._metrics.active_messages.inc(n)
        received, read_offset, _ = self._series_of(tp)
        received.inc(n)
        read_offset.set(last_offset)

    def on_messages_out(self, n: int) -> None:
        """`on_message_out` for `n` messages at once."""
        self.messages_active -= n
        self._metrics.active_messages.dec(n)

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        self.tp_end_offsets[tp] = offset
        self._series_of(tp)[2].set(offset)

    def _clear_partition_related_metrics(self) -> None:
        super()._clear_partition_related_metrics()
        self._series.clear()  # those series are gone from the registry: look them up again

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        # Kept: the one thing Faust itself reads back (its "stream idle" diagnostics).
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None


def setup_lean_prometheus_sensors(app: Any, registry: CollectorRegistry, name_prefix: str) -> None:
    """Faust's Prometheus sensors (its metrics and the /metrics page over `registry`), with
    the lean monitor in place of Faust's own, over the same metrics."""
    setup_prometheus_sensors(app, registry=registry, name_prefix=name_prefix)
    app.monitor = LeanPrometheusMonitor(metrics=app.monitor._metrics)
