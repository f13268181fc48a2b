"""The support-desk simulator (caseclock.cli.simulator): what its three users rely on.

The benchmark history is covered by tests/unit/test_bench_generator.py (through
bench/generate.py); here: the malformed messages are rejected for the reason they stand for
(the end-to-end test counts on one dead letter of each), the demo's stories and the
end-to-end waves are valid events under their policies, and the wall-clock player sends in
order and stops.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from caseclock.cli.simulator import (
    INPUT_REASONS,
    MALFORMED_KINDS,
    BackdatedDesk,
    Desk,
    Message,
    StoryDesk,
    malformed,
    play,
)
from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.facts import INBOUND_TYPES
from caseclock.core.policy import load_policy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def route(kind: str) -> str:
    return f"in.{kind}"


@pytest.mark.parametrize("reason", [r for r in MALFORMED_KINDS if r != "tombstone"])
def test_each_malformed_message_is_rejected_for_its_reason(reason: str) -> None:
    topic, key, value = malformed(reason, route, "X1", "bad-1", NOW)
    assert topic.startswith("in.") and value is not None
    with pytest.raises(Rejected) as e:
        decode_event(value, load_policy(), key=key)
    assert e.value.reason == reason


def test_the_tombstone_has_no_value() -> None:
    # The adapter rejects a tombstone before decoding (docs/architecture.md, step 3).
    assert malformed("tombstone", route, "X1", "bad-1", NOW)[2] is None


def test_the_demo_stories_are_valid_events_under_the_demo_policy() -> None:
    policy = load_policy("builtin:demo")
    desk = StoryDesk(route, every=1.0, seed=3)
    types: Counter[str] = Counter()
    for _ in range(200):
        case, steps = desk.story()
        delays = [d for d, _ in steps]
        assert delays == sorted(delays) and delays[0] == 0.0
        for _, step in steps:
            topic, key, value = desk.materialise(case, step, NOW)
            assert key == case.encode() and value is not None
            try:
                ev = decode_event(value, policy, key=key)
            except Rejected as e:
                assert e.reason == "naive-timestamp"  # the demo's one kind of bad message
                types["dead"] += 1
                continue
            assert topic == route(ev.type)
            types[ev.type] += 1
    assert set(types) == {*INBOUND_TYPES, "dead"}


def test_the_end_to_end_waves_cover_every_type_and_dead_letter_reason() -> None:
    policy = load_policy()
    desk = BackdatedDesk(route)
    sent: list[Message] = []
    for i in range(2 * len(MALFORMED_KINDS)):
        sent.extend(desk.wave(i))
    sent.extend(desk.due(float("inf")))  # everything scheduled, as if the load ran on
    types: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for _, key, value in sent:
        if value is None:
            reasons["tombstone"] += 1
            continue
        try:
            types[decode_event(value, policy, key=key).type] += 1
        except Rejected as e:
            reasons[e.reason] += 1
    assert set(types) == set(INBOUND_TYPES)
    assert set(reasons) == set(MALFORMED_KINDS)
    assert set(MALFORMED_KINDS) - {"tombstone"} == set(INPUT_REASONS)
    assert desk.sent["duplicate"] > 0
    ids = [orjson.loads(v)["event_id"] for _, _, v in sent if v and v.startswith(b'{"event_id"')]
    assert len(ids) - len(set(ids)) == desk.sent["duplicate"]  # only duplicates repeat an id


class _ThreeTicks(Desk):
    """One message a tick for three ticks; the second tick also schedules one at once."""

    def __init__(self) -> None:
        super().__init__(route, 1, "t")
        self.ticks = 0

    def tick(self, i: int) -> list[Message]:
        self.ticks += 1
        if i == 1:
            self.schedule(0.0, lambda now: ("later", None, b"scheduled"))
        return [("tick", None, str(i).encode())]

    def finished(self) -> bool:
        return self.ticks >= 3 and not self.scheduled


async def test_play_sends_each_tick_then_what_fell_due_and_stops_when_finished() -> None:
    desk = _ThreeTicks()
    batches: list[list[bytes | None]] = []

    async def send(batch: list[Message]) -> None:
        batches.append([v for _, _, v in batch])

    await play(desk, send, tick=0.001, seconds=5.0)
    assert batches == [[b"0"], [b"1", b"scheduled"], [b"2"]]


async def test_play_stops_when_the_desk_is_stopped() -> None:
    desk = BackdatedDesk(route)
    desk.stopped.set()
    sent: list[Message] = []

    async def send(batch: list[Message]) -> None:
        sent.extend(batch)

    await play(desk, send, tick=1.0, seconds=30.0)
    assert sent == []
