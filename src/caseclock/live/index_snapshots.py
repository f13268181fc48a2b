"""Index snapshots: a partition's deadline index and gauge counts, saved at a clean stop and
every CASECLOCK_SNAPSHOT_INTERVAL, so that a restart with the data directory kept need not
read every row again.

Rebuilding the index from the table reads and parses every row (about 6 s per million rows on
a 2-core machine, most of a kept restart; bench/results/). What the rebuild yields is small: a
deadline per case, and the partition's counts for the gauges. A worker that stops cleanly
writes exactly that, per partition, into the data directory beside its RocksDB databases,
with the two things that say when it may be trusted:

- the table's changelog offset it was taken at: the offset RocksDB stores for the partition
  (`Store.persisted_offset`) moves with every row written and acknowledged after the snapshot,
  by this worker or, while it was away, by another one whose changelog a recovery then
  replays. A snapshot whose offset is not the stored one is stale and is not used;
- the rows' fingerprint (policy, row format, core code: `live.rows.row_fingerprint`): a
  snapshot taken under another policy or version holds other deadlines.

A snapshot taken at a clean stop is exact: every row was written and acknowledged first, so
its offset is the stored one and the restart uses it as it is. A snapshot taken while the
worker runs (every CASECLOCK_SNAPSHOT_INTERVAL, between handler calls) is what a worker
killed later comes back to. Its offset is the last one acknowledged when it was taken, and
its index holds every row up to that offset and possibly a few more (rows handed to the
producer and not yet acknowledged; an index entry earlier than its row's next deadline only
makes the timer look at the case, find nothing due, and schedule it again). What it lacks
are the rows written after it: `changes_since` names the changelog offsets whose keys the
restart reads again from their rows (`live.changelog_keys`), and the partition's gauge counts,
which the snapshot holds as they were, are counted again from the rows once the worker is
ready. A row that reached RocksDB and never the changelog (a kill in between) belongs to input
not yet committed, which is read again: a duplicate schedules its case by the row it finds.

A snapshot is read once: the first index rebuild after start takes every snapshot file (and
deletes it) whether or not it is used, so a worker cannot come back to a snapshot older than
the next one it saves. Kafka Streams treats its `.checkpoint` file the same way. A partition
without a usable snapshot is rebuilt from its rows, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("caseclock")

FORMAT = 1
"""The snapshot files' own format; a file of another format is not read."""

SUFFIX = ".index"


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """One partition's deadline index and gauge counts, valid at `offset` under `fingerprint`."""

    partition: int
    fingerprint: str
    offset: int | None
    """The table changelog offset stored for the partition when the snapshot was taken (None:
    the partition never had a row written)."""
    keys: list[str]
    dues: list[int]
    """The index: `dues[i]` is when the timer must look at case `keys[i]` again."""
    opens: Counter[tuple[str, str]]
    """caseclock_open_cases by (priority, plan)."""
    risks: Counter[tuple[str, str]]
    """caseclock_cases_at_risk by (clock, priority)."""

    def changes_since(self, fingerprint: str, offset: int | None) -> range | None:
        """The changelog offsets, up to `offset` (the one the partition's store is at now),
        whose rows this snapshot may not hold: empty when it is exact, None when it cannot
        be used (taken under another fingerprint, or ahead of the store: rows it knew of
        are gone)."""
        if self.fingerprint != fingerprint:
            return None
        if offset is None:
            return range(0) if self.offset is None else None
        if self.offset is not None and self.offset > offset:
            return None
        return range(0 if self.offset is None else self.offset + 1, offset + 1)


CHANGED_KEYS_MIN_LIMIT = 10_000
"""A snapshot behind its store by at most max(this, a quarter of its cases) changelog records
is restored and those records' keys read again; further behind, the partition's rows are read,
which then costs less."""


