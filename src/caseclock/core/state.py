"""One case's state: the folded facts plus what was already emitted, bounded in size."""

from __future__ import annotations

import bisect
import hashlib
from typing import Any, Final

# Bounds that keep one case's state constant in size, whatever its number of events (see
# docs in CaseState): the last SEEN_DIGESTS event ids are remembered for duplicate detection, and
# at most MAX_PRIORITY_FACTS priority facts are kept.
SEEN_DIGESTS: Final = 64
SEEN_BYTES: Final = 8 * SEEN_DIGESTS
MAX_PRIORITY_FACTS: Final = 32
MAX_STATUS_FACTS: Final = 512
"""Status facts kept at most (the latest by occurred_at). The engine first drops the ones no
open or future window can reach (`Engine.trim`), so only a case with more than this many
status facts within the reach of a window (256 pauses before its first acknowledgement, or
since its last communication) ever loses one: the only way a deadline can differ from the
contract, and the price of a state that stays bounded (docs/semantics.md, "Long histories")."""
MAX_RESOLUTION_FACTS: Final = 256
"""Resolve and reopen facts kept at most, likewise: 128 resolve/reopen cycles within reach."""
TRIM_FROM: Final = 16
"""Histories longer than this are trimmed to what the windows can reach after each new fact:
below it the trim costs more than the facts it would save."""

# Flags for the once-per-case obligations.
ACK_WARNED: Final = 1
ACK_BREACHED: Final = 2
ELEVATED: Final = 4
ELEVATED_TIMED: Final = 8
"""With ELEVATED: the elevation was the timed one (no ETA or workaround in time), a breach of
the elevation promise, not the action of entering an immediate priority (rows written before
this flag existed lack it)."""


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()


def seen_in(seen: bytes, d: bytes) -> bool:
    """Whether the 8-byte digest d is one of the digests concatenated in seen."""
    i = seen.find(d)
    while i != -1:
        if i % 8 == 0:
            return True
        i = seen.find(d, i + 1)  # a match straddling two digests is no match
    return False


def status_digest(status: str) -> int:
    """A status as the state stores it: 8 bytes whatever the upstream vocabulary's length, so
    a case's status history costs the same for "pending" and for a 256-character status."""
    return int.from_bytes(hashlib.blake2b(status.encode(), digest_size=8).digest(), "big")


def tiebreak(event_id: str) -> int:
    """A stable integer order among facts with the same occurred_at."""
    return int.from_bytes(digest(event_id), "big")


class CaseState:
    """Everything caseclock knows about one case: folded facts plus what was already emitted.

    Slotted and made of ints and short strings because one of these lives in memory per open
    case per partition; the benchmark holds it to well under a kilobyte.

    **Bounded by design.** Its size does not grow with the case's number of events, so a case
    with a monitor posting a note every minute for months costs what a fresh one costs:

    * every fact folds by min/max (or a set insert keyed by (occurred_at, event_id)), so the
      fold is idempotent: re-applying an event with the same content changes nothing, however
      long ago it was first seen. Duplicate detection is therefore an optimisation and a
      count, not a correctness mechanism, and it is bounded: the digests of the last
      SEEN_DIGESTS event ids are kept (`seen`). Within them a reused event_id is a duplicate
      even with different content; beyond them a reused id with *different* content is taken
      as a new fact (a repeat with the same content still changes nothing).
    * the priority history keeps at most MAX_PRIORITY_FACTS facts: past that, runs of one
      priority are merged into their first fact and then the oldest facts after the opening
      one are forgotten (a case re-prioritised dozens of times keeps its latest history).
    * the status and resolution histories (statuses stored as 8-byte digests) keep every fact
      a window can still reach: the engine drops the facts before the case's horizon (the
      earliest instant an open or future window counts from) but the last one, which gives
      the status in force there (`trim_before`). What the windows see is therefore the same
      whatever order the facts arrived in, though the facts kept may differ. Past that,
      MAX_STATUS_FACTS and MAX_RESOLUTION_FACTS cap them (the latest N), for a case whose
      reachable history alone is that long.
    * strings are bounded by the inbound contract (ids 256, subject 1024 characters).
    """

    __slots__ = (
        "case_id",
        "comm_first",
        "comm_last",
        "created",
        "customer_id",
        "emitted",
        "eta",
        "eta_or_workaround",
        "eta_set_at",
        "eta_tb",
        "open_tb",
        "opened_at",
        "plan",
        "priorities",
        "reported_at",
        "resolutions",
        "seen",
        "statuses",
        "subject",
        "update_through",
    )

    def __init__(self, case_id: str, created: int) -> None:
        self.case_id = case_id
        self.created = created
        """When caseclock first heard of the case (caller's clock); bounds unopened retention."""
        self.opened_at: int | None = None
        self.open_tb = 0
        self.plan: str | None = None
        self.reported_at: int | None = None
        self.customer_id: str | None = None
        self.subject: str | None = None
        self.priorities: list[tuple[int, int, int]] = []
        """(occurred_at, tiebreak, priority), sorted: the latest is the current priority."""
        self.comm_first: int | None = None
        self.comm_last: int | None = None
        self.eta_or_workaround: int | None = None
        """Earliest ETA or workaround: cancels a timed elevation that falls due after it."""
        self.eta_set_at: int | None = None
        self.eta_tb = 0
        self.eta: int | None = None
        self.resolutions: list[tuple[int, int, int]] = []
        """(occurred_at, tiebreak, 1 resolved | 0 reopened), sorted: the latest decides."""
        self.statuses: list[tuple[int, int, int]] = []
        """(occurred_at, tiebreak, status_digest), sorted: the latest is the current status."""
        self.seen = b""
        """8-byte digests of the last SEEN_DIGESTS event ids applied, oldest first."""
        self.emitted = 0
        self.update_through: int | None = None
        """Update-clock high-water mark: points at or before it are done (emitted or skipped)."""

    # --- serialisation (the live service stores this in a changelog-backed table) --------

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"c": self.case_id, "cr": self.created}
        for short, name in _FIELDS:
            v = getattr(self, name)
            if v is not None and v != 0 and v != b"" and v != []:
                d[short] = v
        if self.seen:
            d["sn"] = self.seen.hex()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseState:
        s = cls(d["c"], d["cr"])
        for short, name in _FIELDS:
            if short in d:
                setattr(s, name, d[short])
        s.priorities = [(p[0], p[1], p[2]) for p in d.get("pr", [])]
        s.statuses = [(p[0], p[1], p[2]) for p in d.get("st", [])]
        s.resolutions = [(p[0], p[1], p[2]) for p in d.get("rz", [])]
        if "rs" in d and not s.resolutions:  # a row written before reopening existed
            s.resolutions = [(d["rs"], 0, 1)]
        s.seen = bytes.fromhex(d.get("sn", ""))[-SEEN_BYTES:]  # rows written before the bound
        if len(s.priorities) > MAX_PRIORITY_FACTS:
            compact_priorities(s)
        return s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaseState) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CaseState({self.to_dict()!r})"

    # --- derived facts -------------------------------------------------------------------

    @property
    def opened(self) -> bool:
        return self.opened_at is not None

    @property
    def resolved(self) -> bool:
        """Resolved now: the latest of its case-resolved and case-reopened facts is a resolve."""
        rz = self.resolutions
        return bool(rz) and rz[-1][2] == 1

    @property
    def resolved_at(self) -> int | None:
        """When the current resolution began (the first resolve of the last run), or None."""
        rz = self.resolutions
        if not rz or rz[-1][2] != 1:
            return None
        i = len(rz) - 1
        while i > 0 and rz[i - 1][2] == 1:
            i -= 1
        return rz[i][0]

    @property
    def ack_breach_emitted(self) -> bool:
        return bool(self.emitted & ACK_BREACHED)


