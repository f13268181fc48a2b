"""A case's state stays bounded whatever its history (issue: one long-lived case must not take
the worker down), and bounding it changes no clock."""

from __future__ import annotations

import orjson

from caseclock.core.engine import Engine
from caseclock.core.state import (
    MAX_PRIORITY_FACTS,
    MAX_RESOLUTION_FACTS,
    MAX_STATUS_FACTS,
    SEEN_DIGESTS,
    TRIM_FROM,
    CaseState,
)
from caseclock.core.timeutil import to_us
from caseclock.live.config import Config
from caseclock.replay import Replayer
from tests.factories import DEFAULT_POLICY, T0, note, opened, reprioritised

NOW = to_us(T0)
ROW_LIMIT = Config.from_env({}).max_state_bytes


def row_size(state: CaseState) -> int:
    """Bytes of the live worker's table row for this state (service._row's shape)."""
    return len(orjson.dumps({"p": 2**31, "t": 2**62, "s": state.to_dict()}))


def test_a_case_with_200000_events_keeps_a_constant_size() -> None:
    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("BIG", 0, 1), NOW)
    sizes = []
    for i in range(200_000):
        # A monitor posting an internal note every minute for months.
        engine.apply(state, note("BIG", i / 60, author="system", visibility="internal"), NOW)
        if i % 50_000 == 0 or i == 199_999:
            sizes.append(row_size(state))
    assert len(state.seen) == 8 * SEEN_DIGESTS
    assert max(sizes) == sizes[-1] == sizes[1], sizes  # constant once the ring is full
    assert sizes[-1] < ROW_LIMIT


def test_the_worst_case_state_fits_the_documented_bound() -> None:
    """Every string at its contract maximum, made of characters JSON escapes to 6 bytes, a full
    duplicate ring, full priority, status and resolution histories: still under
    CASECLOCK_MAX_STATE_BYTES."""
    engine = Engine(DEFAULT_POLICY)
    worst = "\x01" * 256
    s = CaseState(worst, NOW)
    s.opened_at, s.open_tb, s.plan = NOW, 2**64 - 1, worst
    s.customer_id, s.subject = worst, "\x01" * 1024
    s.comm_first = s.comm_last = s.eta_or_workaround = s.eta_set_at = s.eta = NOW
    s.eta_tb, s.emitted, s.update_through = 2**64 - 1, 15, NOW
    s.seen = b"\xff" * 8 * SEEN_DIGESTS
    s.priorities = [(NOW + i, 2**64 - 1, 3) for i in range(MAX_PRIORITY_FACTS)]
    s.statuses = [(NOW + i, 2**64 - 1, 2**64 - 1) for i in range(MAX_STATUS_FACTS)]
    s.resolutions = [(NOW + i, 2**64 - 1, 1) for i in range(MAX_RESOLUTION_FACTS)]
    assert engine.policy is DEFAULT_POLICY
    assert row_size(s) < ROW_LIMIT, row_size(s)


def test_priority_history_is_bounded_and_keeps_what_the_clocks_need() -> None:
    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("P", 0, 3), NOW)
    for i in range(1, 500):  # an upstream flapping between P2 and P3, then P1 for good
        engine.apply(state, reprioritised("P", i / 100, 2 if i % 2 else 3), NOW)
    engine.apply(state, reprioritised("P", 6.0, 1), NOW)
    engine.apply(state, reprioritised("P", 6.5, 1), NOW)  # the same priority again
    assert len(state.priorities) <= MAX_PRIORITY_FACTS
    cur = engine.current(state)
    assert cur is not None and cur[1].priority == 1 and cur[2] == to_us(T0) + 6 * 3600 * 10**6
    tto = engine.time_to_open(state)
    assert state.priorities[0][2] == 3  # the opening fact survives: its promise applies
    assert tto is None or tto[0] == 3


def test_an_identical_repeat_beyond_the_ring_changes_nothing() -> None:
    """The fold is idempotent, so a repeat the ring has forgotten is harmless."""
    engine = Engine(DEFAULT_POLICY)
    first = reprioritised("R", 0.5, 2, event_id="prio-1")
    state, _ = engine.apply(None, opened("R", 0, 1), NOW)
    engine.apply(state, first, NOW)
    engine.apply(state, note("R", 0.2), NOW)
    for i in range(2 * SEEN_DIGESTS):
        engine.apply(state, note("R", 1 + i / 60, author="customer"), NOW)
    before = state.to_dict()
    before.pop("sn")
    _, applied = engine.apply(state, first, NOW)  # forgotten by the ring: applied again
    after = state.to_dict()
    after.pop("sn")
    assert applied and after == before


def test_rows_written_before_the_bound_are_trimmed_on_load() -> None:
    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("OLD", 0, 1), NOW)
    doc = state.to_dict()
    doc["sn"] = (b"\x01" * 8 * 10_000).hex()  # a row from before the bound: 10,000 digests
    doc["pr"] = [[NOW + i, i, 1 + i % 3] for i in range(100)]
    loaded = CaseState.from_dict(doc)
    assert len(loaded.seen) == 8 * SEEN_DIGESTS
    assert len(loaded.priorities) <= MAX_PRIORITY_FACTS


def test_duplicates_within_the_ring_are_still_counted_in_replay() -> None:
    r = Replayer(DEFAULT_POLICY)
    events = [opened("D", 0, 1)] + [note("D", i / 60, author="customer") for i in range(10)]
    for e in events + events[-3:]:
        r.feed(e)
    assert r.summary.duplicates == 3


def test_status_and_resolution_histories_are_bounded() -> None:
    """A case flapping between statuses and through resolve/reopen cycles before anyone
    answered it (every fact within reach of its acknowledge window) is capped: a constant
    size, under the row limit, and its current status and resolution are its latest facts."""
    from tests.factories import reopened, resolved, status

    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("S", 0, 3), NOW)
    sizes = []
    for i in range(5_000):
        engine.apply(state, status("S", i / 60, "pending" if i % 2 else "x" * 256), NOW)
        engine.apply(state, (reopened if i % 2 else resolved)("S", i / 60 + 0.001), NOW)
        if i in (1_000, 4_999):
            sizes.append(row_size(state))
    assert len(state.statuses) == MAX_STATUS_FACTS
    assert len(state.resolutions) == MAX_RESOLUTION_FACTS
    assert max(sizes) < ROW_LIMIT
    assert abs(sizes[0] - sizes[1]) < 1000  # only the digits of the tiebreak hashes vary
    assert state.statuses[-1][0] == to_us(T0) + round(4_999 / 60 * 3600e6)
    assert not state.resolved  # the last fact (i = 4999, odd) is a reopen


def test_an_answered_case_keeps_only_the_facts_its_windows_can_reach() -> None:
    """Acknowledged and elevated, a P1's windows count from its last communication: the
    status facts before it are dropped but the one in force there, whatever their number."""
    from tests.factories import status

    engine = Engine(DEFAULT_POLICY)
    state, _ = engine.apply(None, opened("S", 0, 1), NOW)
    engine.evaluate(state, NOW)  # the immediate elevation
    for i in range(2_000):
        engine.apply(state, note("S", i / 4 + 0.1), NOW)  # an update every 15 minutes
        engine.apply(state, status("S", i / 4 + 0.2, "pending" if i % 2 else "open"), NOW)
    assert len(state.statuses) <= TRIM_FROM + 1  # trimmed each time it grows past that
    h = engine.horizon(state)
    assert h == to_us(T0) + round((1_999 / 4 + 0.1) * 3600e6)  # the last note
    assert state.statuses[0][0] <= h  # the status in force at the horizon is kept
