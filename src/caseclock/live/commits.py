"""Which input offset the worker may commit: Faust's rule, without its two known holes.

Faust commits a partition up to the end of the first run of consecutive acknowledged offsets
(`Consumer._new_offset`). Two faults of that rule matter here:

* **Duplicates make it creep.** After a rebalance Faust seeks every partition back to its
  committed offset, but a batch fetched before the seek can still be delivered; its first
  message then looks like a jump past the (reset) read offset, and Faust records the offsets
  in between as a gap. Those offsets are then re-read and acknowledged as well, and when the
  gap is merged into the acknowledged list each of them is in it twice (robinhood/faust#559,
  #625). `consecutive_numbers` splits a list with duplicates into runs of one, so every commit
  moves the offset by one: a few offsets per 10 s against hundreds read per second. That is
  what the kill-under-load scenario saw after restarts (committed 1334 -> 1337 -> 1341 while
  the partition's end went from 8,256 to 8,973), and a fresh process can fall into it again
  in its own first rebalance.
* **It can commit past a message still being processed** (faust-streaming#606): a single
  missing offset at the head of the list is taken for a compacted-away one, even when it is
  a message delivered and not yet acknowledged.

`committable` is the rule with both fixed: acknowledged offsets are a set, and the commit
never reaches the oldest delivered message not yet acknowledged. This module is plain code;
`live.faust_compat.consumer.CommitSafeConsumer` puts the rule in place of Faust's (the
worker's consumer, `BatchingConsumer`, builds on it),
keeping Faust's gap merging (offsets that were never delivered, such as transaction markers,
count as done) and its tolerance of one missing offset right after a seek (Faust's read
offset is then the next offset to read, not the last one read).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("caseclock")


def committable(
    acked: Iterable[int], committed: int | None, in_flight: int | None
) -> tuple[int | None, list[int]]:
    """The offset to commit (the next one to read), or None, and the acknowledged offsets
    that stay waiting.

    `acked`: offsets acknowledged since the last commit, in any order, repeats allowed.
    `committed`: the offset committed last (the next one to read), None if none yet.
    `in_flight`: the lowest offset, at or above `committed`, delivered to the stream and not
    yet acknowledged (None if there is none).
    """
    offsets = sorted(set(acked))
    if not offsets:
        return None, []
    if committed and offsets[0] - committed > 1:
        return None, offsets  # a message at the head is missing: wait for it
    end = 0
    while end + 1 < len(offsets) and offsets[end + 1] == offsets[end] + 1:
        end += 1
    if in_flight is not None:  # never past a message still being processed
        while end >= 0 and offsets[end] >= in_flight:
            end -= 1
        if end < 0 or in_flight < offsets[0]:
            return None, offsets
    return offsets[end] + 1, offsets[end + 1 :]


def lowest_in_flight(
    messages: Iterable[Any], committed: Mapping[Any, int | None]
) -> dict[Any, int]:
    """Per partition, the lowest offset at or above its committed one among `messages`
    delivered and not yet acknowledged (Faust's `_unacked_messages`)."""
    low: dict[Any, int] = {}
    for m in messages:
        if m.acked:
            continue
        tp, offset = m.tp, m.offset
        if offset < (committed.get(tp) or 0):
            continue
        if tp not in low or offset < low[tp]:
            low[tp] = offset
    return low
