"""The one door to Faust's, mode's and aiokafka's internals.

caseclock runs on faust-streaming (membership, assignment, recovery scheduling, the RocksDB
lifecycle, the web server) and replaces a few of its hot or faulty paths. Everything that
relies on something those libraries do not document as API lives in this package, and nowhere
else (`tests/unit/live/faust_compat/test_containment.py` fails on a private name used outside
it):

* `consumer`: Faust's aiokafka consumer subclassed: its commit rule replaced
  (`CommitSafeConsumer`, over the plain rule of `live.commits`), the input topics delivered a
  fetch at a time and the changelog replayed a fetch at a time (`BatchingConsumer`, forks of
  `Consumer.getmany`, `_drain_messages` and `Recovery._slurp_changelogs`), the transport
  that installs it (`CaseClockTransport`);
* `sensors`: Faust's Prometheus monitor without its per-event hooks (`LeanPrometheusMonitor`,
  a fork of `on_message_in`);
* this module: small accessors for the rest (the table's store databases, the recovery
  service's state, the assignor's assignment, the aiokafka producer inside Faust's and its
  partitioner), so the adapter (`live.faust_app`), the store (`live.faust_store`) and the
  producer (`live.producer`) read as plain code.

The versions these were written against are pinned in pyproject.toml and requirements.lock
(faust-streaming 0.15.3, mode-streaming 0.7.1, aiokafka 0.14.0).
`tests/unit/live/faust_compat/test_internals.py` checks every internal named here (present,
same signature), fingerprints the upstream routines the forks copy, and fails naming the
caseclock file to re-read when an installed version differs from the lock. To upgrade: install
the new version, run that test, re-read each file it names against the new upstream source,
then update the lock, the pins and the expected fingerprints together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# --- the table's stores ----------------------------------------------------------------------


def is_rocksdb(store: Any) -> bool:
    """Whether a Faust table store is the RocksDB one (it keeps a database per partition)."""
    return hasattr(store, "_db_for_partition")


def partition_db(store: Any, partition: int) -> Any:
    """The RocksDB database of one partition of a Faust RocksDB store (`rocksdict.Rdict`,
    raw mode). Opened lazily by Faust, also after it let go of it on a revocation or a stop
    (which is why the commit order fences revoked partitions first: `live.faust_store`)."""
    return store._db_for_partition(partition)


def visible_items(store: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, row) of one partition's RocksDB database, without Faust's offset key; reads a
    point-in-time view (RocksDB iterators read a snapshot)."""
    items: Iterator[tuple[bytes, bytes]] = store._visible_items(store._db_for_partition(partition))
    return items


def offset_key(store: Any) -> bytes:
    """The key under which Faust's RocksDB store keeps a partition's changelog offset (what
    its recovery starts from when the data directory is kept)."""
    key: bytes = store.offset_key
    return key


def memory_rows(store: Any) -> tuple[dict[bytes, Any], dict[bytes, int]]:
    """A Faust memory store's rows and its key -> partition map (which its revocation reads
    to drop a revoked partition's rows)."""
    return store.data, store._key_partition


# --- the app: producer, assignment, recovery ----------------------------------------------------


def aiokafka_producer(app: Any) -> Any:
    """The aiokafka producer inside Faust's (created when the worker starts)."""
    return app.producer._ensure_producer()


def assignment_token(app: Any) -> object:
    """An object that changes whenever the assignor takes a new assignment (its assignment
    itself): reading the assigned partitions again only then saves building Faust's set of
    every assigned topic-partition on each timer run."""
    return app.assignor._assignment


def table_recovery(app: Any) -> Any:
    """Faust's table recovery service (`app.tables.recovery`, not in the public types)."""
    return app.tables.recovery


def recovery_marker(app: Any) -> tuple[int, int, bool, int]:
    """What changes while a recovery makes progress: a new rebalance or generation, the
    recovery's phase, the changelog offsets it applied."""
    rec = app.tables.recovery
    applied = sum(int(v) for v in rec.active_offsets.values() if v is not None)
    return (app.rebalancing_count, app.consumer_generation_id, bool(rec.in_recovery), applied)


def recovery_started_at(app: Any) -> float | None:
    """time.monotonic() when the current table recovery began (None before the first)."""
    started: float | None = app.tables.recovery._recovery_started_at
    return started


def set_recovery_delay(app: Any, seconds: float) -> None:
    """How long the next recoveries wait after a rebalance (Faust reads it every round)."""
    app.tables.recovery.recovery_delay = seconds


def commit_bookkeeping(consumer: Any, tp: Any) -> dict[str, Any]:
    """What Faust's consumer holds for `tp` about commits, for a log line when they are
    stuck: the offset it believes committed, the one it read last, the acknowledged offsets
    waiting, the gaps it recorded, and the delivered messages never acknowledged."""
    return {
        "committed": consumer._committed_offset.get(tp),
        "read": consumer._read_offset.get(tp),
        "acked": sorted(consumer._acked.get(tp, ())),
        "gaps": sorted(consumer._gap.get(tp, ())),
        "unacked": sorted(m.offset for m in list(consumer._unacked_messages) if m.tp == tp),
    }


# --- the aiokafka producer's partitioner ------------------------------------------------------


def uses_default_partitioner(producer: Any) -> bool:
    """Whether the aiokafka producer partitions keys with its default (murmur2) partitioner."""
    from aiokafka.partitioner import DefaultPartitioner

    return isinstance(producer._partitioner, DefaultPartitioner)


def known_partitions(producer: Any, topic: str) -> list[int]:
    """The topic's partitions in the order aiokafka's partitioner indexes them (its metadata
    must have been fetched: `partitions_for`)."""
    return list(producer._metadata.partitions_for_topic(topic) or ())


def partition_of(producer: Any, topic: str, key: bytes | None, value: bytes | None) -> int:
    """The partition aiokafka's own partitioner gives a record (any partitioner)."""
    p: int = producer._partition(topic, None, key, value, key, value)
    return p
