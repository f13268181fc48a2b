"""Prometheus metrics for the caseclock worker.

Everything an SRE graphs or alerts on is defined here, in one place, so that the metric names,
label names and label values stay consistent between the service, the recording/alerting rules
in ``deploy/prometheus/rules`` and the Grafana dashboard in ``deploy/grafana/dashboards``.

Design rules:

* **Bounded labels only.** Labels carry event types, alert types, stages, clocks, priorities,
  plans, dead-letter reasons and tick outcomes: all come from code constants or from the policy
  file. Case ids, customer ids, event ids and topics of bad input never become label values.
  Event types are the one label that comes straight from (possibly bad) input, so values
  outside :data:`EVENT_TYPES` are folded into ``"other"``.
* **Known label sets exist from the start.** Counters for every known label combination are
  created at zero in the constructor. A counter series that first appears with value 1 is
  invisible to ``rate()``/``increase()`` (there is no earlier sample to compare with), so the
  first P1 acknowledgement breach after a restart would otherwise never page.
* **One registry per worker, no multiprocess mode.** Each worker process serves its own
  ``/metrics``; the per-partition gauges below need ``Gauge.remove``, which
  prometheus_client's multiprocess mode cannot do.
* **Per-partition gauges.** Case state lives in a partitioned table and partitions move between
  workers on every rebalance. Open/at-risk case counts are therefore reported per partition
  (:meth:`Metrics.set_partition_counts`) and a worker exports the sum over the partitions it
  currently owns; :meth:`Metrics.drop_partition` removes a revoked partition's contribution, so
  ``sum()`` over all workers counts every partition exactly once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from caseclock.contracts.inbound import REJECT_REASONS
from caseclock.core.facts import INBOUND_TYPES

__all__ = [
    "ACK_OUTCOMES",
    "ALERT_LATENESS_BUCKETS",
    "ALERT_STAGES",
    "CLOCKS",
    "DEAD_LETTER_REASONS",
    "DEFAULT_CALENDARS",
    "DEFAULT_PRIORITIES",
    "DEFAULT_WINDOW_FRACTIONS",
    "EVENT_PROCESSING_BUCKETS",
    "EVENT_TYPES",
    "FAUST_SENSOR_PREFIX",
    "METRIC_DOCS",
    "SUPPORT_PLUS_ACK_WINDOWS",
    "SUPPORT_PLUS_OPEN_WINDOWS",
    "TICK_OUTCOMES",
    "MetricDoc",
    "Metrics",
    "buckets_for_windows",
]

#: Inbound event types (``type`` label of the event counters): the contract's.
EVENT_TYPES: Final = INBOUND_TYPES
#: Label value used for an event type outside :data:`EVENT_TYPES` (keeps cardinality bounded).
OTHER: Final = "other"
#: Alert type (= outbound topic) -> the stages that alert type can have.
ALERT_STAGES: Final[Mapping[str, tuple[str, ...]]] = {
    "ack-due": ("warning", "breach"),
    "update-due": ("warning", "breach"),
    "elevate-to-l2": ("action",),
}
#: SLA clocks (``clock`` label of breaches and at-risk cases).
CLOCKS: Final = ("ack", "update", "elevation", "time_to_open")
#: Dead-letter reason codes (``reason`` label): the decoder's.
DEAD_LETTER_REASONS: Final = REJECT_REASONS
#: Outcomes of an acknowledgement obligation (``outcome`` label).
ACK_OUTCOMES: Final = ("in_time", "late")
#: What happened to a due case when the timer evaluated it against the case state.
TICK_OUTCOMES: Final = ("fired", "stale", "purged")
#: What a record the worker produces is (``record`` label of the send failures).
SENT_RECORDS: Final = ("alert", "dead-letter", "changelog")
#: Priorities of the default "support-plus" plan; label sets for these are pre-created.
DEFAULT_PRIORITIES: Final = ("1", "2", "3")
DEFAULT_CALENDARS: Final = ("24x7",)

#: Acknowledge windows of support-plus (1 h, 4 h, 8 h) in seconds.
SUPPORT_PLUS_ACK_WINDOWS: Final = (3600.0, 14400.0, 28800.0)
#: Time-to-open windows of support-plus (1 h, 4 h, 8 h) in seconds.
SUPPORT_PLUS_OPEN_WINDOWS: Final = (3600.0, 14400.0, 28800.0)
#: Fractions of each window that become histogram bucket boundaries. 1.0 makes the window itself
#: a boundary (``le="3600.0"``), which is what SLA attainment queries divide by; 0.75 is the
#: default warn fraction.
DEFAULT_WINDOW_FRACTIONS: Final = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)

#: fired_at - due_at, in seconds. The timer wakes at each deadline, so most alerts land in the
#: 10-100 ms buckets; fine steps up to 5 min let p99 be read from Prometheus in a mass
#: incident, and the long tail covers catch-up after downtime.
ALERT_LATENESS_BUCKETS: Final = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
#: Wall time to handle the inbound messages of one fetch, in seconds.
EVENT_PROCESSING_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

#: Pass this as ``name_prefix`` to ``faust.sensors.prometheus.setup_prometheus_sensors``. Faust's
#: default prefix is the app id (``CASECLOCK_APP_ID``), which is deployment configuration; the
#: rules and the dashboard query Faust's metrics under this fixed prefix instead
#: (e.g. ``caseclock_faust_topic_partition_end_offset``).
FAUST_SENSOR_PREFIX: Final = "caseclock_faust"


def buckets_for_windows(
    windows_seconds: Iterable[float],
    fractions: Iterable[float] = DEFAULT_WINDOW_FRACTIONS,
) -> list[float]:
    """Histogram bucket boundaries around each SLA window.

    Every window contributes ``fraction * window`` for each fraction, so each window value is
    itself a boundary (with the default fractions) and attainment ("share observed within the
    window") is an exact bucket read, not an interpolation. Boundaries are rounded to the
    millisecond, sorted and de-duplicated. Non-finite and non-positive windows (e.g. an
    ``elevate = "never"`` clock) are ignored.

    Raises ``ValueError`` if no usable window or fraction is left: a histogram needs at least
    one finite bucket.
    """
    fracs = [f for f in fractions if math.isfinite(f) and f > 0]
    bounds = {round(w * f, 3) for w in windows_seconds if math.isfinite(w) and w > 0 for f in fracs}
    if not bounds:
        raise ValueError("buckets_for_windows needs at least one positive, finite window")
    return sorted(bounds)


class MetricDoc(NamedTuple):
    """One row of the metric reference table (rendered into the README)."""

    name: str
    type: str
    labels: tuple[str, ...]
    meaning: str


#: Every metric caseclock exposes, as scraped (counters with their ``_total`` suffix).
METRIC_DOCS: Final[list[MetricDoc]] = [
    MetricDoc(
        "caseclock_events_consumed_total",
        "counter",
        ("type",),
        "Valid inbound events applied to case state, by event type.",
    ),
    MetricDoc(
        "caseclock_events_duplicate_total",
        "counter",
        ("type",),
        "Inbound events ignored because their event_id was already applied.",
    ),
    MetricDoc(
        "caseclock_alerts_emitted_total",
        "counter",
        ("type", "stage", "priority"),
        "Alerts produced on ack-due / update-due / elevate-to-l2, by stage and case priority.",
    ),
    MetricDoc(
        "caseclock_sla_breaches_total",
        "counter",
        ("clock", "priority", "calendar"),
        "SLA breaches by clock (ack, update, elevation, time_to_open), priority and the "
        "calendar the window counted in (24x7 or a policy calendar). time_to_open breaches "
        "are counted here only; they emit no alert.",
    ),
    MetricDoc(
        "caseclock_dead_letters_total",
        "counter",
        ("reason",),
        "Messages sent to the dead-letter topic, by reason code.",
    ),
    MetricDoc(
        "caseclock_send_failures_total",
        "counter",
        ("record",),
        "Records (alert, dead-letter, changelog) the broker did not acknowledge: a transient "
        "failure is retried (alerts and dead letters until they go out, changelog rows by "
        "sending them again); a lasting refusal of an alert for its own sake (its size) "
        "dead-letters it as alert-undeliverable, any other stops the worker from "
        "acknowledging input (caseclock_input_stopped). Rising while the broker is down.",
    ),
    MetricDoc(
        "caseclock_catchup_alerts_total",
        "counter",
        ("type",),
        "Alerts emitted in catch-up mode (deadline already past when the case was learned of, "
        "recomputed or the service restarted); only the latest breach of a clock is emitted.",
    ),
    MetricDoc(
        "caseclock_acknowledgements_total",
        "counter",
        ("priority", "outcome"),
        "Acknowledgement obligations decided, once per case: in_time when the first "
        "communication came within the window, late when the ack breach fired or the first "
        "communication came after it. SLA attainment = in_time / all, for any policy.",
    ),
    MetricDoc(
        "caseclock_ticks_total",
        "counter",
        ("outcome",),
        "Due cases the timer evaluated against their state (the name is from when they came as "
        "tick messages): fired (alert emitted), stale (no row, or the state had moved on), "
        "purged (a resolved or never-opened case deleted after its retention).",
    ),
    MetricDoc(
        "caseclock_open_cases",
        "gauge",
        ("priority", "plan"),
        "Unresolved cases in the partitions this worker owns. sum() over workers = all open cases.",
    ),
    MetricDoc(
        "caseclock_cases_at_risk",
        "gauge",
        ("clock", "priority"),
        "Open cases past the warning point of a clock but not yet breached, in the partitions "
        "this worker owns.",
    ),
    MetricDoc(
        "caseclock_timer_index_size",
        "gauge",
        (),
        "Pending deadlines in this worker's in-memory timer index.",
    ),
    MetricDoc(
        "caseclock_partitions_owned",
        "gauge",
        (),
        "Case-table partitions this worker actively owns.",
    ),
    MetricDoc(
        "caseclock_recovery_complete",
        "gauge",
        (),
        "1 once table recovery finished and the timer index is rebuilt, 0 while recovering.",
    ),
    MetricDoc(
        "caseclock_input_stopped",
        "gauge",
        (),
        "1 while an infrastructure failure (the store, the changelog or the alert topics) "
        "stops this worker from acknowledging input, 0 otherwise.",
    ),
    MetricDoc(
        "caseclock_oldest_overdue_seconds",
        "gauge",
        (),
        "How long the oldest due timer has waited to be evaluated (taken for evaluation and "
        "not yet done, or due and still queued); 0 when the timers keep up.",
    ),
    MetricDoc(
        "caseclock_time_to_acknowledge_seconds",
        "histogram",
        ("priority",),
        "opened_at to first communication, counted like the acknowledge window (its "
        "calendar's open time, less pauses). Buckets include each acknowledge window, so "
        'bucket{le="<window>"} / count is SLA attainment among acknowledged cases.',
    ),
    MetricDoc(
        "caseclock_time_to_open_seconds",
        "histogram",
        ("priority",),
        "reported_at to opened_at, for cases that carry reported_at.",
    ),
    MetricDoc(
        "caseclock_alert_lateness_seconds",
        "histogram",
        ("type",),
        "fired_at - max(due_at, arrival of the case's latest fact + CASECLOCK_INPUT_SKEW): "
        "how late the timers fire. Downtime shows (catch-ups included); late upstream facts "
        "and the deliberate wait for a case's facts on other topics do not.",
    ),
    MetricDoc(
        "caseclock_event_processing_seconds",
        "histogram",
        (),
        "Wall time to handle the inbound messages of one fetch (up to 2000): decode, "
        "validate, apply, write, and deliver their dead letters.",
    ),
]

#: Label values of one per-partition gauge series: (priority, plan) or (clock, priority).
_LabelKey = tuple[str, str]


class _Children:
    """A labelled counter's or histogram's children by label values, in the order of its label
    names, cached: prometheus_client's `labels()` checks its arguments, builds their tuple and
    takes a lock on every call, which was about a tenth of the timer's evaluations of a burst
    (py-spy, 2026-12-02). Only for metrics whose children are never removed (not the gauges:
    `set_partition_counts` removes theirs); label values are few (types, priorities, reasons)."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    """All caseclock metrics, registered on one ``CollectorRegistry``.

    The metric objects are public attributes (``metrics.events_consumed`` ...) for code that
    needs them directly; the methods are the preferred entry points because they keep label
    names and values in one place.

    ``ack_buckets`` / ``open_buckets`` are histogram boundaries in seconds for
    ``caseclock_time_to_acknowledge_seconds`` / ``caseclock_time_to_open_seconds``; derive them
    from the loaded policy with :func:`buckets_for_windows` so that every window is a boundary.
    All workers of one deployment must use the same policy (hence the same buckets), or
    ``sum by (le)`` across workers mixes incompatible boundaries. ``priorities`` lists the
    priorities of the policy; their label sets are created at zero up front (see the module
    docstring).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        ack_buckets: Sequence[float] | None = None,
        open_buckets: Sequence[float] | None = None,
        *,
        priorities: Iterable[str] = DEFAULT_PRIORITIES,
        calendars: Iterable[str] = DEFAULT_CALENDARS,
    ) -> None:
        ack = list(ack_buckets) if ack_buckets else buckets_for_windows(SUPPORT_PLUS_ACK_WINDOWS)
        opn = list(open_buckets) if open_buckets else buckets_for_windows(SUPPORT_PLUS_OPEN_WINDOWS)
        self.registry = registry
        docs = {doc.name: doc.meaning for doc in METRIC_DOCS}

        def counter(name: str, labels: Sequence[str]) -> Counter:
            # prometheus_client appends "_total" to counters itself.
            return Counter(name.removesuffix("_total"), docs[name], labels, registry=registry)

        def gauge(name: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, docs[name], labels, registry=registry)

        def histogram(name: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
            return Histogram(name, docs[name], labels, registry=registry, buckets=buckets)

        self.events_consumed = counter("caseclock_events_consumed_total", ["type"])
        self.events_duplicate = counter("caseclock_events_duplicate_total", ["type"])
        self.alerts_emitted = counter(
            "caseclock_alerts_emitted_total", ["type", "stage", "priority"]
        )
        self.sla_breaches = counter(
            "caseclock_sla_breaches_total", ["clock", "priority", "calendar"]
        )
        self.dead_letters = counter("caseclock_dead_letters_total", ["reason"])
        self.send_failures = counter("caseclock_send_failures_total", ["record"])
        self.catchup_alerts = counter("caseclock_catchup_alerts_total", ["type"])
        self.ticks = counter("caseclock_ticks_total", ["outcome"])
        self.acknowledgements = counter("caseclock_acknowledgements_total", ["priority", "outcome"])

        self.open_cases = gauge("caseclock_open_cases", ["priority", "plan"])
        self.cases_at_risk = gauge("caseclock_cases_at_risk", ["clock", "priority"])
        self.timer_index_size = gauge("caseclock_timer_index_size")
        self.partitions_owned = gauge("caseclock_partitions_owned")
        self.recovery_complete = gauge("caseclock_recovery_complete")
        self.input_stopped = gauge("caseclock_input_stopped")
        self.oldest_overdue_seconds = gauge("caseclock_oldest_overdue_seconds")

        self.time_to_acknowledge = histogram(
            "caseclock_time_to_acknowledge_seconds", ["priority"], ack
        )
        self.time_to_open = histogram("caseclock_time_to_open_seconds", ["priority"], opn)
        self.alert_lateness = histogram(
            "caseclock_alert_lateness_seconds", ["type"], ALERT_LATENESS_BUCKETS
        )
        self.event_processing = histogram(
            "caseclock_event_processing_seconds", [], EVENT_PROCESSING_BUCKETS
        )

        # The children the handlers count into, cached (`_Children`).
        self._consumed = _Children(self.events_consumed)
        self._duplicate = _Children(self.events_duplicate)
        self._emitted = _Children(self.alerts_emitted)
        self._breaches = _Children(self.sla_breaches)
        self._catchups = _Children(self.catchup_alerts)
        self._ticks = _Children(self.ticks)
        self._acks = _Children(self.acknowledgements)
        self._lateness = _Children(self.alert_lateness)
        self._to_ack = _Children(self.time_to_acknowledge)
        self._to_open = _Children(self.time_to_open)

        # Per-partition contributions to the aggregated gauges; see set_partition_counts.
        self._open_by_partition: dict[Hashable, dict[_LabelKey, int]] = {}
        self._at_risk_by_partition: dict[Hashable, dict[_LabelKey, int]] = {}

        self._precreate(tuple(priorities), tuple(calendars))

    def _precreate(self, priorities: tuple[str, ...], calendars: tuple[str, ...]) -> None:
        """Create every known counter/histogram label set at zero (see the module docstring)."""
        for event_type in EVENT_TYPES:
            self.events_consumed.labels(type=event_type)
            self.events_duplicate.labels(type=event_type)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason=reason)
        for outcome in TICK_OUTCOMES:
            self.ticks.labels(outcome=outcome)
        for record in SENT_RECORDS:
            self.send_failures.labels(record=record)
        for alert_type, stages in ALERT_STAGES.items():
            self.catchup_alerts.labels(type=alert_type)
            self.alert_lateness.labels(type=alert_type)
            for stage in stages:
                for priority in priorities:
                    self.alerts_emitted.labels(type=alert_type, stage=stage, priority=priority)
        for priority in priorities:
            self.time_to_acknowledge.labels(priority=priority)
            self.time_to_open.labels(priority=priority)
            for clock in CLOCKS:
                for calendar in calendars:
                    self.sla_breaches.labels(clock=clock, priority=priority, calendar=calendar)
            for outcome in ACK_OUTCOMES:
                self.acknowledgements.labels(priority=priority, outcome=outcome)

    # -- counters and histograms ------------------------------------------------------------

    def event_consumed(self, event_type: str, n: int = 1) -> None:
        """Count valid inbound events (unknown types are counted as ``other``)."""
        self._consumed(_event_type_label(event_type)).inc(n)

    def event_duplicate(self, event_type: str, n: int = 1) -> None:
        """Count inbound events dropped as duplicates of an applied ``event_id``."""
        self._duplicate(_event_type_label(event_type)).inc(n)

    def alert_emitted(
        self,
        alert_type: str,
        stage: str,
        priority: str,
        *,
        lateness_seconds: float | None = None,
        catch_up: bool = False,
    ) -> None:
        """Count one emitted alert; optionally record its lateness and whether it was catch-up.

        ``lateness_seconds`` is ``fired_at - due_at``; negative values are recorded as 0.
        """
        self._emitted(alert_type, stage, priority).inc()
        if lateness_seconds is not None:
            self.observe_alert_lateness(alert_type, lateness_seconds)
        if catch_up:
            self._catchups(alert_type).inc()

    def observe_alert_lateness(self, alert_type: str, seconds: float) -> None:
        """Record ``fired_at - due_at`` for one alert (clamped at 0)."""
        self._lateness(alert_type).observe(max(0.0, seconds))

    def acknowledgement(self, priority: str, in_time: bool) -> None:
        """Count one decided acknowledgement obligation (see caseclock_acknowledgements_total)."""
        self._acks(priority, "in_time" if in_time else "late").inc()

    def catchup_alert(self, alert_type: str) -> None:
        """Count an alert emitted in catch-up mode."""
        self._catchups(alert_type).inc()

    def sla_breach(self, clock: str, priority: str, calendar: str = "24x7") -> None:
        """Count one SLA breach of ``clock`` (ack, update, elevation, time_to_open) of a
        window that counted in ``calendar``."""
        self._breaches(clock, priority, calendar).inc()

    def dead_letter(self, reason: str) -> None:
        """Count one message sent to the dead-letter topic."""
        self.dead_letters.labels(reason=reason).inc()

    def send_failed(self, record: str, n: int = 1) -> None:
        """Count `n` records of a kind (alert, dead-letter, changelog) the broker did not take."""
        if n:
            self.send_failures.labels(record=record).inc(n)

    def tick(self, outcome: str) -> None:
        """Count one evaluated due case by outcome (fired, stale, purged)."""
        self._ticks(outcome).inc()

    def observe_time_to_acknowledge(self, priority: str, seconds: float) -> None:
        """Record opened_at -> first communication for a case of ``priority``."""
        self._to_ack(priority).observe(max(0.0, seconds))

    def observe_time_to_open(self, priority: str, seconds: float) -> None:
        """Record reported_at -> opened_at for a case of ``priority``."""
        self._to_open(priority).observe(max(0.0, seconds))

    @contextmanager
    def time_event_processing(
        self, clock: Callable[[], float] = time.perf_counter
    ) -> Iterator[None]:
        """Context manager observing the block's wall time in `event_processing` (the service
        layer observes each batch of inbound messages directly)."""
        start = clock()
        try:
            yield
        finally:
            self.event_processing.observe(max(0.0, clock() - start))

    # -- plain gauges ------------------------------------------------------------------------

    def set_timer_index_size(self, size: int) -> None:
        """Pending deadlines in this worker's timer index."""
        self.timer_index_size.set(size)

    def set_recovery_complete(self, complete: bool) -> None:
        """1 once recovery and the timer-index rebuild are done, 0 while (re)covering."""
        self.recovery_complete.set(1 if complete else 0)

    def set_input_stopped(self, stopped: bool) -> None:
        """1 while an infrastructure failure keeps input from being acknowledged."""
        self.input_stopped.set(1 if stopped else 0)

    def set_oldest_overdue_seconds(self, seconds: float) -> None:
        """How long the oldest due timer has waited to be evaluated (0 when timers keep up)."""
        self.oldest_overdue_seconds.set(max(0.0, seconds))

    # -- per-partition gauges ----------------------------------------------------------------

    def set_partition_counts(
        self,
        partition: Hashable,
        open_counts: Mapping[tuple[str, str], int],
        at_risk: Mapping[tuple[str, str], int],
    ) -> None:
        """Replace one partition's contribution to the open / at-risk gauges.

        ``open_counts`` maps ``(priority, plan)`` and ``at_risk`` maps ``(clock, priority)`` to
        the partition's *current totals* (not deltas); keys left out count as 0. The exported
        gauges are the sums over every partition this object holds.

        Label sets whose sum drops to zero are *removed* rather than set to 0:

        * a worker must export nothing for partitions it no longer owns, otherwise a series for
          a plan that only lived on a revoked partition lingers at 0 until the worker restarts;
        * the label space is bounded (priorities x plans, clocks x priorities), so removal is
          not needed for cardinality, but it makes the exposition a faithful picture of what
          this worker currently holds;
        * ``sum()`` over workers is correct either way, and dashboards append ``or vector(0)``
          where an empty result should read as 0.

        Raises ``ValueError`` for a negative count: that is a bookkeeping bug in the caller and
        would silently corrupt the sums if accepted.
        """
        new_open = _nonzero(open_counts)
        new_risk = _nonzero(at_risk)
        old_open = self._open_by_partition.get(partition, {})
        old_risk = self._at_risk_by_partition.get(partition, {})
        if new_open:
            self._open_by_partition[partition] = new_open
        else:
            self._open_by_partition.pop(partition, None)
        if new_risk:
            self._at_risk_by_partition[partition] = new_risk
        else:
            self._at_risk_by_partition.pop(partition, None)
        self._refresh(self.open_cases, self._open_by_partition, old_open.keys() | new_open.keys())
        self._refresh(
            self.cases_at_risk, self._at_risk_by_partition, old_risk.keys() | new_risk.keys()
        )

    def drop_partition(self, partition: Hashable) -> None:
        """Forget a revoked partition: its counts no longer contribute to the gauges."""
        old_open = self._open_by_partition.pop(partition, {})
        old_risk = self._at_risk_by_partition.pop(partition, {})
        self._refresh(self.open_cases, self._open_by_partition, old_open.keys())
        self._refresh(self.cases_at_risk, self._at_risk_by_partition, old_risk.keys())

    def set_assigned_partitions(self, partitions: Iterable[Hashable]) -> None:
        """Record the partitions this worker now actively owns.

        Sets ``caseclock_partitions_owned`` and drops the counts of every held partition that
        is not in the new assignment (call it from the rebalance hooks).
        """
        owned = set(partitions)
        self.partitions_owned.set(len(owned))
        held = self._open_by_partition.keys() | self._at_risk_by_partition.keys()
        for partition in held - owned:
            self.drop_partition(partition)

    def held_partitions(self) -> frozenset[Hashable]:
        """Partitions that currently contribute a non-zero count."""
        return frozenset(self._open_by_partition.keys() | self._at_risk_by_partition.keys())

    @staticmethod
    def _refresh(
        gauge: Gauge,
        by_partition: Mapping[Hashable, Mapping[_LabelKey, int]],
        keys: Iterable[_LabelKey],
    ) -> None:
        """Re-export the summed value of each label set in ``keys``; remove it when 0."""
        for key in keys:
            total = sum(counts.get(key, 0) for counts in by_partition.values())
            if total:
                gauge.labels(*key).set(total)
            else:
                # prometheus_client < 0.21 raises KeyError for a label set never exported.
                with suppress(KeyError):
                    gauge.remove(*key)


def _event_type_label(event_type: str) -> str:
    return event_type if event_type in EVENT_TYPES else OTHER


def _nonzero(counts: Mapping[_LabelKey, int]) -> dict[_LabelKey, int]:
    """Validate a partition's counts and keep only the non-zero ones."""
    out: dict[_LabelKey, int] = {}
    for key, value in counts.items():
        if value < 0:
            raise ValueError(f"negative case count {value} for {key!r}")
        if value:
            out[key] = value
    return out
