"""Table rows: a case's state, and beside it what the timer and the gauges need of it.

A row is one JSON object, written by `encode_row`:

    {"p": partition, "t": touched,
     "h": [fingerprint, closed, due, priority, plan, clock at risk, ...], "s": state}

"h" is the case's `Standing`: what the deadline index and the gauges hold of it, derived from
the state and the policy alone when the row is written (an array rather than an object, so it
adds about 60 bytes to a row of about 280). An index rebuild reads only the bytes before "s"
(`read_header`), so a restart with the data directory kept does not decode a million states;
a state is decoded only when its case is changed or evaluated.

A standing is valid only under the policy and core code it was derived with: the row carries
their `fingerprint` (`row_fingerprint`), and a row written under another one (or before rows
had "h") is read with `standing` None, so its reader derives it again from the state. A policy
change or an upgrade therefore costs one slower rebuild, never a wrong deadline.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from caseclock.core.policy import Policy, policy_fingerprint
from caseclock.core.state import CaseState

ROW_FORMAT = "2"
"""Part of every row's fingerprint: change it when what a standing holds changes meaning."""


def row_fingerprint(policy: Policy) -> str:
    """The fingerprint rows are written under: the policy's, salted with the row format and
    the source of the core (the engine, calendars and state that standings are derived by),
    so that an upgrade which changes how deadlines are computed cannot reuse old ones."""
    return policy_fingerprint(policy, salt=_core_digest())


@functools.cache
def _core_digest() -> str:
    """The row format and the core's source, digested (once per process)."""
    digest = hashlib.blake2b(ROW_FORMAT.encode(), digest_size=8)
    core = resources.files("caseclock.core")
    for name in sorted(p.name for p in core.iterdir() if p.name.endswith(".py")):
        digest.update(name.encode() + b"\0" + core.joinpath(name).read_bytes())
    return digest.hexdigest()


_STATE = b',"s":'
"""Where the header ends. JSON escapes every quote inside a string, so these bytes can only be
an object key; the header's values are numbers and an array of strings, numbers and null,
never an object, so the first occurrence is the row's own "s"."""


@dataclass(frozen=True, slots=True)
class Standing:
    """What the deadline index and the gauges need of a case (see the module docstring)."""

    closed: bool
    """Resolved or never opened: the index only holds its purge (touched + retention)."""
    due: int | None
    """When an open case next has something due (`Engine.next_due`), or None."""
    counted: tuple[str, str] | None
    """(priority, plan) under which caseclock_open_cases counts it, or None if it does not."""
    risks: tuple[str, ...]
    """Clocks whose warning went out and whose breach is pending (caseclock_cases_at_risk)."""


@dataclass(frozen=True, slots=True)
class Header:
    """A row read without its state."""

    partition: int
    touched: int
    standing: Standing | None
    """None when the row was not written under the fingerprint asked for."""


def encode_row(
    state: CaseState, partition: int, touched: int, standing: Standing, fingerprint: str
) -> bytes:
    """A table row: the case's partition (for rebuilds), when its latest fact arrived, its
    standing under `fingerprint`, and its state."""
    counted = standing.counted or (None, None)
    head = [fingerprint, int(standing.closed), standing.due, *counted, *standing.risks]
    return orjson.dumps({"p": partition, "t": touched, "h": head, "s": state.to_dict()})


def row_partition(row: bytes) -> int | None:
    """The partition of a row ({"p":N,...}), without parsing it."""
    if row.startswith(b'{"p":'):
        end = row.find(b",", 5)
        if end > 5 and row[5:end].isdigit():
            return int(row[5:end])
    return None


def read_header(row: bytes, fingerprint: str) -> Header:
    """The row's partition, touched time and standing, parsing only the bytes before its state."""
    cut = row.find(_STATE)
    doc = orjson.loads(row[:cut] + b"}") if cut > 0 else orjson.loads(row)
    return Header(doc["p"], doc["t"], _standing(doc, fingerprint))


def decode_row(row: bytes, fingerprint: str = "") -> tuple[CaseState, int, Standing | None]:
    """(state, touched, standing or None) of a row: see `Header.standing`."""
    doc = orjson.loads(row)
    return CaseState.from_dict(doc["s"]), doc["t"], _standing(doc, fingerprint)


def _standing(doc: dict[str, Any], fingerprint: str) -> Standing | None:
    head = doc.get("h")
    if not head or head[0] != fingerprint:
        return None
    counted = None if head[3] is None else (head[3], head[4])
    return Standing(bool(head[1]), head[2], counted, tuple(head[5:]))
