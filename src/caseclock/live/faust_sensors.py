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
    """PrometheusMonitor minus the per-event and per-key counters."""

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
