"""Every implementation of the `CaseStore` port, behind one small handle for the contract suite.

The service layer is unit-tested against `FakeStore` and runs in production on the Faust
table's local store (`TableStore`) with `memory://` or `rocksdb://`. The fake is only a valid
stand-in if it keeps the promises the real stores keep, so `test_case_store.py` runs one suite
over all of them, the way quix-streams runs its store tests over every store with a
parametrized fixture.

The Faust stores are driven in-process, without a broker: a `CaseClock` is built (never
started) and its `TableStore` (caseclock.live.faust_store) is the store under test. Writes are
kept as changelog records until the worker flushes them to the producer; `changelog()` takes
them from there (that they reach the broker and a recovery reads them back is
tests/integration/test_store_recovery.py).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from caseclock.core.policy import load_policy
from caseclock.live.config import TABLE_STORES, Config
from caseclock.live.faust_app import CaseClock
from caseclock.live.ports import CaseStore
from caseclock.live.producer import Record
from tests.unit.live.fakes import FakeStore

PARTITIONS = 4

KINDS = ("fake", *TABLE_STORES)
PARTITIONED = ("fake", "rocksdb://")
"""Stores that keep one key's rows in two partitions apart. `memory://` keeps one dict for
the whole table: the port allows that, because a case key only ever comes with one partition
(its messages' partition: co-partitioning)."""
PERSISTENT = ("rocksdb://",)
"""Stores whose rows outlive the process when the data directory is kept."""
CHANGELOGGED = TABLE_STORES
"""Stores that mirror every write to a Kafka changelog (what recovery replays)."""


@dataclass(frozen=True, slots=True)
class ChangelogRecord:
    """One record the store handed to the producer for its changelog topic."""

    topic: str
    partition: int | None
    key: bytes
    value: bytes | None


class AckingProducer:
    """A producer the broker acknowledges at once: one batch per partition per call, at the
    partition's next offsets."""

    def __init__(self) -> None:
        self.sent: list[Record] = []
        self._next: dict[int | None, int] = {}

    async def send(self, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
        self.sent.extend(records)
        loop = asyncio.get_running_loop()
        batches: dict[int | None, asyncio.Future[Any]] = {}
        counts: dict[int | None, int] = {}
        out = []
        for r in records:
            if r.partition not in batches:
                batches[r.partition] = loop.create_future()
            counts[r.partition] = counts.get(r.partition, 0) + 1
            out.append(batches[r.partition])
        for p, fut in batches.items():
            first = self._next.get(p, 0)
            self._next[p] = first + counts[p]
            fut.set_result(SimpleNamespace(offset=first))
        return out


@dataclass
class StoreUnderTest:
    """A store of one kind, and what the suite needs to restart it or see its changelog."""

    kind: str
    data_dir: Path
    store: CaseStore = field(init=False)
    _clock: CaseClock | None = field(init=False, default=None)
    _producer: AckingProducer = field(init=False, default_factory=lambda: AckingProducer())

    def __post_init__(self) -> None:
        self.store = self._open()

    def _open(self) -> CaseStore:
        if self.kind == "fake":
            return FakeStore()
        env = {
            "CASECLOCK_STORE": self.kind,
            "CASECLOCK_DATA_DIR": str(self.data_dir),
            "CASECLOCK_PARTITIONS": str(PARTITIONS),
        }
        cc = CaseClock(Config.from_env(env), load_policy())
        self._clock = cc
        cc.store._producer = self._producer  # type: ignore[assignment]
        return cc.store

    async def restart(self) -> None:
        """Stop the store as a worker's shutdown does, and open it again over the same data
        directory in a new `CaseClock`: what a restarted worker finds before any recovery.
        A stopping worker settles its store (every staged row handed over, acknowledged and
        written to RocksDB) before its snapshots: so here, with a producer that acknowledges
        at once."""
        if self._clock is not None:
            assert await self._clock.store.settle(within=5)
        await self.close()
        self.store = self._open()

    async def close(self) -> None:
        if self._clock is not None:
            data: Any = self._clock.table.data
            await data.stop()
            self._clock = None
            gc.collect()  # rocksdict closes a database when it is collected

    async def changelog(self) -> list[ChangelogRecord]:
        """The changelog records handed to the producer by a flush now, and by the flushes
        since the last call (and takes them)."""
        assert self._clock is not None, f"{self.kind} has no changelog"
        await self._clock.store.flush()
        sent, self._producer.sent = self._producer.sent, []
        return [ChangelogRecord(r.topic, r.partition, r.key or b"", r.value) for r in sent]

    @property
    def changelog_topic(self) -> str:
        assert self._clock is not None
        name: str = self._clock.table.changelog_topic.get_topic_name()
        return name
