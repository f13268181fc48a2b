"""The commit rule: Faust's, without the creep on duplicates and without committing past a
message in flight."""

from __future__ import annotations

import logging
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP as FaustTP
from intervaltree import IntervalTree

from caseclock.core.policy import load_policy
from caseclock.live.commits import committable, lowest_in_flight
from caseclock.live.config import Config
from caseclock.live.faust_app import CaseClock
from caseclock.live.faust_compat.consumer import CommitSafeConsumer

TP = FaustTP("cases", 0)


def test_a_run_of_acknowledged_offsets_is_committed() -> None:
    assert committable([12, 10, 11], 10, None) == (13, [])
    assert committable([10, 11, 13, 14], 10, None) == (12, [13, 14])
    assert committable([], 10, None) == (None, [])


def test_repeated_offsets_do_not_split_the_run() -> None:
    """Every offset acknowledged twice: Faust's rule moves one offset per commit."""
    assert committable([10, 10, 11, 11, 12, 12], 10, None) == (13, [])


def test_a_missing_head_waits_except_the_one_after_a_seek() -> None:
    assert committable([13, 14], 10, None) == (None, [13, 14])
    assert committable([11, 12], 10, None) == (13, [])  # Faust's tolerance of one, kept
    assert committable([5, 6], None, None) == (7, [])


def test_never_past_a_message_in_flight() -> None:
    assert committable([11, 12, 13], 10, 10) == (None, [11, 12, 13])  # faust-streaming#606
    assert committable([10, 11, 13], 10, 12) == (12, [13])
    assert committable([10, 11, 12, 13], 10, 12) == (12, [12, 13])
    assert committable([10, 11], 10, 20) == (12, [])


def _consumer_state(acked: list[int], committed: int, gaps: list[tuple[int, int]]) -> Any:
    """The attributes of Faust's Consumer that `_new_offset` reads and writes."""
    state = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None),
        _unacked_messages=set(),
    )
    state._acked[TP] = list(acked)
    state._acked_index[TP] = set(acked)
    state._committed_offset[TP] = committed
    for begin, end in gaps:
        state._gap[TP].addi(begin, end)
    return state


def _commits(new_offset: Any, state: Any, rounds: int) -> list[int | None]:
    out = []
    for _ in range(rounds):
        offset = new_offset(state, TP)
        if offset is not None:
            state._committed_offset[TP] = offset
        out.append(offset)
    return out


def test_a_gap_recorded_over_offsets_read_again_makes_faust_creep_and_not_us(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a seek back to 100 a stale batch from 110 was delivered: Faust recorded 101-110 as
    a gap, then 100-109 were read and acknowledged again (robinhood/faust#559)."""
    caplog.set_level(logging.INFO, logger="caseclock")
    acked = [*range(100, 110), 110, 111]
    faust_state = _consumer_state(acked, 100, [(101, 111)])
    ours = _consumer_state(acked, 100, [(101, 111)])
    faust_commits = _commits(FaustConsumer._new_offset, faust_state, 4)
    # one offset per commit (Faust commits every 2.8 s), whatever has been read since
    assert faust_commits == [102, 103, 104, 105]
    assert _commits(CommitSafeConsumer._new_offset, ours, 2) == [112, None]
    assert ours._acked[TP] == [] and not ours._gap[TP]
    assert "10 offsets of cases[0] were acknowledged twice" in caplog.text


def test_the_consumer_waits_for_the_oldest_message_in_flight() -> None:
    state = _consumer_state([101, 102], 100, [])
    state._unacked_messages = [
        SimpleNamespace(tp=TP, offset=100, acked=False),
        SimpleNamespace(tp=TP, offset=90, acked=False),  # below the commit: done before
        SimpleNamespace(tp=FaustTP("other", 0), offset=50, acked=False),
    ]
    assert CommitSafeConsumer._new_offset(state, TP) is None
    assert FaustConsumer._new_offset(_consumer_state([101, 102], 100, []), TP) == 103
    state._unacked_messages = []
    state._acked[TP].append(100)
    assert CommitSafeConsumer._new_offset(state, TP) == 103
    assert state._acked_index[TP] == set()


def test_the_worker_uses_the_commit_safe_consumer() -> None:
    app = CaseClock(Config.from_env({}), load_policy()).app
    assert issubclass(app.transport.Consumer, CommitSafeConsumer)


def test_the_stall_log_shows_fausts_bookkeeping_of_the_partition() -> None:
    cc = CaseClock(Config.from_env({}), load_policy())
    state = _consumer_state([104, 105, 107], 100, [(101, 103)])
    state._read_offset = {TP: 107}
    state._unacked_messages = [SimpleNamespace(tp=TP, offset=100, acked=False)]
    cc.app.consumer = state
    line = cc._commit_bookkeeping(TP)
    assert line == (
        "cases[0]: committed=100 read=107 acked=3 [104-105 107] gaps=[(101, 103)] unacked=1 [100]"
    )
    cc.app.consumer = SimpleNamespace(_acked=None)  # type: ignore[assignment]
    assert cc._commit_bookkeeping(TP).startswith("cases[0]: unreadable (")


def test_the_lowest_message_in_flight_per_partition_at_or_above_its_commit() -> None:
    other = FaustTP("other", 0)
    messages = [
        SimpleNamespace(tp=TP, offset=105, acked=False),
        SimpleNamespace(tp=TP, offset=103, acked=True),  # done
        SimpleNamespace(tp=TP, offset=104, acked=False),
        SimpleNamespace(tp=TP, offset=90, acked=False),  # below the commit
        SimpleNamespace(tp=other, offset=7, acked=False),
    ]
    assert lowest_in_flight(messages, {TP: 100}) == {TP: 104, other: 7}
    assert lowest_in_flight([], {TP: 100}) == {}
