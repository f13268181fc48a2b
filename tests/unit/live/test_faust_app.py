"""The Faust adapter's own logic (no broker: the app is built, never started)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from caseclock.core.policy import load_policy
from caseclock.live import faust_compat
from caseclock.live.catch_up import NotSeekedYet
from caseclock.live.config import Config
from caseclock.live.faust_app import CaseClock


def test_the_start_up_recovery_is_watched() -> None:
    svc = CaseClock(Config.from_env({"CASECLOCK_RECOVERY_TIMEOUT": "10"}), load_policy())
    assert svc.watch.recovering  # the start-up recovery counts too
    assert svc.watch.timeout_us == 10 * 10**6


async def test_an_outdated_recovery_completion_is_ignored() -> None:
    """A recovery that began before the latest revocation (a callback of an older
    generation, run late) must not mark the worker ready for partitions it no longer owns."""
    svc = CaseClock(Config.from_env({}), load_policy())
    recovery = faust_compat.table_recovery(svc.app)
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
    svc.ready = True
    svc.watch.done()

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return svc.registry.get_sample_value(name, labels or {})

    assert value("caseclock_partitions_owned") == 2
    await svc._on_revoked(None, set())
    assert value("caseclock_partitions_owned") == 0
    assert value("caseclock_open_cases", {"priority": "1", "plan": "support-plus"}) is None
    assert value("caseclock_cases_at_risk", {"clock": "ack", "priority": "1"}) is None
    assert value("caseclock_recovery_complete") == 0
    assert not svc.ready and svc.watch.recovering


async def test_alerts_held_through_a_broker_outage_make_every_partition_wait_for_its_input() -> (
    None
):
    """A chunk of due cases whose alerts were acknowledged only after the retry delay (a
    broker outage the group survived): every partition is served again as after a takeover,
    once its input is read; a chunk acknowledged at once changes nothing."""
    cc = CaseClock(Config.from_env({}), load_policy())
    outcomes = iter([True, False])

    async def on_due(due: Any) -> bool:
        return next(outcomes)

    async def flush() -> None:
        return None

    cc.svc.on_due = on_due  # type: ignore[method-assign]
    cc.store.flush = flush  # type: ignore[method-assign]
    cc.catch_up.served = {0, 1}
    await cc._fire_chunk([(0, [("A", 1)])])
    assert cc.catch_up.served == set()

    cc.catch_up.served = {0, 1}
    await cc._fire_chunk([(0, [("A", 1)])])
    assert cc.catch_up.served == {0, 1}


def test_owned_partitions_are_read_again_only_for_a_new_assignment() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    tick = cc.cfg.input_topics[0]
    calls = []

    class Assignor:
        def __init__(self, actives: set[tuple[str, int]]) -> None:
            self._assignment = object()
            self.actives = actives

        def assigned_actives(self) -> list[SimpleNamespace]:
            calls.append(1)
            return [SimpleNamespace(topic=t, partition=p) for t, p in self.actives]

    assignor = Assignor({(tick, 0), (tick, 2), ("caseclock-cases-changelog", 5)})
    cc.app.assignor = assignor  # type: ignore[assignment]
    assert cc.owned_partitions() == {0, 2}
    assert cc.owned_partitions() == {0, 2} and len(calls) == 1
    assignor._assignment, assignor.actives = object(), {(tick, 1)}  # a rebalance
    assert cc.owned_partitions() == {1} and len(calls) == 2


async def test_a_taken_over_partition_is_not_taken_for_read_before_its_streams_are_seeked() -> None:
    """Faust seeks the streams after the recovery callback: until then a position is unknown,
    and that is no reason to serve the partition at once (a false breach before the input the
    previous process left is read); after CATCH_UP_HOLD_S it is served anyway."""
    cc = CaseClock(Config.from_env({"CASECLOCK_INPUT_TOPICS": "a,b"}), load_policy())
    ends = {("a", 0): 8, ("b", 0): 3}
    positions: dict[tuple[str, int], int | None] = {("a", 0): None, ("b", 0): 3}

    class Consumer:
        async def highwaters(self, *tps: Any) -> dict[Any, int]:
            return {tp: ends[(tp.topic, tp.partition)] for tp in tps}

        async def position(self, tp: Any) -> int | None:
            return positions[(tp.topic, tp.partition)]

    cc.app.consumer = Consumer()  # type: ignore[assignment]
    with pytest.raises(NotSeekedYet):
        await cc._input_backlog({0}, positions_known=True)
    assert await cc._input_backlog({0}, positions_known=False) == {0: {}}
    assert await cc._served_partitions({0}, 1) == set()  # not seeked: asked again
    assert cc.catch_up.unseeked_since == 1
    positions[("a", 0)] = 5  # seeked to the committed offset
    assert await cc._input_backlog({0}, positions_known=True) == {0: {("a", 0): 8}}
    assert await cc._served_partitions({0}, 2) == set()  # waits for a's offsets 5..7
    cc._read[("a", 0)] = 7  # read (and applied) up to the end
    assert await cc._input_backlog({0}, positions_known=True) == {0: {}}
    assert await cc._served_partitions({0}, 3) == {0}


def test_rocksdb_memory_is_bounded_as_configured(tmp_path: Any) -> None:
    """The table's RocksDB databases get the configured write buffers and block cache, not
    Faust's defaults (3 x 64 MiB and 2 GiB per partition)."""
    env = {
        "CASECLOCK_STORE": "rocksdb://",
        "CASECLOCK_DATA_DIR": str(tmp_path),
        "CASECLOCK_ROCKSDB_WRITE_BUFFER_MB": "4",
        "CASECLOCK_ROCKSDB_BLOCK_CACHE_MB": "16",
    }
    store: Any = CaseClock(Config.from_env(env), load_policy()).table.data
    options = store.rocksdb_options
    assert options.write_buffer_size == 4 * 1024 * 1024
    assert options.max_write_buffer_number == 2
    assert options.block_cache_size == 16 * 1024 * 1024
    opened = options.open(tmp_path / "probe.db")  # and RocksDB accepts them
    opened[b"k"] = b"v"
    assert opened[b"k"] == b"v"
    opened.close()


