"""The produce path's own partition choice (`live.producer`): the same as aiokafka's."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from caseclock.live.producer import _by_murmur2, murmur2


@given(st.binary(max_size=300))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_known_hashes_of_the_java_client() -> None:
    # Kafka's own UtilsTest.testMurmur2 vectors.
    assert murmur2(b"21") == 0xFFFFFFFF & -973932308
    assert murmur2(b"foobar") == 0xFFFFFFFF & -790332482
    assert murmur2(b"a-little-bit-long-string") == 0xFFFFFFFF & -985981536
    assert murmur2(b"a-little-bit-longer-string") == 0xFFFFFFFF & -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == 0xFFFFFFFF & -58897971
    assert murmur2(b"abc") == 0xFFFFFFFF & 479470107


def test_only_aiokafkas_default_partitioner_is_computed_here() -> None:
    metadata = SimpleNamespace(partitions_for_topic=lambda topic: {0, 1, 2})
    default = SimpleNamespace(_partitioner=DefaultPartitioner(), _metadata=metadata)
    custom = SimpleNamespace(_partitioner=lambda key, parts, avail: parts[0], _metadata=metadata)
    assert _by_murmur2(default, "t") == [0, 1, 2]
    assert _by_murmur2(custom, "t") is None  # asked per record: its own choice stands
