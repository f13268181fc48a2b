"""Table rows and the standing stored in them (`live.rows`): what an index rebuild reads."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from datetime import datetime

import orjson
import pytest

from caseclock.cli.simulator import iter_events
from caseclock.core.policy import load_policy, policy_fingerprint, policy_from_toml
from caseclock.core.state import CaseState
from caseclock.core.timeutil import to_us
from caseclock.live.handlers import CaseService
from caseclock.live.ports import Inbound, Origin
from caseclock.live.rows import Standing, decode_row, encode_row, read_header
from tests.factories import T0
from tests.unit.core.test_business_hours import POLICY_TOML
from tests.unit.live.fakes import FakeClock, FakeStore, service

H = 3600 * 10**6


def test_the_header_is_read_without_the_state() -> None:
    standing = Standing(False, 123, ("1", 'odd,"s":plan'), ("ack",))
    row = encode_row(CaseState("A", 1), 3, 7, standing, "fp")
    corrupt = row[: row.index(b',"s":') + 5] + b"not json at all}"
    head = read_header(corrupt, "fp")
    assert (head.partition, head.touched, head.standing) == (3, 7, standing)
    assert decode_row(row, "fp") == (CaseState("A", 1), 7, standing)


def test_a_standing_stored_under_another_fingerprint_or_format_is_not_used() -> None:
    row = encode_row(CaseState("A", 1), 0, 7, Standing(True, None, None, ()), "old")
    assert read_header(row, "new").standing is None
    assert decode_row(row, "new")[2] is None
    before_headers = orjson.dumps({"p": 2, "t": 9, "s": CaseState("B", 1).to_dict()})
    head = read_header(before_headers, "new")
    assert (head.partition, head.touched, head.standing) == (2, 9, None)


POLICY = POLICY_TOML


def test_the_policy_fingerprint_is_the_same_in_every_process_and_changes_with_a_window() -> None:
    """Sets of strings and dates iterate in a per-process order; the fingerprint must not."""
    code = (
        "import sys; from caseclock.core.policy import policy_from_toml, policy_fingerprint;"
        "print(policy_fingerprint(policy_from_toml(sys.stdin.read())))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            input=POLICY,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3", "4")
    }
    assert prints == {policy_fingerprint(policy_from_toml(POLICY))}
    changed = policy_from_toml(POLICY.replace('acknowledge = "1h"', 'acknowledge = "2h"'))
    assert policy_fingerprint(changed) not in prints
    assert policy_fingerprint(load_policy()) != policy_fingerprint(load_policy(), salt="x")


async def played(seed: int, events: int = 3000) -> tuple[CaseService, FakeStore, FakeClock]:
    """A service after a random history (pauses, reopenings, re-prioritisations) over four
    partitions, in batches of 100, with the timer firing between batches."""
    start = to_us(T0)
    svc, store, _, clock = service(start)
    history = list(iter_events(events, seed=seed, start=start // 1000, pauses=True))
    for i in range(0, len(history), 100):
        batch = []
        for j, raw in enumerate(history[i : i + 100], start=i):
            doc = orjson.loads(raw)
            key = doc["case_id"].encode()
            batch.append(Inbound(Origin(doc["type"], zlib.crc32(key) % 4, j, key), raw))
            clock.now = max(clock.now, to_us(datetime.fromisoformat(doc["occurred_at"])))
        await svc.on_inputs(batch)
        await svc.on_due(svc.due(clock.now, range(4)))
    return svc, store, clock


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_rebuild_from_headers_equals_one_from_states_and_the_live_gauges(
    seed: int,
) -> None:
    """After random histories, a rebuild that reads only the rows' headers yields the same
    deadline index and gauges as one that decodes every state, and the gauges the live
    handlers kept."""
    svc, store, _ = await played(seed)
    assert any(
        r.startswith(b'{"p":') and b'"h":["' in r and b',"ack"' in r for r in store.rows.values()
    )
    live = (
        {p: +c for p, c in svc.open_counts.items()},
        {p: +c for p, c in svc.risk_counts.items()},
    )

    def rebuild(fingerprint: str) -> tuple[object, ...]:
        svc.fingerprint = fingerprint
        svc.begin_rebuild(range(4))
        n = sum(svc.index_row(k, row) for (_, k), row in store.rows.items())
        return (
            n,
            {p: sorted(i.items()) for p, i in svc.indexes.items()},
            {p: +c for p, c in svc.open_counts.items()},
            {p: +c for p, c in svc.risk_counts.items()},
        )

    stored_under = svc.fingerprint
    from_headers = rebuild(stored_under)
    from_states = rebuild("another policy")
    assert from_headers == from_states
    assert from_headers[0] == len(store.rows)
    assert (from_headers[2], from_headers[3]) == live
