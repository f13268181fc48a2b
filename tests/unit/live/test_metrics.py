"""Unit tests for caseclock.live.metrics (a fresh CollectorRegistry per test)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from caseclock.live.metrics import (
    ALERT_STAGES,
    CLOCKS,
    DEAD_LETTER_REASONS,
    EVENT_TYPES,
    METRIC_DOCS,
    SUPPORT_PLUS_ACK_WINDOWS,
    Metrics,
    buckets_for_windows,
)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def samples(registry: CollectorRegistry, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Exposed samples of ``name`` (as scraped), keyed by their label set."""
    out: dict[frozenset[tuple[str, str]], float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == name:
                out[frozenset(sample.labels.items())] = sample.value
    return out


def key(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


# -- bucket helper ---------------------------------------------------------------------------


def test_buckets_include_each_window_sorted_and_deduped() -> None:
    buckets = buckets_for_windows([3600, 14400, 28800])
    assert buckets == sorted(set(buckets))
    for window in (3600, 14400, 28800):
        assert float(window) in buckets
        assert window * 0.75 in buckets  # default warn fraction
        assert window * 4 in buckets
    # 4 h * 0.25 == 1 h, 1 h * 4 == 4 h ... appear once
    assert buckets.count(3600.0) == 1
    assert buckets.count(14400.0) == 1
    assert buckets[0] == 900.0


def test_buckets_custom_fractions_and_ignored_windows() -> None:
    assert buckets_for_windows([100, float("inf"), 0, -5], fractions=[0.5, 1, 1]) == [50.0, 100.0]


def test_buckets_need_a_usable_window() -> None:
    with pytest.raises(ValueError):
        buckets_for_windows([])
    with pytest.raises(ValueError):
        buckets_for_windows([float("inf")])


def test_histogram_buckets_expose_window_boundaries(registry: CollectorRegistry) -> None:
    metrics = Metrics(registry, ack_buckets=buckets_for_windows([60.0, 120.0]))
    metrics.observe_time_to_acknowledge("1", 59)
    metrics.observe_time_to_acknowledge("1", 61)
    buckets = samples(registry, "caseclock_time_to_acknowledge_seconds_bucket")
    assert buckets[key(priority="1", le="60.0")] == 1
    assert buckets[key(priority="1", le="120.0")] == 2
    assert buckets[key(priority="1", le="+Inf")] == 2


def test_default_ack_buckets_are_support_plus_windows(metrics: Metrics) -> None:
    metrics.observe_time_to_acknowledge("2", 3600)  # inclusive: exactly at the window
    buckets = samples(metrics.registry, "caseclock_time_to_acknowledge_seconds_bucket")
    for window in SUPPORT_PLUS_ACK_WINDOWS:
        assert key(priority="2", le=str(window)) in buckets
    assert buckets[key(priority="2", le="3600.0")] == 1
    assert buckets[key(priority="2", le="2700.0")] == 0


# -- per-partition gauges --------------------------------------------------------------------


def test_partition_counts_aggregate(metrics: Metrics) -> None:
    metrics.set_partition_counts(
        0, {("1", "support-plus"): 2, ("2", "support-plus"): 1}, {("ack", "1"): 1}
    )
    metrics.set_partition_counts(
        3, {("1", "support-plus"): 3}, {("ack", "1"): 2, ("update", "2"): 1}
    )
    open_cases = samples(metrics.registry, "caseclock_open_cases")
    assert open_cases == {
        key(priority="1", plan="support-plus"): 5,
        key(priority="2", plan="support-plus"): 1,
    }
    at_risk = samples(metrics.registry, "caseclock_cases_at_risk")
    assert at_risk == {key(clock="ack", priority="1"): 3, key(clock="update", priority="2"): 1}


def test_partition_counts_replace_not_add(metrics: Metrics) -> None:
    metrics.set_partition_counts(0, {("1", "support-plus"): 2}, {})
    metrics.set_partition_counts(0, {("1", "support-plus"): 4}, {})
    assert samples(metrics.registry, "caseclock_open_cases") == {
        key(priority="1", plan="support-plus"): 4
    }


def test_label_set_removed_when_it_drops_to_zero(metrics: Metrics) -> None:
    metrics.set_partition_counts(0, {("1", "support-plus"): 2, ("3", "gold"): 1}, {("ack", "1"): 1})
    metrics.set_partition_counts(0, {("1", "support-plus"): 2, ("3", "gold"): 0}, {})
    assert samples(metrics.registry, "caseclock_open_cases") == {
        key(priority="1", plan="support-plus"): 2
    }
    assert samples(metrics.registry, "caseclock_cases_at_risk") == {}


def test_drop_partition_removes_its_contribution(metrics: Metrics) -> None:
    metrics.set_partition_counts(0, {("1", "support-plus"): 2}, {("ack", "1"): 1})
    metrics.set_partition_counts(1, {("1", "support-plus"): 3, ("2", "gold"): 1}, {})
    metrics.drop_partition(1)
    assert samples(metrics.registry, "caseclock_open_cases") == {
        key(priority="1", plan="support-plus"): 2
    }
    metrics.drop_partition(0)
    assert samples(metrics.registry, "caseclock_open_cases") == {}
    assert samples(metrics.registry, "caseclock_cases_at_risk") == {}
    metrics.drop_partition(7)  # unknown partition: no-op
    assert metrics.held_partitions() == frozenset()


def test_two_workers_sum_to_the_whole(registry: CollectorRegistry) -> None:
    """A partition moving between workers is counted by exactly one of them."""
    worker_a, worker_b = Metrics(registry), Metrics(CollectorRegistry())
    worker_a.set_partition_counts(0, {("1", "support-plus"): 2}, {})
    worker_a.set_partition_counts(1, {("1", "support-plus"): 5}, {})
    # rebalance: partition 1 moves to worker b
    worker_a.set_assigned_partitions([0])
    worker_b.set_assigned_partitions([1])
    worker_b.set_partition_counts(1, {("1", "support-plus"): 5}, {})
    total = sum(
        sum(samples(w.registry, "caseclock_open_cases").values()) for w in (worker_a, worker_b)
    )
    assert total == 7
    assert samples(worker_a.registry, "caseclock_partitions_owned") == {key(): 1}
    assert worker_a.held_partitions() == frozenset({0})


def test_negative_count_is_rejected(metrics: Metrics) -> None:
    with pytest.raises(ValueError):
        metrics.set_partition_counts(0, {("1", "support-plus"): -1}, {})


# -- counters, labels, exposition ------------------------------------------------------------


def test_counters_precreated_at_zero(metrics: Metrics) -> None:
    """rate()/increase() only see a counter's first increment if the series existed before."""
    breaches = samples(metrics.registry, "caseclock_sla_breaches_total")
    assert breaches[key(clock="ack", priority="1", calendar="24x7")] == 0
    assert len(breaches) == len(CLOCKS) * 3
    assert len(samples(metrics.registry, "caseclock_dead_letters_total")) == len(
        DEAD_LETTER_REASONS
    )
    emitted = samples(metrics.registry, "caseclock_alerts_emitted_total")
    assert len(emitted) == sum(len(stages) for stages in ALERT_STAGES.values()) * 3
    assert samples(metrics.registry, "caseclock_recovery_complete") == {key(): 0}


def test_counter_helpers(metrics: Metrics) -> None:
    metrics.event_consumed("case-opened")
    metrics.event_consumed("made-up-type")  # folded into "other": bounded labels
    metrics.event_duplicate("eta-set")
    metrics.alert_emitted("ack-due", "breach", "1", lateness_seconds=0.2, catch_up=True)
    metrics.sla_breach("ack", "1")
    metrics.dead_letter("invalid-json")
    metrics.tick("stale")
    consumed = samples(metrics.registry, "caseclock_events_consumed_total")
    assert consumed[key(type="case-opened")] == 1
    assert consumed[key(type="other")] == 1
    assert all(label != ("type", "made-up-type") for k in consumed for label in k)
    assert samples(metrics.registry, "caseclock_events_duplicate_total")[key(type="eta-set")] == 1
    emitted = samples(metrics.registry, "caseclock_alerts_emitted_total")
    assert emitted[key(type="ack-due", stage="breach", priority="1")] == 1
    assert samples(metrics.registry, "caseclock_catchup_alerts_total")[key(type="ack-due")] == 1
    lateness = samples(metrics.registry, "caseclock_alert_lateness_seconds_bucket")
    assert lateness[key(type="ack-due", le="0.1")] == 0
    assert lateness[key(type="ack-due", le="0.25")] == 1
    breaches = samples(metrics.registry, "caseclock_sla_breaches_total")
    assert breaches[key(clock="ack", priority="1", calendar="24x7")] == 1
    dead = samples(metrics.registry, "caseclock_dead_letters_total")
    assert dead[key(reason="invalid-json")] == 1
    assert samples(metrics.registry, "caseclock_ticks_total")[key(outcome="stale")] == 1


def test_plain_gauges_and_processing_timer(metrics: Metrics) -> None:
    metrics.set_timer_index_size(42)
    metrics.set_recovery_complete(True)
    metrics.set_oldest_overdue_seconds(-3)  # clamped: never negative
    ticks = iter([10.0, 10.002])
    with metrics.time_event_processing(clock=lambda: next(ticks)):
        pass
    reg = metrics.registry
    assert samples(reg, "caseclock_timer_index_size") == {key(): 42}
    assert samples(reg, "caseclock_recovery_complete") == {key(): 1}
    assert samples(reg, "caseclock_oldest_overdue_seconds") == {key(): 0}
    processing = samples(reg, "caseclock_event_processing_seconds_bucket")
    assert processing[key(le="0.001")] == 0
    assert processing[key(le="0.0025")] == 1


def test_exposed_names(metrics: Metrics) -> None:
    metrics.observe_time_to_open("1", 10)
    text = generate_latest(metrics.registry).decode()
    names = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    expected = {
        "caseclock_events_consumed_total",
        "caseclock_events_duplicate_total",
        "caseclock_alerts_emitted_total",
        "caseclock_sla_breaches_total",
        "caseclock_dead_letters_total",
        "caseclock_catchup_alerts_total",
        "caseclock_ticks_total",
        "caseclock_timer_index_size",
        "caseclock_partitions_owned",
        "caseclock_recovery_complete",
        "caseclock_oldest_overdue_seconds",
    }
    for hist in (
        "caseclock_time_to_acknowledge_seconds",
        "caseclock_time_to_open_seconds",
        "caseclock_alert_lateness_seconds",
        "caseclock_event_processing_seconds",
    ):
        expected |= {f"{hist}_bucket", f"{hist}_count", f"{hist}_sum"}
    assert expected <= names
    assert "caseclock_events_consumed_total_total" not in text
    # the per-partition gauges are declared even while empty
    assert "# TYPE caseclock_open_cases gauge" in text
    assert "# TYPE caseclock_cases_at_risk gauge" in text


def test_metric_docs_cover_every_family(metrics: Metrics) -> None:
    # registry.collect(), not the text parser: it would report each "_created" as a gauge
    families = {family.name: family.type for family in metrics.registry.collect()}
    documented = {
        doc.name.removesuffix("_total") if doc.type == "counter" else doc.name: doc.type
        for doc in METRIC_DOCS
    }
    assert documented == families
    assert len({doc.name for doc in METRIC_DOCS}) == len(METRIC_DOCS)
    for doc in METRIC_DOCS:
        assert doc.meaning.strip()
        assert "case_id" not in doc.labels


def test_event_types_constant_matches_contract() -> None:
    assert set(EVENT_TYPES) == {
        "case-opened",
        "case-noted",
        "eta-set",
        "case-resolved",
        "priority-changed",
        "status-changed",
        "case-reopened",
    }


def test_breaches_are_labelled_by_calendar() -> None:
    """Grafana shows breaches by calendar: every (clock, priority, calendar) exists at zero."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, priorities=("1", "2"), calendars=("24x7", "emea"))
    breaches = samples(registry, "caseclock_sla_breaches_total")
    assert len(breaches) == len(CLOCKS) * 2 * 2
    metrics.sla_breach("update", "2", "emea")
    breaches = samples(registry, "caseclock_sla_breaches_total")
    assert breaches[key(clock="update", priority="2", calendar="emea")] == 1
    assert breaches[key(clock="update", priority="2", calendar="24x7")] == 0