@dataclass
class RestorePlan:
    """Which owned partitions are restored from their index snapshots, and how."""

    exact: list[IndexSnapshot]
    """Snapshots that hold exactly what the store holds: restored as they are."""
    behind: dict[int, tuple[IndexSnapshot, range]]
    """Snapshots taken while the worker ran: restored, then the keys of the changelog
    records in the range are indexed again from their rows."""
    stale: list[int]
    """Owned partitions whose snapshot cannot be trusted (another fingerprint, ahead of the
    store, or rows written since the start): their rows are read."""
    too_far: dict[int, int]
    """Owned partitions whose snapshot is too far behind (records since): rows read."""


def plan_restore(
    snapshots: dict[int, IndexSnapshot],
    owned: Iterable[int],
    offsets: dict[int, int | None],
    fingerprint: str,
    *,
    written: bool,
) -> RestorePlan:
    """Is each owned partition's snapshot trusted, and how far behind the store is it?
    `offsets`: the changelog offset each partition's store is at; `written`: whether this
    process wrote rows already (then no snapshot of its start is exact any more)."""
    owned = set(owned)
    plan = RestorePlan([], {}, [], {})
    for p, snap in sorted(snapshots.items()):
        if p not in owned:
            continue
        since = snap.changes_since(fingerprint, offsets.get(p))
        if since is None or written:
            plan.stale.append(p)
        elif len(since) > max(CHANGED_KEYS_MIN_LIMIT, len(snap.keys) // 4):
            plan.too_far[p] = len(since)
        elif since:
            plan.behind[p] = (snap, since)
        else:
            plan.exact.append(snap)
    return plan


def encode(snap: IndexSnapshot) -> bytes:
    return orjson.dumps(
        {
            "format": FORMAT,
            "partition": snap.partition,
            "fingerprint": snap.fingerprint,
            "offset": snap.offset,
            "keys": snap.keys,
            "dues": snap.dues,
            "opens": [[*k, n] for k, n in snap.opens.items() if n],
            "risks": [[*k, n] for k, n in snap.risks.items() if n],
        }
    )


def decode(data: bytes) -> IndexSnapshot:
    """The snapshot in `data`; ValueError (with why) if it is not one this version wrote."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not an index snapshot of this format")
    try:
        keys, dues = doc["keys"], doc["dues"]
        if not isinstance(keys, list) or not isinstance(dues, list) or len(keys) != len(dues):
            raise ValueError("keys and dues differ in length")
        offset = doc["offset"]
        return IndexSnapshot(
            partition=int(doc["partition"]),
            fingerprint=str(doc["fingerprint"]),
            offset=None if offset is None else int(offset),
            keys=keys,
            dues=dues,
            opens=_counts(doc["opens"]),
            risks=_counts(doc["risks"]),
        )
    except (KeyError, TypeError) as e:
        raise ValueError(f"malformed: {e!r}") from None


def _counts(rows: Any) -> Counter[tuple[str, str]]:
    return Counter({(str(a), str(b)): int(n) for a, b, n in rows})


class SnapshotDir:
    """Snapshot files in one directory (in the data directory: wiping it wipes them)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _file(self, partition: int) -> Path:
        return self.path / f"partition-{partition}{SUFFIX}"

    def save(self, snaps: Iterable[IndexSnapshot]) -> int:
        """Write each snapshot (to a temporary file, then renamed, so a stop cut short
        leaves a whole file or none); returns how many were written."""
        self.path.mkdir(parents=True, exist_ok=True)
        n = 0
        for snap in snaps:
            final = self._file(snap.partition)
            tmp = final.with_suffix(".tmp")
            with tmp.open("wb") as f:
                f.write(encode(snap))
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(final)
            n += 1
        return n

    def take(self) -> dict[int, IndexSnapshot]:
        """Read and delete every snapshot file (see the module docstring: read once). A file
        that cannot be read is logged and deleted: its partition is rebuilt from its rows."""
        out: dict[int, IndexSnapshot] = {}
        if not self.path.is_dir():
            return out
        for f in sorted(self.path.iterdir()):
            if f.suffix not in (SUFFIX, ".tmp"):
                continue
            try:
                if f.suffix == SUFFIX:
                    snap = decode(f.read_bytes())
                    out[snap.partition] = snap
            except (OSError, ValueError) as e:
                log.warning("caseclock: ignoring index snapshot %s: %s", f.name, e)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
        return out
