"""Run real `caseclock worker` processes against the test broker, feed them, read what they emit.

Workers are subprocesses (not in-process apps) so tests can SIGKILL them like an OOM-killer or
a node failure would, and so each has its own event loop, registry and web port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

FAST_POLICY = """
# Seconds instead of hours: the support-plus shape, scaled for tests.
[plans.support-plus]
warn_fraction = 0.5
[plans.support-plus.priorities.1]
time_to_open = "10s"
acknowledge = "4s"
update_every = "6s"
elevate = "immediately"
[plans.support-plus.priorities.2]
time_to_open = "20s"
acknowledge = "6s"
update_every = "10s"
elevate = "8s"
[plans.support-plus.priorities.3]
time_to_open = "30s"
acknowledge = "8s"
update_every = "20s"
elevate = "never"
"""

INPUT_TOPICS = ("case-opened", "case-noted", "eta-set", "case-resolved", "priority-changed")
ALERT_TYPES = ("ack-due", "update-due", "elevate-to-l2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    """Topic names and settings shared by every worker of one test (one consumer group)."""

    bootstrap: str
    prefix: str
    workdir: Path
    partitions: int = 4
    tick_interval: float = 0.2
    session_timeout: float = 8.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def app_id(self) -> str:
        return f"{self.prefix}-app"

    def topic(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def input_topics(self) -> list[str]:
        return [self.topic(t) for t in INPUT_TOPICS]

    @property
    def alert_topics(self) -> dict[str, str]:
        return {t: self.topic(t) for t in ALERT_TYPES}

    @property
    def dead_letter_topic(self) -> str:
        return self.topic("dead-letters")

    @property
    def policy_path(self) -> Path:
        p = self.workdir / "policy.toml"
        if not p.exists():
            p.write_text(FAST_POLICY)
        return p

    def env(self, web_port: int, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASECLOCK_")}
        env.update(
            CASECLOCK_BOOTSTRAP_SERVERS=self.bootstrap,
            CASECLOCK_APP_ID=self.app_id,
            CASECLOCK_INPUT_TOPICS=",".join(self.input_topics),
            CASECLOCK_ACK_TOPIC=self.alert_topics["ack-due"],
            CASECLOCK_UPDATE_TOPIC=self.alert_topics["update-due"],
            CASECLOCK_ELEVATE_TOPIC=self.alert_topics["elevate-to-l2"],
            CASECLOCK_DEAD_LETTER_TOPIC=self.dead_letter_topic,
            CASECLOCK_POLICY_FILE=str(self.policy_path),
            CASECLOCK_PARTITIONS=str(self.partitions),
            CASECLOCK_STORE="memory://",
            CASECLOCK_DATA_DIR=str(data_dir),
            CASECLOCK_TICK_INTERVAL=str(self.tick_interval),
            CASECLOCK_SESSION_TIMEOUT=str(self.session_timeout),
            CASECLOCK_WEB_PORT=str(web_port),
            CASECLOCK_LOG_LEVEL="info",
        )
        env.update(self.extra_env)
        return env


class WorkerProcess:
    """One `caseclock worker` subprocess; stopped (or killed) on exit."""

    def __init__(self, dep: Deployment, name: str) -> None:
        self.dep = dep
        self.name = name
        self.web_port = free_port()
        self.data_dir = dep.workdir / f"data-{name}"
        self.log_path = dep.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "caseclock.cli", "worker"],
            env=self.dep.env(self.web_port, self.data_dir),
            cwd=self.dep.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def ready(self) -> bool:
        try:
            status, body = self.get("/readyz")
        except OSError:
            return False
        return status == 200 and bool(orjson.loads(body).get("ready"))

    def partitions(self) -> list[int]:
        try:
            status, body = self.get("/readyz")
        except OSError:
            return []
        return list(orjson.loads(body).get("partitions", [])) if status == 200 else []

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited: {self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        raise AssertionError(f"worker {self.name} not ready in {timeout}s: {self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit: the worst case for durability."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes]]
) -> list[tuple[str, int, int]]:
    """Send (topic, key, value) in order; returns (topic, partition, offset) of each."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    try:
        out = []
        for topic, key, value in messages:
            md = await p.send_and_wait(topic, value, key=key)
            out.append((md.topic, md.partition, md.offset))
        return out
    finally:
        await p.stop()


def event_message(topic_of: Mapping[str, str], doc: Mapping[str, Any]) -> tuple[str, bytes, bytes]:
    """(topic, key, value) for an inbound event document, keyed by case_id."""
    return topic_of[doc["type"]], str(doc["case_id"]).encode(), orjson.dumps(doc)


async def read_all(
    bootstrap: str, topics: Iterable[str], idle: float = 1.0, timeout: float = 30.0
) -> list[tuple[str, int, int, bytes | None, bytes]]:
    """Every record currently in `topics` (from the beginning, no group), as
    (topic, partition, offset, key, value). Stops after `idle` seconds without news."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = []
        for t in topics:
            parts = c.partitions_for_topic(t)
            if parts is None:
                await c._client.force_metadata_update()  # noqa: SLF001 - topic just created
                parts = c.partitions_for_topic(t) or set()
            tps.extend(TopicPartition(t, p) for p in sorted(parts))
        if not tps:
            return []
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=int(idle * 1000))
            for tp, records in batch.items():
                out.extend((tp.topic, tp.partition, r.offset, r.key, r.value) for r in records)
            positions = {tp: await c.position(tp) for tp in tps}
            if not batch and all(positions[tp] >= end[tp] for tp in tps):
                break
        return out
    finally:
        await c.stop()


async def read_alerts(bootstrap: str, dep: Deployment, idle: float = 1.0) -> list[dict[str, Any]]:
    records = await read_all(bootstrap, dep.alert_topics.values(), idle=idle)
    return [orjson.loads(v) for *_, v in records if v is not None]


def run(coro: Any) -> Any:
    return asyncio.run(coro)