_FIELDS: Final = (
    ("o", "opened_at"),
    ("ot", "open_tb"),
    ("p", "plan"),
    ("r", "reported_at"),
    ("cu", "customer_id"),
    ("su", "subject"),
    ("pr", "priorities"),
    ("cf", "comm_first"),
    ("cl", "comm_last"),
    ("ew", "eta_or_workaround"),
    ("es", "eta_set_at"),
    ("et", "eta_tb"),
    ("e", "eta"),
    ("rz", "resolutions"),
    ("st", "statuses"),
    ("em", "emitted"),
    ("ut", "update_through"),
)


def add_priority(state: CaseState, t: int, tb: int, priority: int) -> None:
    """Insert a priority fact in (occurred_at, tiebreak) order; the same fact twice is one."""
    prs = state.priorities
    i = bisect.bisect_left(prs, (t, tb))
    if i < len(prs) and prs[i][0] == t and prs[i][1] == tb:
        return  # this event's fact is already here: the fold stays idempotent
    prs.insert(i, (t, tb, priority))
    if len(prs) > MAX_PRIORITY_FACTS:
        compact_priorities(state)


def compact_priorities(state: CaseState) -> None:
    """Shrink the priority history to MAX_PRIORITY_FACTS, losing as little as possible.

    First merge runs of one priority into their first fact (what `current` needs of a run is
    its start); if that is not enough, forget the oldest facts after the opening one (the
    time-to-open promise needs the opening's priority).
    """
    opening = (state.opened_at, state.open_tb)
    prs = state.priorities
    merged = [prs[0]]
    for fact in prs[1:]:
        if fact[2] == merged[-1][2] and (fact[0], fact[1]) != opening:
            continue
        merged.append(fact)
    while len(merged) > MAX_PRIORITY_FACTS:
        drop = next(i for i, f in enumerate(merged) if (f[0], f[1]) != opening)
        del merged[drop]
    state.priorities = merged


def add_latest(facts: list[tuple[int, int, int]], fact: tuple[int, int, int], cap: int) -> None:
    """Insert a fact in (occurred_at, tiebreak) order, keeping the latest `cap` facts.

    The same fact twice is one (idempotent), and the kept set is the latest `cap` of all facts
    ever inserted whatever their order of arrival (order-independent)."""
    i = bisect.bisect_left(facts, (fact[0], fact[1]))
    if i < len(facts) and facts[i][0] == fact[0] and facts[i][1] == fact[1]:
        return
    facts.insert(i, fact)
    if len(facts) > cap:
        del facts[0]


def trim_before(facts: list[tuple[int, int, int]], horizon: int) -> None:
    """Drop the facts before `horizon` except the latest of them, in place.

    The latest fact at or before the horizon decides the state in force there, so every
    instant from the horizon on is seen as before; a fact arriving later with an earlier
    occurred_at either lands after the kept one (and is kept, exactly as without the trim) or
    before it, where it changes only instants before the horizon, which no window reaches."""
    i = bisect.bisect_right(facts, (horizon, 2**64)) - 1
    if i > 0:
        del facts[:i]
