"""What the service layer needs from the outside world, as small protocols.

The Faust adapter implements them over a Faust table and Faust topics; tests implement them
in memory (`tests/unit/live/fakes.py`; the fake store is held to the same contract suite as
the real ones, `tests/contract/`). Keeping them this small is what lets the handlers be
tested without a broker, and lets another runtime drive the same handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, Protocol


class CaseStore(Protocol):
    """Rows of case state (bytes) by case key, per partition.

    The partition is passed because a partitioned store (Faust's table with RocksDB, its
    changelog) must know which partition a row belongs to; it is always the partition the
    case's messages come from (co-partitioning), so one key only ever comes with one
    partition, and a store need not keep the same key in two partitions apart (Faust's
    memory:// does not; RocksDB and the test fake do).

    The contract, checked over every implementation by tests/contract/test_case_store.py:
    `get` of an absent row is None; `get` returns the bytes last `put`; `delete` removes the
    row, and deleting an absent row is harmless. Faust's stores also send every write and
    delete to the row's changelog partition, so a worker recovers the rows, from its RocksDB
    data directory when it is kept, from the changelog when it is not."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def put(self, partition: int, key: bytes, row: bytes) -> None: ...

    def delete(self, partition: int, key: bytes) -> None: ...


class Outbox(Protocol):
    """Where records go: alerts by type and dead letters, as (channel, key, value).

    `send_all` hands every record to the producer, in order, and returns per record an
    awaitable that completes when the broker acknowledged it (or raises why not); records
    produced in one batch share one. Handlers hand a whole batch over and then wait, so a
    batch costs one round trip, not one per record."""

    async def send_all(
        self, records: Sequence[tuple[str, bytes | None, bytes]]
    ) -> list[Awaitable[object]]: ...


Clock = Callable[[], int]
"""Wall-clock time in integer microseconds since the epoch."""

ALERT_CHANNELS = ("ack-due", "update-due", "elevate-to-l2")
DEAD_LETTERS = "dead-letters"


class Origin(NamedTuple):
    """Where a message came from: what a dead letter must name. (A named tuple rather than a
    frozen dataclass, as `Inbound`: one of each is built per input message, and a frozen
    dataclass's `__init__` sets each field through `object.__setattr__`; dataclass-generated
    `__init__`s were 3 % of an ingest profile's samples,
    bench/results/live-ingest-profile-2026-12-02.txt.)"""

    topic: str
    partition: int
    offset: int
    key: bytes | None


class Inbound(NamedTuple):
    """One message of an input topic, as the handlers receive it."""

    origin: Origin
    value: bytes | None
