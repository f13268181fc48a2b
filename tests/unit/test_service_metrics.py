"""The worker's bookkeeping of acknowledgement outcomes (no broker: the hooks alone)."""

from __future__ import annotations

from caseclock.config import Config
from caseclock.policy import load_policy
from caseclock.service import CaseClock
from caseclock.timeutil import to_us
from tests.factories import T0, note, opened

H = 3600 * 10**6


def acks(svc: CaseClock, outcome: str) -> float:
    v = svc.registry.get_sample_value(
        "caseclock_acknowledgements_total", {"priority": "1", "outcome": outcome}
    )
    return v or 0.0


def test_acknowledgement_outcomes_are_counted_once_per_case() -> None:
    svc = CaseClock(Config.from_env({}), load_policy())
    engine = svc.engine
    t0 = to_us(T0)

    on_time, _ = engine.apply(None, opened("A", 0, 1), t0)
    svc._observe_new_facts(on_time, was_open=False, was_acked=False)
    engine.apply(on_time, note("A", 1.0), t0)  # exactly at the window: inclusive
    svc._observe_new_facts(on_time, was_open=True, was_acked=False)
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 0)

    late, _ = engine.apply(None, opened("B", 0, 1), t0)
    engine.apply(late, note("B", 1.5), t0)  # known together: acknowledged late, no alert
    svc._observe_new_facts(late, was_open=False, was_acked=False)
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 1)

    # The breach fired (counted late when emitted); the acknowledgement after it is not
    # counted a second time.
    breached, _ = engine.apply(None, opened("C", 0, 1), t0)
    fired = engine.evaluate(breached, t0 + 2 * H)
    assert [a.stage for a in fired if a.type == "ack-due"] == ["breach"]
    svc.metrics.acknowledgement("1", in_time=False)  # what _emit does for that breach
    engine.apply(breached, note("C", 3), t0)
    svc._observe_new_facts(breached, was_open=True, was_acked=False)
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 2)


def test_the_start_up_recovery_is_watched_and_revocation_starts_a_new_watch() -> None:
    svc = CaseClock(Config.from_env({"CASECLOCK_RECOVERY_TIMEOUT": "10"}), load_policy())
    assert svc.watch.recovering  # the start-up recovery counts too
    assert svc.watch.timeout_us == 10 * 10**6


async def test_an_outdated_recovery_completion_is_ignored() -> None:
    """A recovery that began before the latest revocation (a callback of an older
    generation, run late) must not mark the worker ready for partitions it no longer owns."""
    svc = CaseClock(Config.from_env({}), load_policy())
    recovery = svc._recovery()
    await svc._on_revoked(None, set())
    recovery._recovery_started_at = svc._revoked_mono - 1.0  # began before the revocation
    await svc._on_recovered()
    assert not svc.ready and svc.watch.recovering

    recovery._recovery_started_at = svc._revoked_mono + 1.0  # the current recovery
    assert not svc._stale_recovery(svc.app.rebalancing_count)
    assert svc._stale_recovery(svc.app.rebalancing_count - 1)  # a rebalance began since


async def test_revocation_drops_this_workers_partition_gauges_at_once() -> None:
    svc = CaseClock(Config.from_env({}), load_policy())
    svc.metrics.set_assigned_partitions({0, 1})
    svc.metrics.set_partition_counts(0, {("1", "support-plus"): 3}, {("ack", "1"): 1})
    svc.metrics.set_partition_counts(1, {("2", "support-plus"): 2}, {})
    svc.ready = True
    svc.watch.done()

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return svc.registry.get_sample_value(name, labels or {})

    assert value("caseclock_partitions_owned") == 2
    assert value("caseclock_open_cases", {"priority": "1", "plan": "support-plus"}) == 3

    await svc._on_revoked(None, set())

    assert value("caseclock_partitions_owned") == 0
    assert value("caseclock_open_cases", {"priority": "1", "plan": "support-plus"}) is None
    assert value("caseclock_cases_at_risk", {"clock": "ack", "priority": "1"}) is None
    assert value("caseclock_recovery_complete") == 0
    assert not svc.ready and svc.watch.recovering