def test_the_memory_store_takes_no_rocksdb_options() -> None:
    svc = CaseClock(Config.from_env({"CASECLOCK_STORE": "memory://"}), load_policy())
    assert not svc.table.options


async def test_only_recoveries_after_the_first_wait_the_recovery_delay() -> None:
    svc = CaseClock(Config.from_env({"CASECLOCK_RECOVERY_DELAY": "3"}), load_policy())
    recovery = faust_compat.table_recovery(svc.app)
    assert recovery.recovery_delay == 0  # the start-up recovery makes the worker ready
    await svc._on_recovered()
    assert recovery.recovery_delay == 3


async def test_a_clean_stop_saves_the_index_snapshots_the_next_start_takes_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"CASECLOCK_DATA_DIR": str(tmp_path), "CASECLOCK_STORE": "rocksdb://"}
    svc = CaseClock(Config.from_env(env), load_policy())
    svc.svc.begin_rebuild({0, 3})
    svc.svc.indexes[3].schedule("A", 10)
    svc.store.offsets.update({0: None, 3: 41})

    async def settled(**kwargs: Any) -> bool:
        return True

    monkeypatch.setattr(svc.store, "settle", settled)
    await svc._on_shutdown()  # not ready (a stop during a rebalance): the index is not whole
    assert svc._stopping and not any(tmp_path.rglob("*.index"))

    svc.ready = True
    await svc._on_shutdown()
    assert not svc.ready
    assert sorted(f.name for f in tmp_path.rglob("*.index")) == [
        "partition-0.index",
        "partition-3.index",
    ]
    again = CaseClock(Config.from_env(env), load_policy())
    taken = again._take_snapshots()
    assert taken[3].changes_since(again.svc.fingerprint, 41) == range(0) and taken[3].keys == ["A"]
    assert again._take_snapshots() == {}  # once
    assert not any(tmp_path.rglob("*.index"))


async def test_a_running_worker_saves_snapshots_at_the_acknowledged_offsets(
    tmp_path: Any,
) -> None:
    """The periodic save: each owned partition's index with the offset acknowledged so far
    (rows handed over and not yet acknowledged may be in the index: the restart reads again
    what came after that offset); none while not ready or once stopping."""
    env = {"CASECLOCK_DATA_DIR": str(tmp_path), "CASECLOCK_STORE": "rocksdb://"}
    svc = CaseClock(Config.from_env(env), load_policy())
    svc.svc.begin_rebuild({0, 3})
    svc.svc.indexes[3].schedule("A", 10)
    svc.store.offsets.update({0: None, 3: 41})
    await svc._save_snapshots()  # not ready: the index is not whole yet
    assert not any(tmp_path.rglob("*.index"))
    svc.ready = True
    await svc._save_snapshots()
    taken = CaseClock(Config.from_env(env), load_policy())._take_snapshots()
    assert sorted(taken) == [0, 3]
    assert taken[3].offset == 41 and taken[3].keys == ["A"] and taken[3].dues == [10]
    svc._stopping = True  # the stop saves its own, exact ones
    await svc._save_snapshots()
    assert not any(tmp_path.rglob("*.index"))


