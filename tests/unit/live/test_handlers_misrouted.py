"""The input path's partition check (CASECLOCK_INPUT_PARTITIONER): a message on another
partition than its key's is dead-lettered as `misrouted`, before it is decoded."""

from __future__ import annotations

from caseclock.contracts.deadletter import DeadLetter
from caseclock.core.timeutil import to_us
from caseclock.live.partitioning import partition_for
from caseclock.live.ports import DEAD_LETTERS, Inbound, Origin
from tests.factories import T0, note, opened
from tests.unit.live.fakes import FakeOutbox, inbound, service

CASE = "CASE-1042"
KEY = CASE.encode()
MURMUR2, CRC32 = partition_for("murmur2", KEY, 8), partition_for("crc32", KEY, 8)


def sample(svc: object, name: str, labels: dict[str, str] | None = None) -> float:
    registry = svc.metrics.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, labels or {}) or 0.0


def checked(partitioner: str) -> dict[str, str]:
    return {"CASECLOCK_INPUT_PARTITIONER": partitioner, "CASECLOCK_PARTITIONS": "8"}


def dead_letters(box: FakeOutbox) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(v) for c, _, v in box.sent if c == DEAD_LETTERS]


def test_the_case_is_on_different_partitions_under_each() -> None:
    assert (MURMUR2, CRC32) == (2, 4)


async def test_a_misrouted_message_is_dead_lettered_with_its_bytes() -> None:
    svc, store, box, _ = service(to_us(T0), env=checked("murmur2"))
    msg = inbound(opened(CASE, 0, 1), CRC32, offset=17)  # produced by a librdkafka client
    await svc.on_inputs([msg])
    [dl] = dead_letters(box)
    assert dl.reason == "misrouted"
    assert dl.detail == (
        f"on partition {CRC32}, murmur2 puts key '{CASE}' on {MURMUR2}; it matches crc32: "
        "set CASECLOCK_INPUT_PARTITIONER=crc32 or fix the producer"
    )
    assert (dl.topic, dl.partition, dl.offset) == ("case-opened", CRC32, 17)
    assert dl.original_key() == KEY and dl.original_value() == msg.value
    assert store.rows == {} and store.puts == 0
    assert sample(svc, "caseclock_dead_letters_total", {"reason": "misrouted"}) == 1


async def test_a_correctly_routed_message_is_applied() -> None:
    svc, store, box, _ = service(to_us(T0), env=checked("murmur2"))
    await svc.on_inputs([inbound(opened(CASE, 0, 1), MURMUR2), inbound(note(CASE, 0.1), MURMUR2)])
    assert box.records(DEAD_LETTERS) == []
    assert list(store.rows) == [(MURMUR2, KEY)]
    assert sample(svc, "caseclock_dead_letters_total", {"reason": "misrouted"}) == 0


async def test_any_skips_the_check() -> None:
    svc, store, box, _ = service(to_us(T0), env=checked("any"))
    await svc.on_inputs([inbound(opened(CASE, 0, 1), 7)])  # neither puts it there
    assert box.records(DEAD_LETTERS) == []
    assert list(store.rows) == [(7, KEY)]


async def test_crc32_accepts_crc32_routed_and_refuses_murmur2_routed() -> None:
    svc, store, box, _ = service(to_us(T0), env=checked("crc32"))
    ok, wrong = inbound(opened(CASE, 0, 1), CRC32), inbound(note(CASE, 0.1), MURMUR2, offset=3)
    await svc.on_inputs([ok, wrong])
    [dl] = dead_letters(box)
    assert (dl.reason, dl.partition, dl.offset) == ("misrouted", MURMUR2, 3)
    assert dl.detail.startswith(f"on partition {MURMUR2}, crc32 puts key '{CASE}' on {CRC32}")
    assert "it matches murmur2: set CASECLOCK_INPUT_PARTITIONER=murmur2" in dl.detail
    assert dl.original_value() == wrong.value
    assert list(store.rows) == [(CRC32, KEY)]


async def test_a_partition_neither_gives_says_so() -> None:
    svc, _, box, _ = service(to_us(T0), env=checked("murmur2"))
    await svc.on_inputs([inbound(opened(CASE, 0, 1), 7)])
    [dl] = dead_letters(box)
    assert dl.reason == "misrouted" and "matches neither murmur2 nor crc32" in dl.detail


async def test_keyless_and_empty_keys_stay_key_mismatch() -> None:
    """The check needs a key: a message without one (or with an empty one) is refused as
    before, whatever partition it is on."""
    svc, _, box, _ = service(to_us(T0), env=checked("murmur2"))
    good = inbound(opened(CASE, 0, 1), 7)
    keyless = Inbound(Origin("case-opened", 7, 1, None), good.value)
    empty = Inbound(Origin("case-opened", 7, 2, b""), good.value)
    await svc.on_inputs([keyless, empty])
    assert [d.reason for d in dead_letters(box)] == ["key-mismatch", "key-mismatch"]
