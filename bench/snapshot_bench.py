"""What a running worker's periodic index snapshot costs the event loop, on one core.

    taskset -c 0 .venv/bin/python bench/snapshot_bench.py

A periodic snapshot (`CaseClock._save_snapshots`) copies each owned partition's deadline
index between handler calls, under the handling lock: the input and the timer wait for that
copy. The file is encoded and written by a thread afterwards, but orjson holds the
interpreter while it encodes, so the loop waits for that too. This measures both for a
partition of ``--keys`` cases (125,000: 1,000,000 cases over 8 partitions), and, in the same
run as the baseline, the copy as the first version of the periodic snapshots made it
(``dict(index.items())``, a Python loop over every key), which held up the timer by about 0.3 s
every 30 s in the 1,000,000-case lateness benchmark
(bench/results/live-million-lateness-periodic-before-2026-12-02.json).

Each figure is the best of ``--repeat`` passes. Results go to
bench/results/snapshot-<UTC date>.json, with the header of bench/common.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from caseclock.core.policy import load_policy
from caseclock.live.config import Config
from caseclock.live.handlers import CaseService
from caseclock.live.index_snapshots import encode
from caseclock.live.metrics import Metrics
from common import add_run_arguments, pin_to_one_core, result_header, write_result


def _best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 3)


def _service(keys: int) -> CaseService:
    """A service with one partition of `keys` scheduled cases (no store or outbox is used
    by a snapshot)."""
    svc = CaseService(
        Config.from_env({}),
        load_policy(),
        Metrics(CollectorRegistry()),
        store=None,  # type: ignore[arg-type]
        outbox=None,  # type: ignore[arg-type]
        clock=lambda: 0,
    )
    svc.begin_rebuild([0])
    idx = svc.indexes[0]
    for i in range(keys):
        idx.schedule(f"case-{i:07d}", 1_800_000_000_000_000 + i * 1000)
    return svc


def measure(keys: int, partitions: int, repeat: int) -> dict[str, Any]:
    svc = _service(keys)
    idx = svc.indexes[0]

    def first_version() -> object:  # the copy of 1ff2cb7's CaseService.snapshot
        due = dict(idx.items())
        return list(due), list(due.values())

    snap = svc.snapshot(0, 7)
    copy_ms = _best_ms(lambda: svc.snapshot(0, 7), repeat)
    first_ms = _best_ms(first_version, repeat)
    encode_ms = _best_ms(lambda: encode(snap), repeat)
    return {
        "keys_per_partition": keys,
        "partitions": partitions,
        "per_partition_ms": {
            "snapshot_copy": copy_ms,
            "deadlines_only": _best_ms(idx.deadlines, repeat),
            "first_version_copy": first_ms,
            "encode": encode_ms,
        },
        "encoded_bytes_per_partition": len(encode(snap)),
        "per_save_ms": {
            "copies_under_the_lock": round(copy_ms * partitions, 3),
            "first_version_copies_under_the_lock": round(first_ms * partitions, 3),
            "encoding_in_the_thread": round(encode_ms * partitions, 3),
        },
        "longest_wait_of_the_loop_ms": {
            "now": max(copy_ms, encode_ms),
            "first_version": round(first_ms * partitions, 3),
            "why": "the copies now yield to the loop between partitions; the first version's "
            "ran back to back (an uncontended asyncio lock does not yield)",
        },
        "first_version_over_now": round(first_ms / copy_ms, 2) if copy_ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--keys", type=int, default=125_000, help="cases per partition")
    p.add_argument("--partitions", type=int, default=8, help="owned partitions per save")
    p.add_argument("--repeat", type=int, default=5, help="passes; the best one is reported")
    add_run_arguments(p)
    args = p.parse_args(argv)
    started = datetime.now(UTC)
    pinning = pin_to_one_core(args.no_pin)
    measured = measure(args.keys, args.partitions, args.repeat)
    result: dict[str, Any] = {
        **result_header("caseclock periodic index snapshot: cost to the event loop", started),
        "pinning": pinning,
        "parameters": {"keys": args.keys, "partitions": args.partitions, "repeat": args.repeat},
        **measured,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_result(result, "snapshot", started, args)
    print(measured["per_partition_ms"], measured["per_save_ms"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
