"""The catch-up hold (caseclock.live.catch_up): a newly owned partition's timers wait until
its input backlog at the takeover is read, or the hold runs out."""

from __future__ import annotations

import pytest

from caseclock.live.catch_up import CatchUp, NotSeekedYet, backlog

A0, B0, A1 = ("a", 0), ("b", 0), ("a", 1)


def test_the_backlog_starts_after_what_was_read_or_at_the_position() -> None:
    ends = {A0: 8, B0: 3, A1: 4}
    positions = {A0: 5, B0: 3, A1: 0}
    assert backlog(ends, positions, {}, positions_known=True) == {0: {A0: 8}, 1: {A1: 4}}
    read = {A0: 7, A1: 1}  # handled up to the end of a/0, a/1 still behind
    assert backlog(ends, positions, read, positions_known=True) == {0: {}, 1: {A1: 4}}


def test_an_unknown_position_is_asked_again_until_the_hold_ran_out() -> None:
    ends, positions = {A0: 8}, {A0: None}
    with pytest.raises(NotSeekedYet):
        backlog(ends, positions, {}, positions_known=True)
    assert backlog(ends, positions, {}, positions_known=False) == {0: {}}
    c = CatchUp(hold_us=30)
    assert c.positions_known(100)
    c.not_seeked(100)
    c.not_seeked(110)  # the first time counts
    assert c.positions_known(129) and not c.positions_known(130)


def test_a_partition_is_served_once_read_up_to_its_end_offsets() -> None:
    c = CatchUp(hold_us=30)
    assert c.new({0, 1}) == {0, 1}
    c.begin({0, 1}, {0: {A0: 8}, 1: {}}, now=100)
    assert c.new({0, 1}) == set()  # waiting, not new
    served, late = c.step({0, 1}, {A0: 5}, now=101)
    assert (served, late) == ({1}, {})  # nothing to read on 1
    assert c.waiting == {0: (130, {A0: 8})}
    served, late = c.step({0, 1}, {A0: 7}, now=102)
    assert (served, late) == ({0, 1}, {})


def test_the_hold_runs_out_and_says_how_far_behind() -> None:
    c = CatchUp(hold_us=30)
    c.begin({0}, {0: {A0: 8, B0: 4}}, now=100)
    assert c.step({0}, {A0: 5, B0: 3}, now=129) == (set(), {})
    assert c.step({0}, {A0: 5, B0: 3}, now=130) == ({0}, {0: 2})


def test_a_partition_no_longer_owned_stops_waiting_and_reset_starts_over() -> None:
    c = CatchUp(hold_us=30)
    c.begin({0, 1}, {0: {A0: 8}, 1: {A1: 2}}, now=100)
    assert c.step({1}, {A1: 1}, now=101) == ({1}, {})
    assert c.waiting == {}
    assert c.reset() == {1}
    assert c.served == set() and c.new({1}) == {1}
