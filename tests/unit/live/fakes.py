"""In-memory fakes of the service layer's ports (caseclock.live.ports)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson
from prometheus_client import CollectorRegistry

from caseclock.core.facts import InboundEvent
from caseclock.core.policy import Policy, load_policy
from caseclock.live.config import Config
from caseclock.live.handlers import CaseService
from caseclock.live.metrics import Metrics
from caseclock.live.ports import Inbound, Origin


class FakeStore:
    """Rows per (partition, key); counts writes so tests can see batching.

    A stand-in for the Faust table only as long as it keeps the CaseStore contract, which
    tests/contract/test_case_store.py checks over it and the real stores alike."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, bytes], bytes] = {}
        self.puts = 0

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.rows.get((partition, key))

    def put(self, partition: int, key: bytes, row: bytes) -> None:
        self.puts += 1
        self.rows[(partition, key)] = row

    def delete(self, partition: int, key: bytes) -> None:
        self.rows.pop((partition, key), None)


@dataclass
class FakeOutbox:
    """Records every send; `fail` decides, per record, an exception to fail its ack with.

    `log` shows the order of events: ("send", channel) when a record is handed over and
    ("ack", channel) when its acknowledgement is awaited, so tests can check that a batch is
    sent before any acknowledgement is waited for."""

    fail: Callable[[str, bytes | None, bytes], BaseException | None] = lambda c, k, v: None
    on_ack: Callable[[str, bytes | None, bytes], None] = lambda c, k, v: None
    """Called as a record's acknowledgement is awaited (a test can move its clock there)."""
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)

    async def send_all(
        self, records: Sequence[tuple[str, bytes | None, bytes]]
    ) -> list[Awaitable[object]]:
        return [self._send(channel, key, value) for channel, key, value in records]

    def _send(self, channel: str, key: bytes | None, value: bytes) -> Awaitable[object]:
        self.log.append(("send", channel))
        error = self.fail(channel, key, value)

        async def ack() -> object:
            self.log.append(("ack", channel))
            self.on_ack(channel, key, value)
            if error is not None:
                raise error
            self.sent.append((channel, key, value))
            return None

        return ack()

    def records(self, channel: str) -> list[dict[str, object]]:
        return [orjson.loads(v) for c, _, v in self.sent if c == channel]


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def service(
    now: int,
    policy: Policy | None = None,
    env: dict[str, str] | None = None,
    outbox: FakeOutbox | None = None,
) -> tuple[CaseService, FakeStore, FakeOutbox, FakeClock]:
    # No input skew unless a test asks: most tests apply facts and evaluate at one instant.
    # No partition check either: most tests put every case on partition 0.
    defaults = {"CASECLOCK_INPUT_SKEW": "0", "CASECLOCK_INPUT_PARTITIONER": "any"}
    cfg = Config.from_env({**defaults, **(env or {})})
    pol = policy or load_policy()
    metrics = Metrics(CollectorRegistry())
    store, box, clock = FakeStore(), outbox or FakeOutbox(), FakeClock(now)

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    svc = CaseService(cfg, pol, metrics, store, box, clock, sleep=no_wait)
    return svc, store, box, clock


def inbound(ev: InboundEvent, partition: int = 0, offset: int = 0) -> Inbound:
    """The message a ticketing system would have produced for `ev`, keyed by its case."""
    doc = ev.model_dump(mode="json")
    key = ev.case_id.encode()
    return Inbound(Origin(f"{ev.type}", partition, offset, key), orjson.dumps(doc))
