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


def test_recovery_watchdog_threshold() -> None:
    svc = CaseClock(Config.from_env({"CASECLOCK_RECOVERY_TIMEOUT": "10"}), load_policy())
    us = 10**6
    assert svc.recovering_since is not None  # the start-up recovery counts too
    svc.recovering_since = 0
    assert svc._recovery_stuck_for(10 * us) is None  # at the limit: still allowed
    assert svc._recovery_stuck_for(11 * us) == 11.0
    svc.recovering_since = None  # recovered
    assert svc._recovery_stuck_for(10**15) is None
