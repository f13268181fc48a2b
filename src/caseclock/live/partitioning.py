"""Which partition a producer puts a key on: the check that input is co-partitioned.

A case's facts meet its row only if every producer of every input topic puts the case's key
on the same partition (docs/architecture.md, co-partitioning), and that needs one partitioner
for all of them. Kafka's Java client, Kafka Streams, aiokafka and kafka-python hash a key with
murmur2; librdkafka's clients (confluent-kafka-*, kcat, most Go, Node and .NET clients)
default to `consistent_random`, which for a key is CRC32. The worker checks each input message
against the partitioner of CASECLOCK_INPUT_PARTITIONER and dead-letters one on another
partition (`misrouted`), naming the partitioner it matched.

Pure: bytes in, numbers out. `murmur2` is also the hash `live.producer` places alerts with.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Final

PARTITIONERS: Final = ("murmur2", "crc32", "any")
"""The values of CASECLOCK_INPUT_PARTITIONER; `any` checks nothing."""
HASHES: Final = ("murmur2", "crc32")
"""The partitioners a key's partition can be computed for."""

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I") for n in range(33)]
"""Unpackers of keys up to 128 bytes, by their count of whole words."""


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key (the Java client's `Utils.murmur2`, which aiokafka's
    `partitioner.murmur2` ports a byte at a time), over little-endian 32-bit words."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length >> 2
    if words:
        unpack = _WORDS[words] if words < len(_WORDS) else struct.Struct(f"<{words}I")
        for k in unpack.unpack_from(data):
            k = (k * _M) & _MASK
            h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    rest = length & 3
    if rest:
        tail = length - rest
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def _by_murmur2(key: bytes, n: int) -> int:
    """The Java client's (and aiokafka's) partition of a key, librdkafka's `murmur2_random`."""
    return (murmur2(key) & 0x7FFFFFFF) % n


def _by_crc32(key: bytes, n: int) -> int:
    """librdkafka's `consistent_random` (its default) and `consistent` partition of a key."""
    return zlib.crc32(key) % n


_PARTITION_OF: Final[dict[str, Callable[[bytes, int], int]]] = {
    "murmur2": _by_murmur2,
    "crc32": _by_crc32,
}


def partition_for(partitioner: str, key: bytes, n: int) -> int:
    """The partition of `n` that `partitioner` (murmur2 or crc32) puts a non-empty `key` on."""
    return _PARTITION_OF[partitioner](key, n)


def which_partitioners(key: bytes, partition: int, n: int) -> tuple[str, ...]:
    """Which of murmur2 and crc32 put `key` on `partition` of `n`."""
    return tuple(name for name in HASHES if _PARTITION_OF[name](key, n) == partition)


def partition_function(partitioner: str) -> Callable[[bytes, int], int] | None:
    """What the input path calls per message, (key, n) -> partition; None for `any`."""
    return _PARTITION_OF.get(partitioner)


def misrouted(partitioner: str, key: bytes, partition: int, n: int) -> str:
    """The dead letter's detail for a key found on `partition` that `partitioner` puts on
    another: where it is, where it belongs, and which partitioner it matched."""
    shown = key[:64].decode("utf-8", "replace")
    head = (
        f"on partition {partition}, {partitioner} puts key {shown!r} on "
        f"{partition_for(partitioner, key, n)}"
    )
    matched = which_partitioners(key, partition, n)
    if matched:
        return (
            f"{head}; it matches {' and '.join(matched)}: set "
            f"CASECLOCK_INPUT_PARTITIONER={matched[0]} or fix the producer"
        )
    return (
        f"{head}; it matches neither murmur2 nor crc32 (an explicit partition or a custom "
        "partitioner): fix the producer"
    )
