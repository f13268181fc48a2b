"""Failpoints: test-only instants at which the worker kills itself, as FoundationDB's and
TiKV's fault injection does, so that a broker scenario hits the narrow window it is about on
every run instead of by luck.

Armed only by the environment variable CASECLOCK_FAILPOINTS, read once at import:
a comma-separated list of `name` (kill at the first hit) or `name:N` (kill at the Nth hit).
Unset (production), `hit` returns at once: one truth test of an empty dict.

A hit that kills logs one line first ("failpoint NAME reached: SIGKILL") so a test can tell
which window the kill landed in, then sends SIGKILL to its own process: nothing after it
runs, no finally block, no flush, exactly as an OOM kill or a node loss.

The names, where they sit in the data path (docs/architecture.md, "The commit order"):

* `changelog-before-send`: a handler call's rows are in the store's memory, their changelog
  records not yet handed to the producer.
* `changelog-after-ack`: a changelog batch is acknowledged, its rows and offset not yet
  written to RocksDB.
* `alerts-before-row`: a timer chunk's alerts are acknowledged, the row recording them not
  yet written.
* `input-before-ack`: a fetch's rows are durable in the changelog, its input not yet
  acknowledged to the consumer (so not committed).
* `revoke`: partitions are being revoked, the handler call in progress has finished.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger("caseclock")

ENV = "CASECLOCK_FAILPOINTS"
NAMES = frozenset(
    {
        "changelog-before-send",
        "changelog-after-ack",
        "alerts-before-row",
        "input-before-ack",
        "revoke",
    }
)


def parse(spec: str) -> dict[str, int]:
    """{name: the hit that kills} from CASECLOCK_FAILPOINTS' text; unknown names are an
    error (a typo would otherwise make a scenario pass without hitting its window)."""
    armed: dict[str, int] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, nth = item.partition(":")
        if name not in NAMES:
            raise ValueError(f"{ENV}: unknown failpoint {name!r} (known: {sorted(NAMES)})")
        n = int(nth) if nth else 1
        if n < 1:
            raise ValueError(f"{ENV}: {item!r}: the hit count must be 1 or more")
        armed[name] = n
    return armed


_armed: dict[str, int] = parse(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}


def armed() -> dict[str, int]:
    """The armed failpoints and the hit that kills each (empty in production)."""
    return dict(_armed)


def hit(name: str) -> None:
    """Mark that the worker reached failpoint `name`; kill the process if it is armed and this
    is the hit it waits for."""
    if not _armed:
        return
    _hit(name)


def _hit(name: str) -> None:
    nth = _armed.get(name)
    if nth is None:
        return
    n = _hits[name] = _hits.get(name, 0) + 1
    if n < nth:
        return
    log.warning("caseclock: failpoint %s reached: SIGKILL", name)
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
