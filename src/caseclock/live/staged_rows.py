"""Rows written but not yet durable, in the order they must become durable.

The commit order of the worker (docs/architecture.md, "The commit order") is Kafka Streams':
a row reaches the local store (RocksDB) only once its changelog record is acknowledged by the
broker, and an input offset is acknowledged only once every row that reflects it is. So the
local store never holds a row whose changelog record may be lost: a worker killed between the
two finds in RocksDB only rows the changelog also holds, reads its uncommitted input again and
writes the rows again, and a partition that moves to a worker without that disk loses nothing.
(The first version wrote RocksDB first: a kill in between left rows the changelog never got,
and the input read again was all duplicates, so nothing sent them: issue 20.)

This module holds that bookkeeping, pure (no Faust, no Kafka, no clock), per partition:

* the **open layer**: rows written since the last flush (key -> row, None for a delete; a
  case is written once per handler call, and the changelog needs only its last row);
* **sealed layers**, oldest first: each flush seals the open layers and hands their rows to
  the producer; a layer is *acknowledged* when every batch it went out in was, and it is
  *applied* (written to the local store with its last changelog offset) strictly in order,
  oldest first, so the store never gets an older row after a newer one.

Reads see the newest row: open layer, then sealed layers newest first, then the local store.

A layer a batch of which failed (after the producer's own retries) goes back into the open
layer: each of its keys that no newer layer writes again is sent again with that row at the
next flush. Its rows never reach the store out of order, and the changelog gets them later.

Durability is tracked by seal number: every flush is one seal; a layer remembers the oldest
seal whose rows it carries (`origin`: a layer sent again carries its failed layer's origin).
`durable(n)` says whether everything sealed up to seal n is acknowledged and applied, which is
what the adapter waits for before it acknowledges a handler call's input.

On revocation the partitions' layers are dropped (`drop`): what they hold is either in the
changelog already, or reflects input this worker has not acknowledged (the new owner reads it
again) or alerts whose row is lost (the new owner sends them again, with the same alert_id).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_ABSENT = object()


class Layer:
    """Rows of one partition sealed by one flush (or still open)."""

    __slots__ = ("acked", "failed", "last_offset", "origin", "partition", "rows", "waiting")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.rows: dict[bytes, bytes | None] = {}
        self.origin: int | None = None
        """The oldest seal whose rows this layer carries (None: open and fresh)."""
        self.waiting = 0
        """Batches handed to the producer and not yet settled."""
        self.failed = False
        self.acked = False
        self.last_offset = -1
        """The highest changelog offset of its acknowledged batches."""


class StagedRows:
    """The rows between a handler's write and the local store (module docstring)."""

    def __init__(self) -> None:
        self._open: dict[int, Layer] = {}
        self._sealed: dict[int, list[Layer]] = {}
        self.seals = 0
        """The number of the latest seal (0: none yet)."""

    # --- writes and reads ----------------------------------------------------------------

    def write(self, partition: int, key: bytes, row: bytes | None) -> None:
        layer = self._open.get(partition)
        if layer is None:
            layer = self._open[partition] = Layer(partition)
        layer.rows[key] = row

    def get(self, partition: int, key: bytes) -> object:
        """The newest staged row of `key` (None: deleted), or ABSENT if none is staged."""
        layer = self._open.get(partition)
        if layer is not None:
            row = layer.rows.get(key, _ABSENT)
            if row is not _ABSENT:
                return row
        for layer in reversed(self._sealed.get(partition, ())):
            row = layer.rows.get(key, _ABSENT)
            if row is not _ABSENT:
                return row
        return _ABSENT

    def partition_rows(self, partition: int) -> dict[bytes, bytes | None]:
        """Every staged row of a partition, newest wins (for a rebuild that reads the store)."""
        out: dict[bytes, bytes | None] = {}
        for layer in self._sealed.get(partition, ()):
            out.update(layer.rows)
        top = self._open.get(partition)
        if top is not None:
            out.update(top.rows)
        return out

    # --- sealing and settling --------------------------------------------------------------

    def seal(self) -> list[Layer]:
        """Seal every open layer (one seal number for all); returns them, partition order."""
        if not self._open:
            return []
        self.seals += 1
        n = self.seals
        out = []
        for p in sorted(self._open):
            layer = self._open[p]
            layer.origin = n if layer.origin is None else min(layer.origin, n)
            self._sealed.setdefault(p, []).append(layer)
            out.append(layer)
        self._open = {}
        return out

    def settled(self, layer: Layer, last_offset: int | None) -> bool:
        """One batch of `layer` settled: acknowledged at `last_offset`, or failed (None).
        Returns whether the layer is now settled in full (then `applicable` or requeued)."""
        layer.waiting -= 1
        if last_offset is None:
            layer.failed = True
        else:
            layer.last_offset = max(layer.last_offset, last_offset)
        if layer.waiting > 0:
            return False
        if layer.failed:
            self._requeue(layer)
        else:
            layer.acked = True
        return True

    def _requeue(self, layer: Layer) -> None:
        """Send a failed layer's rows again with the next flush. A key that a newer layer
        writes again is carried by that layer instead, which then also carries the failed
        layer's origin: what waited for the failed rows now waits for the newer ones."""
        sealed = self._sealed.get(layer.partition, [])
        if layer not in sealed:  # dropped meanwhile (revoked)
            return
        i = sealed.index(layer)
        del sealed[i]
        newer = sealed[i:]
        origin = layer.origin if layer.origin is not None else self.seals
        again = self._open.get(layer.partition)
        if again is None:
            again = Layer(layer.partition)
        carried = False
        for key, row in layer.rows.items():
            if key in again.rows:
                carried = True
                continue
            holder = next((n for n in reversed(newer) if key in n.rows), None)
            if holder is not None:
                holder.origin = origin if holder.origin is None else min(holder.origin, origin)
                continue
            again.rows[key] = row
            carried = True
        if carried:
            again.origin = origin if again.origin is None else min(again.origin, origin)
            self._open[layer.partition] = again

    def applicable(self, partition: int) -> list[Layer]:
        """The acknowledged layers at the head of a partition's queue: what may be written to
        the store now, in this order (a layer behind one still in flight waits for it)."""
        out = []
        for layer in self._sealed.get(partition, ()):
            if not layer.acked:
                break
            out.append(layer)
        return out

    def applied(self, partition: int, n: int) -> None:
        """The first `n` layers of the partition were written to the store."""
        sealed = self._sealed.get(partition)
        if sealed is None:
            return
        del sealed[:n]
        if not sealed:
            del self._sealed[partition]

    def with_applicable(self) -> list[int]:
        """Partitions whose head layer is acknowledged and not yet applied."""
        return [p for p, ls in self._sealed.items() if ls and ls[0].acked]

    # --- durability and fencing --------------------------------------------------------------

    def durable(self, seal: int) -> bool:
        """Whether every row sealed up to seal number `seal` is acknowledged and applied."""
        for layers in self._sealed.values():
            for layer in layers:
                if layer.origin is not None and layer.origin <= seal:
                    return False
        return all(layer.origin is None or layer.origin > seal for layer in self._open.values())

    @property
    def unsent(self) -> bool:
        """Whether rows wait for a flush (written, or sent again after a failed batch)."""
        return bool(self._open)

    @property
    def empty(self) -> bool:
        return not self._open and not self._sealed

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget every staged row of these partitions (revoked); returns how many."""
        n = 0
        for p in partitions:
            layer = self._open.pop(p, None)
            if layer is not None:
                n += len(layer.rows)
            for layer in self._sealed.pop(p, ()):
                n += len(layer.rows)
        return n

    def layers(self) -> Iterator[Layer]:
        for layers in self._sealed.values():
            yield from layers
        yield from self._open.values()


ABSENT = _ABSENT
"""What `StagedRows.get` returns for a key with no staged row."""
