"""Faust's Prometheus sensor, lean: the per-event and per-key hooks count nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.sensors.prometheus import PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from caseclock.core.policy import load_policy
from caseclock.live.config import Config
from caseclock.live.faust_app import CaseClock
from caseclock.live.faust_compat.sensors import LeanPrometheusMonitor
from caseclock.live.metrics import FAUST_SENSOR_PREFIX


def _sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(f"{FAUST_SENSOR_PREFIX}_{name}") or 0.0


def test_the_worker_counts_messages_but_not_each_event_or_key() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    monitor = cc.app.monitor
    assert isinstance(monitor, LeanPrometheusMonitor)
    tp = TP("cases", 0)
    stream = SimpleNamespace(shortlabel="Stream: cases", task_owner=None)
    table = SimpleNamespace(name="cases")
    message: Any = SimpleNamespace(tp=tp, offset=7)
    monitor.on_message_in(tp, 7, message)
    monitor.on_stream_event_in(tp, 7, stream, None)
    monitor.on_stream_event_out(tp, 7, stream, None, None)
    monitor.on_table_get(table, b"k")
    monitor.on_table_set(table, b"k", b"v")
    monitor.on_table_del(table, b"k")
    assert _sample(cc.registry, "messages_received_total") == 1.0  # the dashboard reads these
    assert _sample(cc.registry, "total_events_total") == 0.0
    assert tp in monitor.stream_inbound_time  # what Faust's idle-stream check reads
    assert monitor.events_total == 0 and not monitor.tables


def test_faust_event_metrics_can_be_turned_back_on() -> None:
    cc = CaseClock(Config.from_env({"CASECLOCK_FAUST_EVENT_METRICS": "true"}), load_policy())
    assert type(cc.app.monitor) is PrometheusMonitor
