"""A smoke run of bench/snapshot_bench.py: correctness of what it measures, no timed
assertion (the figures come from the full run, checked in under bench/results/)."""

from __future__ import annotations

from tests.bench_modules import load_bench_module


def test_the_snapshot_benchmark_measures_what_a_save_copies_and_encodes() -> None:
    bench = load_bench_module("snapshot_bench.py", "bench_snapshot")
    svc = bench._service(50)
    keys, dues = svc.indexes[0].deadlines()
    assert len(keys) == len(dues) == 50 and len(set(keys)) == 50
    r = bench.measure(keys=2_000, partitions=8, repeat=1)
    per = r["per_partition_ms"]
    assert set(per) == {"snapshot_copy", "deadlines_only", "first_version_copy", "encode"}
    assert all(v >= 0 for v in per.values())
    assert r["encoded_bytes_per_partition"] > 2_000 * len("case-0000000")
    save = r["per_save_ms"]
    assert save["copies_under_the_lock"] == round(per["snapshot_copy"] * 8, 3)
