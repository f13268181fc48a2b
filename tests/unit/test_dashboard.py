"""The Grafana dashboard and provisioning files are well-formed and query only real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from caseclock.live.metrics import FAUST_SENSOR_PREFIX, Metrics
from tests.dashboard_queries import (
    iter_panels,
    load_dashboard,
    metric_names,
    panel_queries,
    recorded_names,
    rule_exprs,
    substitute_grafana_variables,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "caseclock.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "caseclock.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "caseclock.rules.yml"

# Faust's own metrics, as exported by faust.sensors.prometheus.setup_prometheus_sensors(app,
# registry=..., name_prefix=FAUST_SENSOR_PREFIX). Source: faust-streaming 0.15.3,
# faust/sensors/prometheus.py, FaustMetrics.create (every name there is f"{prefix}_<suffix>").
# family suffix -> metric type; counters are scraped with "_total", histograms as
# "_bucket"/"_count"/"_sum".
FAUST_FAMILIES: dict[str, str] = {
    "messages_received": "counter",
    "active_messages": "gauge",
    "messages_received_per_topic": "counter",
    "messages_received_per_topics_partition": "gauge",
    "events_runtime_ms": "histogram",
    "total_events": "counter",
    "total_active_events": "gauge",
    "total_events_per_stream": "counter",
    "table_operations": "counter",
    "topic_messages_sent": "counter",
    "total_sent_messages": "counter",
    "producer_send_latency": "histogram",
    "total_error_messages_sent": "counter",
    "producer_error_send_latency": "histogram",
    "assignment_operations": "counter",
    "assign_latency": "histogram",
    "total_rebalances": "gauge",
    "total_rebalances_recovering": "gauge",
    "rebalance_done_consumer_latency": "histogram",
    "rebalance_done_latency": "histogram",
    "metrics_by_name": "gauge",
    "http_status_codes": "counter",
    "http_latency": "histogram",
    "topic_partition_end_offset": "gauge",
    "topic_partition_offset_commited": "gauge",  # sic: Faust's spelling
    "consumer_commit_latency": "histogram",
}
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}
FAUST_NAMES = frozenset(
    f"{FAUST_SENSOR_PREFIX}_{family}{suffix}"
    for family, kind in FAUST_FAMILIES.items()
    for suffix in _SUFFIXES[kind]
)
# Series Prometheus itself generates for every target.
PROMETHEUS_NAMES = frozenset({"up"})


def caseclock_names() -> set[str]:
    """Sample names caseclock exposes, with every metric observed at least once."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.set_partition_counts(0, {("1", "support-plus"): 1}, {("ack", "1"): 1})
    metrics.observe_time_to_acknowledge("1", 10)
    metrics.observe_time_to_open("1", 10)
    metrics.alert_emitted("ack-due", "breach", "1", lateness_seconds=1.0, catch_up=True)
    with metrics.time_event_processing():
        pass
    text = generate_latest(registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


KNOWN = frozenset(caseclock_names()) | FAUST_NAMES | PROMETHEUS_NAMES


@pytest.fixture(scope="module")
def dashboard() -> dict[str, object]:
    return load_dashboard(DASHBOARD)


def test_dashboard_json(dashboard: dict[str, object]) -> None:
    assert dashboard["uid"] == "caseclock"
    assert isinstance(dashboard["schemaVersion"], int)
    assert 36 <= dashboard["schemaVersion"] <= 41
    json.dumps(dashboard)  # round-trips


def test_every_panel_has_prometheus_datasource_and_query(dashboard: dict[str, object]) -> None:
    panels = list(iter_panels(dashboard["panels"]))  # type: ignore[arg-type]
    data_panels = [p for p in panels if p["type"] != "row"]
    assert len(data_panels) >= 20
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in data_panels:
        title = panel["title"]
        assert panel["type"] in {"timeseries", "stat"}, title
        assert panel["datasource"]["uid"] == "prometheus", title
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus", title
            assert target["expr"].strip(), title
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, title


def test_required_panels_present() -> None:
    titles = " | ".join(title.lower() for title, _ in panel_queries(DASHBOARD))
    for needle in (
        "breaches",
        "open cases",
        "at risk",
        "attainment",
        "lateness",
        "dead letters",
        "events consumed",
        "consumer lag",
        "rebalances",
        "timer index",
        "partitions owned",
    ):
        assert needle in titles, needle


def test_dashboard_queries_use_known_metrics_only() -> None:
    """Raw metrics only: the dashboard must also work on a Prometheus without our rules."""
    queries = panel_queries(DASHBOARD)
    assert queries
    for title, expr in queries:
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= KNOWN, (title, names - KNOWN)


def test_rules_use_known_metrics_only() -> None:
    known = KNOWN | recorded_names(RULES)
    for name, expr in rule_exprs(RULES):
        names = metric_names(expr)
        assert names, (name, expr)
        assert names <= known, (name, names - known)


def test_runnable_queries_have_no_grafana_variables() -> None:
    raw = panel_queries(DASHBOARD)
    runnable = panel_queries(DASHBOARD, runnable=True)
    assert [t for t, _ in raw] == [t for t, _ in runnable]
    assert any("$__rate_interval" in e for _, e in raw)
    for _, expr in runnable:
        assert "$" not in expr
    with pytest.raises(ValueError):
        substitute_grafana_variables("rate(x[$job])")


def test_attainment_panels_work_for_any_policy() -> None:
    """Attainment comes from the decided-obligations counter, not from histogram buckets at
    hard-coded window values, so plans with other windows (the demo policy) are not blind."""
    queries = panel_queries(DASHBOARD)
    assert not [e for _, e in queries if re.search(r'le=~?"', e)]
    attainment = [e for t, e in queries if "attainment" in t.lower()]
    assert len(attainment) == 2
    assert all('caseclock_acknowledgements_total{outcome="in_time"}' in e for e in attainment)


def test_metric_name_scanner() -> None:
    expr = (
        'sum by (topic) (max by (topic, partition) (a_end{x="y"}) - on (topic, partition) '
        "b_committed offset 5m) / ignoring(le) rate(c_total[$__rate_interval]) > bool 1e3 "
        'or vector(0) unless caseclock:rule:sum{le=~"3600|3600[.]0"}'
    )
    assert metric_names(expr) == {"a_end", "b_committed", "c_total", "caseclock:rule:sum"}


def test_faust_names_match_installed_faust() -> None:
    """The recorded list above is what the installed faust really registers."""
    prometheus_sensor = pytest.importorskip("faust.sensors.prometheus")
    registry = CollectorRegistry()
    prometheus_sensor.FaustMetrics.create(registry, FAUST_SENSOR_PREFIX)
    families = {
        family.name.removeprefix(f"{FAUST_SENSOR_PREFIX}_"): family.type
        for family in registry.collect()
    }
    assert families == FAUST_FAMILIES


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    (prometheus,) = [d for d in datasources if d["uid"] == "prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
