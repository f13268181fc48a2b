"""May this partition's timers run? The catch-up hold after a takeover, as plain code.

A partition taken over (after a restart or a rebalance) may have input not yet read: facts
produced before the previous owner stopped, uncommitted. Evaluating its deadlines first would
fire alerts those facts cancel (an acknowledgement already given): a flood of false breaches
after an outage. So a newly owned partition's timers wait until its input topics are read up
to their end offsets as of the takeover, for at most the hold (a partition whose input never
catches up is served anyway, and said so).

Pure: the adapter (`live.faust_app`) asks the broker for end offsets and positions, and passes
them in with the time (integer microseconds); nothing here reads a clock or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TopicPartition = tuple[str, int]


class NotSeekedYet(Exception):
    """An input partition has no position yet: Faust has not seeked the streams."""


def backlog(
    ends: Mapping[TopicPartition, int],
    positions: Mapping[TopicPartition, int | None],
    read: Mapping[TopicPartition, int],
    *,
    positions_known: bool,
) -> dict[int, dict[TopicPartition, int]]:
    """Per partition, the input topic-partitions not yet read up to their end offset, and that
    end offset. Where the worker's reading starts: the next offset after the highest it
    handled, or the consumer's position, whichever is further. Faust seeks the streams to
    the committed offsets after the recovery callback has run, so a position can be unknown
    at first: that raises NotSeekedYet, unless `positions_known` is False (it stayed unknown
    for the whole hold: taken as caught up). (Taking an unknown position for caught up served
    a partition at once, and a fresh worker fired a false breach before reading the
    acknowledgement the previous process had not applied.)"""
    out: dict[int, dict[TopicPartition, int]] = {}
    for tp, end in ends.items():
        out.setdefault(tp[1], {})
        position = positions.get(tp)
        if position is None:
            if positions_known:
                raise NotSeekedYet(tp)
            position = end
        start = max(read.get(tp, -1) + 1, position)
        if start < end:
            out[tp[1]][tp] = end
    return out


class CatchUp:
    """Which owned partitions are served (their timers run), and which still wait for their
    input to be read."""

    def __init__(self, hold_us: int) -> None:
        self.hold_us = hold_us
        self.served: set[int] = set()
        """Partitions whose timers run: their input backlog at takeover has been read."""
        self.waiting: dict[int, tuple[int, dict[TopicPartition, int]]] = {}
        """Per newly owned partition: (hold deadline, input end offsets still to be read)."""
        self.unseeked_since: int | None = None
        """When the consumer's positions were first found unknown (not seeked yet)."""

    def new(self, owned: Iterable[int]) -> set[int]:
        """Owned partitions neither served nor waiting: their backlog is to be asked for."""
        return set(owned) - self.served - set(self.waiting)

    def positions_known(self, now: int) -> bool:
        """Whether unknown positions still mean 'ask again' (not yet for the whole hold)."""
        return self.unseeked_since is None or now - self.unseeked_since < self.hold_us

    def not_seeked(self, now: int) -> None:
        """The positions were unknown at `now`: the backlog is asked for again next round."""
        if self.unseeked_since is None:
            self.unseeked_since = now

    def begin(
        self, partitions: Iterable[int], ends: Mapping[int, Mapping[TopicPartition, int]], now: int
    ) -> None:
        """These partitions wait until their input is read up to `ends` (from `backlog`)."""
        self.unseeked_since = None
        hold = now + self.hold_us
        for p in partitions:
            self.waiting[p] = (hold, dict(ends.get(p, {})))

    def step(
        self, owned: Iterable[int], read: Mapping[TopicPartition, int], now: int
    ) -> tuple[set[int], dict[int, int]]:
        """The served partitions among `owned`, after moving to served every waiting one
        whose input is read (or whose hold ran out); and, for those served at the end of the
        hold, how many messages behind they were (to be said)."""
        owned = set(owned)
        late: dict[int, int] = {}
        for p, (hold, ends) in list(self.waiting.items()):
            if p not in owned:
                del self.waiting[p]
                continue
            left = {tp: end for tp, end in ends.items() if read.get(tp, -1) + 1 < end}
            if not left or now >= hold:
                if left:
                    late[p] = sum(end - read.get(tp, -1) - 1 for tp, end in left.items())
                del self.waiting[p]
                self.served.add(p)
            else:
                self.waiting[p] = (hold, left)
        return owned & self.served, late

    def reset(self) -> set[int]:
        """Every partition waits again (a revocation, or a broker outage the group survived);
        returns those that were served or waiting."""
        was = self.served | set(self.waiting)
        self.served.clear()
        self.waiting.clear()
        return was
