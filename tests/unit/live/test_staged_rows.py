"""The staged rows' bookkeeping (caseclock.live.staged_rows): the commit order as a model.

A random run of writes, flushes, acknowledgements (in any order across flushes), failures and
re-sends is played against a model "broker" and "local store"; after every step:

* the store only holds rows the changelog holds (nothing local can be lost with the disk);
* the store never goes back to an older row of a key;
* reads see the newest row written;
* `durable(n)` implies every row written before flush n is in the changelog and the store
  (or was overwritten by a newer one that is);
and at the end, with everything acknowledged, the store equals the last row of every key.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from caseclock.live.staged_rows import ABSENT, Layer, StagedRows

KEYS = [b"A", b"B", b"C"]
P = 0

step = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(KEYS), st.one_of(st.none(), st.integers(0, 9))),
    st.tuples(st.just("flush"), st.none(), st.none()),
    st.tuples(st.just("ack"), st.integers(0, 5), st.none()),
    st.tuples(st.just("fail"), st.integers(0, 5), st.none()),
)


class Model:
    def __init__(self) -> None:
        self.staged = StagedRows()
        self.in_flight: list[Layer] = []
        self.changelog: dict[bytes, list[bytes | None]] = {k: [] for k in KEYS}
        self.store: dict[bytes, bytes | None] = {}
        self.version: dict[bytes, int] = {}
        """Per key, the write counter of the row the store holds."""
        self.written: dict[bytes, list[bytes | None]] = {k: [] for k in KEYS}
        self.by_seal: list[dict[bytes, int]] = []
        """Per flush, the number of writes of each key made before it."""
        self.offset = 0

    def write(self, key: bytes, value: int | None) -> None:
        row = None if value is None else f"{key.decode()}{len(self.written[key])}".encode()
        self.written[key].append(row)
        self.staged.write(P, key, row)

    def flush(self) -> None:
        self.apply()
        layers = self.staged.seal()
        for layer in layers:
            layer.waiting = 1
            self.in_flight.append(layer)
        if layers:
            self.by_seal.append({k: len(v) for k, v in self.written.items()})

    def settle(self, i: int, ok: bool) -> None:
        if not self.in_flight:
            return
        layer = self.in_flight.pop(i % len(self.in_flight))
        if ok:
            for key, row in layer.rows.items():
                self.changelog[key].append(row)
            self.offset += len(layer.rows)
        if self.staged.settled(layer, self.offset if ok else None) and ok:
            self.apply()

    def apply(self) -> None:
        layers = self.staged.applicable(P)
        for layer in layers:
            for key, row in layer.rows.items():
                assert row in self.changelog[key], "the store got a row the changelog lacks"
                n = self.written[key].index(row) if row is not None else None
                if n is not None:
                    assert n >= self.version.get(key, -1), "the store went back to an older row"
                    self.version[key] = n
                self.store[key] = row
        self.staged.applied(P, len(layers))

    def check(self) -> None:
        for key in KEYS:
            got = self.staged.get(P, key)
            if got is ABSENT:
                got = self.store.get(key)
            latest = self.written[key][-1] if self.written[key] else None
            assert got == latest
        for n, counts in enumerate(self.by_seal, start=1):
            if not self.staged.durable(n):
                continue
            for key, count in counts.items():
                if count == 0:
                    continue
                # the row of that flush or a newer one is in the store and the changelog
                held = self.store.get(key, ABSENT)
                assert held is not ABSENT
                assert held in self.changelog[key]
                if held is not None:
                    assert self.written[key].index(held) >= count - 1


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_the_commit_order_holds_whatever_the_broker_does(
    steps: list[tuple[str, object, object]],
) -> None:
    m = Model()
    for kind, a, b in steps:
        if kind == "write":
            m.write(a, b)  # type: ignore[arg-type]
        elif kind == "flush":
            m.flush()
        else:
            m.settle(a, kind == "ack")  # type: ignore[arg-type]
        m.check()
    for _ in range(100):  # the broker comes back: everything is sent again and taken
        m.flush()
        while m.in_flight:
            m.settle(0, True)
        if m.staged.empty:
            break
    m.check()
    assert m.staged.empty and m.staged.durable(m.staged.seals)
    for key in KEYS:
        if m.written[key]:
            assert m.store.get(key) == m.written[key][-1]


def test_a_failed_layer_is_sent_again_under_the_newer_rows() -> None:
    s = StagedRows()
    s.write(P, b"A", b"a1")
    s.write(P, b"B", b"b1")
    (first,) = s.seal()
    first.waiting = 1
    s.write(P, b"A", b"a2")  # newer, still open
    assert s.settled(first, None)  # failed: requeued
    assert s.unsent and not s.durable(1)
    (again,) = s.seal()
    assert again.rows == {b"B": b"b1", b"A": b"a2"}
    assert again.origin == 1  # it carries the first flush's rows: durable(1) waits for it
    again.waiting = 1
    assert s.settled(again, 10)
    assert [layer.rows for layer in s.applicable(P)] == [again.rows]
    s.applied(P, 1)
    assert s.durable(1) and s.durable(2) and s.empty


def test_dropping_a_partition_forgets_its_rows() -> None:
    s = StagedRows()
    s.write(1, b"A", b"a")
    s.write(2, b"B", b"b")
    s.seal()
    s.write(1, b"A", b"a2")
    assert s.drop([1]) == 2
    assert s.get(1, b"A") is ABSENT
    assert s.get(2, b"B") == b"b"
    s.drop([2])
    assert s.empty
