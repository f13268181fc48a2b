"""Scripted feeding: messages produced at set wall-clock offsets, recorded as they were sent.

A test writes a `Script` (events, raw messages, exact resends), `play` produces it against a
start time and returns what was sent (`Sent`), which replay then predicts alerts for. The
partitioning helpers place a test's cases on chosen partitions.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from tests.integration.deployment import Deployment
from tests.integration.times import US, iso, now_us


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives `key`."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key, every, every))


def keys_on_partitions(stem: str, partitions: int, per_partition: int) -> dict[int, list[str]]:
    """`per_partition` case ids on each partition (found by trying stem-0, stem-1, ...)."""
    out: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(v) < per_partition for v in out.values()):
        key = f"{stem}-{i}"
        p = partition_of(key.encode(), partitions)
        if len(out[p]) < per_partition:
            out[p].append(key)
        i += 1
    return out


@dataclass
class Sent:
    """One message as produced: where it went, its exact bytes, and when."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    at_us: int
    label: str = ""


@dataclass
class Step:
    offset_s: float
    topic: str
    key: bytes | None
    doc: dict[str, Any] | None = None
    raw: bytes | None = None
    resend: str | None = None
    label: str = ""


class Script:
    """Messages to produce at wall-clock offsets from a start time.

    An event's `occurred_at` is the wall time at which it is produced unless the event gives
    one (a late fact: `occurred_at=lambda t: iso(t - 2 * US)`); a field given as a
    callable gets that time (integer microseconds) and returns the field's value, so an ETA
    can be "six seconds after the eta-set". `raw` messages (malformed ones) and `resend`
    (the exact bytes of an earlier labelled message, for duplicates) are sent as they are.
    """

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.steps: list[Step] = []
        self._n = 0

    def event(
        self,
        offset_s: float,
        type_: str,
        case_id: str,
        *,
        event_id: str | None = None,
        label: str = "",
        **fields: Any,
    ) -> None:
        self._n += 1
        doc = {"event_id": event_id or f"{case_id}-e{self._n}", "type": type_, "case_id": case_id}
        doc.update(fields)
        self.steps.append(
            Step(offset_s, self.dep.topic(type_), case_id.encode(), doc=doc, label=label)
        )

    def raw(
        self, offset_s: float, type_: str, key: bytes | None, value: bytes | None, label: str
    ) -> None:
        """A message sent as given (value None: a tombstone)."""
        self.steps.append(Step(offset_s, self.dep.topic(type_), key, raw=value, label=label))

    def resend(self, offset_s: float, label: str) -> None:
        """The exact bytes of an earlier message (a duplicate delivery)."""
        self.steps.append(Step(offset_s, "", None, resend=label, label=f"{label}(again)"))


async def play(bootstrap: str, t0_us: int, script: Script) -> list[Sent]:
    """Produce the script's messages at t0 + their offsets, in order; return what was sent."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    sent: list[Sent] = []
    by_label: dict[str, Sent] = {}
    try:
        for step in sorted(script.steps, key=lambda s: s.offset_s):
            delay = (t0_us + round(step.offset_s * US) - now_us()) / US
            if delay > 0:
                await asyncio.sleep(delay)
            at = now_us()
            topic, key, value = step.topic, step.key, step.raw
            if step.resend is not None:
                first = by_label[step.resend]
                topic, key, value = first.topic, first.key, first.value
            elif step.doc is not None:
                doc = {k: (v(at) if callable(v) else v) for k, v in step.doc.items()}
                doc.setdefault("occurred_at", iso(at))  # given (a late fact) or now
                value = orjson.dumps(doc)
            md = await p.send_and_wait(topic, value, key=key)
            s = Sent(md.topic, md.partition, md.offset, key, value, at, step.label)
            sent.append(s)
            if step.label:
                by_label.setdefault(step.label, s)
    finally:
        await p.stop()
    return sent
