"""Quick checks of the benchmark history generator (bench/generate.py), on small histories."""

from __future__ import annotations

from collections import Counter
from types import ModuleType

import orjson
import pytest

from caseclock.contracts.inbound import decode_event
from caseclock.core.facts import INBOUND_TYPES
from caseclock.core.policy import Policy, load_policy
from caseclock.replay import replay
from tests.bench_modules import load_bench_module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_bench_module("generate.py", "bench_generate")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


# A low arrival rate stretches a few thousand events over a day or so, so that update clocks
# (4 h for P1) have time to fall due within the history.
N = 4000
RATE = 30.0


@pytest.fixture(scope="module")
def lines(gen: ModuleType) -> list[bytes]:
    return list(gen.iter_events(N, 11, rate=RATE))


def test_exact_count_and_deterministic_per_seed(gen: ModuleType, lines: list[bytes]) -> None:
    assert len(lines) == N
    assert list(gen.iter_events(N, 11, rate=RATE)) == lines
    assert list(gen.iter_events(N, 12, rate=RATE)) != lines


def test_start_is_honoured(gen: ModuleType, policy: Policy) -> None:
    first = decode_event(next(gen.iter_events(10, 3, "2027-03-01T12:00:00Z")), policy)
    assert first.occurred_at.year == 2027 and first.occurred_at.month == 3


def test_every_line_decodes_and_all_types_present(lines: list[bytes], policy: Policy) -> None:
    types: Counter[str] = Counter()
    for line in lines:
        assert b"\n" not in line
        ev = decode_event(line, policy)
        types[ev.type] += 1
    assert set(types) == set(INBOUND_TYPES) - LIFECYCLE_TYPES
    assert types["case-noted"] > types["case-opened"]


LIFECYCLE_TYPES = {"status-changed", "case-reopened"}


def test_pauses_add_status_changes_and_reopens_only(
    gen: ModuleType, lines: list[bytes], policy: Policy
) -> None:
    with_pauses = list(gen.iter_events(N, 11, rate=RATE, pauses=True))
    types = Counter(decode_event(line, policy).type for line in with_pauses)
    assert set(types) == set(INBOUND_TYPES)
    assert types["status-changed"] > 0 and types["case-reopened"] > 0
    assert with_pauses != lines


def test_delivery_faults_present(gen: ModuleType, policy: Policy) -> None:
    stats = gen.GeneratorStats()
    lines = list(gen.iter_events(20_000, 5, stats=stats))
    # duplicates: same bytes, hence the same event_id
    by_bytes = Counter(lines)
    dups = [line for line, n in by_bytes.items() if n > 1]
    assert dups, "expected some duplicated deliveries"
    ids = Counter(orjson.loads(line)["event_id"] for line in lines)
    assert sum(n - 1 for n in ids.values()) == sum(n - 1 for n in by_bytes.values())
    assert 0.001 < sum(n - 1 for n in ids.values()) / len(lines) < 0.02
    # out of order: some lines arrive with an occurred_at older than one already delivered
    events = [decode_event(line, policy) for line in lines]
    latest = None
    late = 0
    for ev in events:
        if latest is not None and ev.occurred_at < latest:
            late += 1
        latest = ev.occurred_at if latest is None or ev.occurred_at > latest else latest
    assert late > 0
    # a note arrives before its case-opened
    opened: set[str] = set()
    early_notes = 0
    for ev in events:
        if ev.type == "case-opened":
            opened.add(ev.case_id)
        elif ev.type == "case-noted" and ev.case_id not in opened:
            early_notes += 1
    assert early_notes > 0
    assert stats.lines == len(lines) and stats.duplicates > 0 and stats.delayed > 0


def test_priority_mix(gen: ModuleType, policy: Policy) -> None:
    prios = Counter(
        orjson.loads(line)["priority"]
        for line in gen.iter_events(20_000, 2)
        if b'"type":"case-opened"' in line
    )
    total = sum(prios.values())
    assert 0.06 < prios[1] / total < 0.14
    assert 0.29 < prios[2] / total < 0.41
    assert 0.48 < prios[3] / total < 0.62


def test_replay_fires_all_alert_types(lines: list[bytes], policy: Policy) -> None:
    alerts = replay((decode_event(line, policy) for line in lines), policy)
    kinds = Counter((a.type, a.stage) for a in alerts)
    assert {t for t, _ in kinds} == {"ack-due", "update-due", "elevate-to-l2"}
    assert kinds[("ack-due", "breach")] > 0
    assert kinds[("update-due", "breach")] > 0
    assert any(a.reason == "eta-passed" for a in alerts)
    assert any(a.reason == "priority-1" for a in alerts)
    assert any(a.reason == "no-eta-or-workaround" for a in alerts)