async def test_no_snapshot_when_the_last_rows_are_not_acknowledged(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"CASECLOCK_DATA_DIR": str(tmp_path), "CASECLOCK_STORE": "rocksdb://"}
    svc = CaseClock(Config.from_env(env), load_policy())
    svc.svc.begin_rebuild({0})
    svc.ready = True

    async def unsettled(**kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(svc.store, "settle", unsettled)
    await svc._on_shutdown()
    assert not any(tmp_path.rglob("*.index"))
    memory = CaseClock(Config.from_env({"CASECLOCK_STORE": "memory://"}), load_policy())
    memory.ready = True
    await memory._on_shutdown()  # nothing to save: its rows do not outlive it
    assert memory._take_snapshots() == {}


async def test_a_restart_chooses_per_partition_between_its_snapshot_and_its_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Which snapshot is used, and how: exact as it is; behind with the changed keys read
    again; behind by more than a quarter of its cases (and CHANGED_KEYS_MIN_LIMIT), whose
    changed keys the changelog did not give in time, or ahead of the store: rows read."""
    from collections import Counter

    import caseclock.live.faust_app as faust_app
    from caseclock.live import index_snapshots
    from caseclock.live.index_snapshots import IndexSnapshot

    monkeypatch.setattr(index_snapshots, "CHANGED_KEYS_MIN_LIMIT", 2)
    svc = CaseClock(Config.from_env({"CASECLOCK_STORE": "rocksdb://"}), load_policy())
    fp = svc.svc.fingerprint
    keys = [f"C{i}" for i in range(8)]

    def snap(p: int, offset: int) -> IndexSnapshot:
        return IndexSnapshot(p, fp, offset, list(keys), [100] * 8, Counter(), Counter())

    stored = {0: 10, 1: 12, 2: 30, 3: 12, 4: 5}
    monkeypatch.setattr(svc.store, "read_offsets", lambda owned: {p: stored[p] for p in owned})
    monkeypatch.setattr(svc, "_take_snapshots", lambda: {p: snap(p, 10) for p in stored})
    asked: dict[int, range] = {}

    async def changed_keys(cfg: Any, topic: str, ranges: Any, within: float) -> Any:
        asked.update(ranges)
        return {1: {b"C1"}, 3: None}  # partition 3: not read in time

    monkeypatch.setattr(faust_app, "changed_keys", changed_keys)
    monkeypatch.setattr(svc.store, "get", lambda p, key: None)  # C1 was deleted since
    monkeypatch.setattr(type(svc.store), "topic", "cases-changelog")
    svc.svc.begin_rebuild(stored)
    restored, changed = await svc._restore_snapshots(set(stored))
    assert asked == {1: range(11, 13), 3: range(11, 13)}  # 2: 20 records > 8 // 4 and 2
    assert changed == {1: {b"C1"}}
    assert svc.svc.scanning == {2, 3, 4}  # 4: the snapshot is ahead of the store
    assert restored == 16  # partitions 0 and 1 from their snapshots; C1 then read again
    assert svc.svc.indexes[1].due_of("C1") is None and svc.svc.indexes[1].due_of("C2") == 100


# --- the commit order and fencing (docs/architecture.md, "The commit order") ------------------


def _worker_on_fake_producer(tmp_path: Any) -> tuple[CaseClock, Any]:
    from tests.unit.live.test_faust_store import FakeProducer

    env = {
        "CASECLOCK_STORE": "rocksdb://",
        "CASECLOCK_DATA_DIR": str(tmp_path),
        "CASECLOCK_PARTITIONS": "4",
        "CASECLOCK_INPUT_PARTITIONER": "any",
    }
    cc = CaseClock(Config.from_env(env), load_policy())
    fake = FakeProducer()
    cc.store._producer = fake  # type: ignore[assignment]
    return cc, fake


def _message(topic: str, partition: int, offset: int, value: bytes) -> Any:
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, key=b"CS-1", value=value
    )


async def test_input_is_acknowledged_only_once_its_rows_are_durable(tmp_path: Any) -> None:
    """`_take` returns (and the drain acknowledges the fetch) only once the changelog batch of
    the rows it wrote is acknowledged and the rows are in RocksDB; the commit watchdog counts
    the messages as read once they are handled."""
    import asyncio

    import orjson

    from tests.factories import opened

    cc, fake = _worker_on_fake_producer(tmp_path)
    doc = orjson.dumps(opened("CS-1", 0, priority=2).model_dump(mode="json"))
    take = asyncio.ensure_future(cc._take([_message("case-opened", 1, 7, doc)]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(fake.futures) == 1 and not take.done()  # handed over, not acknowledged
    assert cc._read == {("case-opened", 1): 7}
    assert cc.store._store._db_for_partition(1).get(b"CS-1") is None
    fake.ack(0, 3)
    await asyncio.wait_for(take, 5)
    assert cc.store._store._db_for_partition(1).get(b"CS-1") is not None
    data: Any = cc.table.data
    await data.stop()


async def test_revocation_waits_for_the_call_in_progress_then_fences(tmp_path: Any) -> None:
    import asyncio

    from faust.types import TP

    cc, _ = _worker_on_fake_producer(tmp_path)
    cc.store.put(2, b"CS-9", b"row")  # a timer chunk's row, staged
    async with cc._handling:  # a handler call in progress
        revoke = asyncio.ensure_future(
            cc._on_revoked(None, {TP("case-opened", 2), TP("eta-set", 2), TP("other", 3)})
        )
        for _ in range(10):
            await asyncio.sleep(0)
        assert not revoke.done() and cc.store.fenced == frozenset()
    await asyncio.wait_for(revoke, 5)
    assert cc.store.fenced == frozenset({2})
    assert cc.store.get(2, b"CS-9") is None  # dropped: the new owner sends it again
    with pytest.raises(Exception, match="revoked"):
        cc.store.put(2, b"CS-9", b"late")
    data: Any = cc.table.data
    await data.stop()


async def test_a_timer_chunk_skips_fenced_partitions_and_waits_out_a_rebalance() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    seen: list[Any] = []

    async def on_due(due: Any) -> bool:
        seen.append(due)
        return False

    cc.svc.on_due = on_due  # type: ignore[method-assign]
    cc.store.fence([1])
    await cc._fire_chunk([(0, [("A", 1)]), (1, [("B", 1)])])
    assert seen == [[(0, [("A", 1)])]]
    await cc._fire_chunk([(1, [("B", 1)])])  # nothing left: no call
    assert len(seen) == 1


def test_an_infrastructure_failure_makes_the_worker_unready() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    assert cc.failure() is None
    cc.store.failure = "rows of partition 1 not written to the store: OSError(28)"
    assert cc.failure() == cc.store.failure
    cc.store.failure = None
    cc.svc.output_failure = "alerts refused: TopicAuthorizationFailedError()"
    assert cc.failure() == cc.svc.output_failure


async def test_a_lasting_infrastructure_failure_exits_75_unless_the_broker_is_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watchdog exits (status 75, restart me) once an infrastructure failure has kept
    input unacknowledged for CASECLOCK_COMMIT_STALL_TIMEOUT while the broker answers; it
    waits while the broker does not (a restart would not bring it back), and forgets the
    failure once it clears."""
    import logging
    import os

    cc = CaseClock(Config.from_env({"CASECLOCK_COMMIT_STALL_TIMEOUT": "30"}), load_policy())
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(logging, "shutdown", lambda: None)
    answers = False

    async def broker_answers() -> bool:
        return answers

    cc._broker_answers = broker_answers  # type: ignore[method-assign]
    cc.store.failure = "rows of partition 1 not written to the store: OSError(28)"
    t0 = 1_000_000_000
    await cc._check_failure(t0)
    await cc._check_failure(t0 + 29 * 10**6)
    assert exits == [] and cc.registry.get_sample_value("caseclock_input_stopped") == 1
    await cc._check_failure(t0 + 31 * 10**6)  # the broker does not answer: wait
    assert exits == []
    answers = True
    await cc._check_failure(t0 + 32 * 10**6)
    assert exits == [75]
    cc.store.failure = None
    await cc._check_failure(t0 + 40 * 10**6)
    assert cc._failing_since is None
    assert cc.registry.get_sample_value("caseclock_input_stopped") == 0


async def test_input_waiting_on_a_full_disk_is_acknowledged_once_the_disk_is_freed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_take` tries the refused write again by itself (nothing else may flush: input is
    held and the next deadline may be hours away), and returns once it succeeds."""
    import asyncio

    import orjson

    from tests.factories import opened

    cc, fake = _worker_on_fake_producer(tmp_path)
    store: Any = cc.store._store
    real = store._db_for_partition

    class Full:
        def __init__(self, p: int) -> None:
            self.get = real(p).get  # reads work; writes need space

        def write(self, batch: object) -> None:
            raise OSError("No space left on device")

    monkeypatch.setattr(store, "_db_for_partition", Full)
    doc = orjson.dumps(opened("CS-1", 0, priority=3).model_dump(mode="json"))
    take = asyncio.ensure_future(cc._take([_message("case-opened", 1, 7, doc)]))
    for _ in range(20):
        await asyncio.sleep(0)
    fake.ack(0, 3)
    await asyncio.sleep(1.2)
    assert not take.done() and cc.failure() is not None
    monkeypatch.setattr(store, "_db_for_partition", real)  # freed
    await asyncio.wait_for(take, 5)
    assert cc.failure() is None
    assert real(1).get(b"CS-1") is not None
    await store.stop()
