"""The table's changelog read back: the latest row of every case against replay's state of it.

`latest_rows` reads `<app_id>-cases-changelog` to its end with a plain consumer (no group) and
keeps the last record of each key: what a worker with an empty data dir recovers.
`row_mismatches` folds the exact bytes sent with the engine, as `caseclock replay` does, and
compares each case's state with the one its latest row holds (`caseclock.live.rows`).

What is compared is every fact: the fields of `CaseState` that fold an inbound event
(opening, plan, customer, subject, priority, communications, ETA, workaround, resolutions,
statuses), which fold by min/max and ordered sets, so the order a worker applied them in
does not matter and they must be equal; and the event ids applied (`seen`, the digests of
the last SEEN_DIGESTS), as a set, for every case that had no more than SEEN_DIGESTS distinct
ones (a neutral note changes nothing but `seen`, so only this finds it missing). Not compared:
`created` (the worker's clock when it first heard of the case), and what was emitted (the
once-per-case flags and the update clock's high-water mark: the alert comparison's business).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from caseclock.core.engine import Engine
from caseclock.core.facts import InboundEvent
from caseclock.core.state import SEEN_DIGESTS, CaseState, digest, seen_in
from caseclock.core.timeutil import parse_duration, to_us
from caseclock.live.rows import decode_row
from tests.integration.deployment import Deployment
from tests.integration.expectations import accepted_events, load_test_policy
from tests.integration.kafka_io import read_all
from tests.integration.scripts import Sent
from tests.integration.times import US

NOT_FACTS = frozenset({"cr", "em", "ut", "sn"})
"""Fields of CaseState.to_dict that are not compared as facts (see the module docstring)."""


def changelog_topic(dep: Deployment) -> str:
    return f"{dep.app_id}-cases-changelog"


async def latest_rows(dep: Deployment) -> dict[str, bytes | None]:
    """Case -> the value of its latest changelog record (None: a tombstone)."""
    records = await read_all(dep.bootstrap, [changelog_topic(dep)], idle=0.5, give_up_after=120)
    latest: dict[str, bytes | None] = {}
    for _topic, _partition, _offset, key, value in records:  # a partition's in offset order
        if key is not None:
            latest[key.decode()] = value
    return latest


def row_mismatches(
    dep: Deployment,
    sent: Sequence[Sent],
    rows: Mapping[str, bytes | None],
    *,
    t0_us: int,
    cutoff_us: int,
) -> tuple[list[str], dict[str, Any]]:
    """Every case whose latest changelog row does not hold exactly the facts replay applied,
    one line each, and the figures (cases, rows, what differed). A case without a row (or
    with a tombstone) is one, unless replay has it closed since longer than the retention
    before the cut-off (the worker purged it)."""
    engine = Engine(load_test_policy(dep))
    retention = parse_duration(dep.extra_env.get("CASECLOCK_RETENTION", "7d"))
    states: dict[str, CaseState] = {}
    applied: dict[str, dict[bytes, InboundEvent]] = {}
    last: dict[str, int] = {}
    for ev in accepted_events(dep, sorted(sent, key=lambda s: s.at_us)):
        t = to_us(ev.occurred_at)
        states[ev.case_id], _ = engine.apply(states.get(ev.case_id), ev, t, t)
        applied.setdefault(ev.case_id, {}).setdefault(digest(ev.event_id), ev)
        last[ev.case_id] = max(last.get(ev.case_id, t), t)

    def at(ev: InboundEvent) -> str:
        return f"{ev.event_id} {ev.type} at {(to_us(ev.occurred_at) - t0_us) / US:.2f}s"

    problems: list[str] = []
    fields: Counter[str] = Counter()
    missing_types: Counter[str] = Counter()
    seen_compared = 0
    for case, want in sorted(states.items()):
        row = rows.get(case)
        if row is None:
            closed = want.resolved or not want.opened
            if not (closed and last[case] + retention <= cutoff_us):
                gone = "a tombstone" if case in rows else "no row"
                problems.append(f"{case}: {gone} in the changelog; replay: {want.to_dict()}")
                fields["row"] += 1
            continue
        got, _touched, _standing = decode_row(row)
        have, need = got.to_dict(), want.to_dict()
        differ = sorted(
            k for k in (have.keys() | need.keys()) - NOT_FACTS if have.get(k) != need.get(k)
        )
        lacking: list[InboundEvent] = []
        if len(applied[case]) <= SEEN_DIGESTS:
            seen_compared += 1
            lacking = [ev for d, ev in applied[case].items() if not seen_in(got.seen, d)]
        if differ or lacking:
            fields.update(differ)
            missing_types.update(ev.type for ev in lacking)
            diff = "; ".join(f"{k}: row {have.get(k)!r}, replay {need.get(k)!r}" for k in differ)
            events = ", ".join(at(ev) for ev in lacking)
            problems.append(
                f"{case}: latest row lacks what replay applied: {diff or 'facts equal'}"
                f"{'; events not in the row: ' + events if events else ''}"
            )
    strays = sorted(rows.keys() - states.keys())
    problems.extend(f"{case}: a row for a case never sent" for case in strays)
    figures = {
        "cases": len(states),
        "rows": sum(1 for v in rows.values() if v is not None),
        "tombstones": sum(1 for v in rows.values() if v is None),
        "seen_compared": seen_compared,
        "cases_behind": len(problems),
        "fields_behind": dict(fields),
        "events_missing_by_type": dict(missing_types),
    }
    return problems, figures
