"""Where producers put a key: murmur2 as Kafka's Java client, CRC32 as librdkafka's default."""

from __future__ import annotations

import zlib

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from caseclock.live import producer
from caseclock.live.partitioning import (
    misrouted,
    murmur2,
    partition_for,
    partition_function,
    which_partitioners,
)

JAVA_MURMUR2 = [
    # The Java client's test vectors (Utils.murmur2, signed), as in test_producer.py.
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]

LONG = b"this is another string with more length to it perhaps"
LIBRDKAFKA = [
    # librdkafka's tests/0048-partitioner.c: (key, consistent = crc32, murmur2 & 0x7fffffff).
    (b"23456", 0xB1B451D7, 0x058D780F),
    (LONG, 0xB0150DF7, 0x4F7703DA),
    (b"hejsan", 0xD077037E, 0x5EC19395),
]


def test_the_producer_places_alerts_with_the_same_murmur2() -> None:
    assert producer.murmur2 is murmur2


@pytest.mark.parametrize(("key", "signed"), JAVA_MURMUR2)
@pytest.mark.parametrize("n", [1, 3, 8, 17, 64])
def test_murmur2_partitions_as_the_java_client(key: bytes, signed: int, n: int) -> None:
    # Java: Utils.toPositive(Utils.murmur2(key)) % numPartitions
    assert partition_for("murmur2", key, n) == (signed & 0x7FFFFFFF) % n


@pytest.mark.parametrize(("key", "crc", "mm2"), LIBRDKAFKA)
@pytest.mark.parametrize("n", [7, 17])
def test_both_partition_as_librdkafka(key: bytes, crc: int, mm2: int, n: int) -> None:
    assert partition_for("crc32", key, n) == crc % n == zlib.crc32(key) % n
    assert partition_for("murmur2", key, n) == mm2 % n


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=1, max_value=256))
def test_murmur2_is_aiokafkas_and_crc32_is_zlibs(key: bytes, n: int) -> None:
    every = list(range(n))
    assert partition_for("murmur2", key, n) == DefaultPartitioner()(key, every, every)
    assert partition_for("crc32", key, n) == zlib.crc32(key) % n  # unsigned in Python 3
    for name in ("murmur2", "crc32"):
        route = partition_function(name)
        assert route is not None and route(key, n) == partition_for(name, key, n)


def test_any_checks_nothing() -> None:
    assert partition_function("any") is None


def test_which_partitioners_put_a_key_on_a_partition() -> None:
    key, n = b"CASE-1042", 8
    mm2, crc = partition_for("murmur2", key, n), partition_for("crc32", key, n)
    assert (mm2, crc) == (2, 4)
    assert which_partitioners(key, mm2, n) == ("murmur2",)
    assert which_partitioners(key, crc, n) == ("crc32",)
    assert which_partitioners(key, 7, n) == ()
    assert which_partitioners(key, 0, 1) == ("murmur2", "crc32")


def test_the_detail_names_both_partitions_and_the_match() -> None:
    assert misrouted("murmur2", b"CASE-1042", 4, 8) == (
        "on partition 4, murmur2 puts key 'CASE-1042' on 2; it matches crc32: "
        "set CASECLOCK_INPUT_PARTITIONER=crc32 or fix the producer"
    )
    assert misrouted("crc32", b"CASE-1042", 2, 8).startswith(
        "on partition 2, crc32 puts key 'CASE-1042' on 4; it matches murmur2: "
    )
    neither = misrouted("murmur2", b"CASE-1042", 7, 8)
    assert "on 2; it matches neither murmur2 nor crc32" in neither
    assert "fix the producer" in neither
    long = misrouted("murmur2", b"\xff" + b"x" * 200, 0, 2)
    assert "'\ufffdxxx" in long and "x" * 64 not in long  # shown shortened and readable
