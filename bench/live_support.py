"""Pieces of bench/live_bench.py: a broker, workers as black boxes, Kafka I/O in bulk, and what
the processes cost (CPU, resident memory, machine load).

The worker is only seen from outside: its subprocess, its topics, its consumer group's committed
offsets, /metrics and /readyz. Workers are the integration harness's `WorkerProcess` with a
`BenchDeployment`, which leaves the settings under test at the worker's own defaults and drops
any setting the worker in this checkout does not know (so the suite runs unchanged on a worker
that renamed or removed one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:  # the harness lives in tests/, importable from the repo root
    sys.path.insert(0, str(REPO))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

# The names imported `as` themselves are re-exported: live_bench.py imports the harness through
# this module, after the path set-up above.
from tests.integration.deployment import INPUT_TOPICS as INPUT_TOPICS  # noqa: E402
from tests.integration.deployment import Deployment  # noqa: E402
from tests.integration.deployment import WorkerProcess as WorkerProcess  # noqa: E402
from tests.integration.expectations import due as due  # noqa: E402
from tests.integration.expectations import expected_alerts as expected_alerts  # noqa: E402
from tests.integration.expectations import fired as fired  # noqa: E402
from tests.integration.expectations import percentile as percentile  # noqa: E402
from tests.integration.kafka_io import create_topics as create_topics  # noqa: E402
from tests.integration.kafka_io import read_all as read_all  # noqa: E402
from tests.integration.metrics_text import metric_samples  # noqa: E402
from tests.integration.scripts import Sent as Sent  # noqa: E402
from tests.integration.times import US as US  # noqa: E402
from tests.integration.times import iso as iso  # noqa: E402
from tests.integration.times import now_us as now_us  # noqa: E402
from tests.kafka_broker import LOCAL_KAFKA, local_broker, wait_for_broker  # noqa: E402

from caseclock.live.config import SETTINGS_BY_ENV  # noqa: E402
from common import rss_kib  # noqa: E402

AT_WORKER_DEFAULT = ("CASECLOCK_TICK_INTERVAL", "CASECLOCK_RECOVERY_TIMEOUT")
"""Settings the harness shortens for tests; the bench measures the worker's defaults."""

CONSUMED = "caseclock_events_consumed_total"
DUPLICATE = "caseclock_events_duplicate_total"
DEAD_LETTERS = "caseclock_dead_letters_total"
OPEN_CASES = "caseclock_open_cases"

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- the broker --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    started_here: bool
    pid: int | None


def local_broker_pid(bootstrap: str) -> int | None:
    """The pid of the local-kafka.sh broker on this bootstrap's port (None if not one)."""
    port = bootstrap.rsplit(":", 1)[-1]
    out = subprocess.run(
        ["bash", str(LOCAL_KAFKA), "status"],
        env={**os.environ, "KAFKA_PORT": port},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    m = re.search(r"\bpid (\d+)", out.stdout)
    return int(m.group(1)) if m else None


@contextlib.contextmanager
def bench_broker(bootstrap: str | None) -> Iterator[Broker]:
    """The given broker (left running), or a local-kafka.sh broker on free ports of our own,
    stopped by its pid file when the block ends, also on errors and interrupts."""
    if bootstrap:
        wait_for_broker(bootstrap)
        yield Broker(bootstrap, False, local_broker_pid(bootstrap))
        return
    with local_broker() as kafka:
        wait_for_broker(kafka.bootstrap)
        yield Broker(kafka.bootstrap, True, local_broker_pid(kafka.bootstrap))


# --- workers -----------------------------------------------------------------------------------


@dataclass
class BenchDeployment(Deployment):
    """The harness's deployment with the bench's policy, the worker's defaults for what is
    measured (AT_WORKER_DEFAULT), and no setting the worker does not know."""

    policy: str = ""
    dropped: list[str] = field(default_factory=list)

    @property
    def policy_path(self) -> Path:
        p = self.workdir / "policy.toml"
        if self.policy and not p.exists():
            p.write_text(self.policy)
        return p if self.policy else super().policy_path

    def env(self, web_port: int, data_dir: Path) -> dict[str, str]:
        env = super().env(web_port, data_dir)
        for name in AT_WORKER_DEFAULT:
            env.pop(name, None)
        unknown = sorted(k for k in env if k.startswith("CASECLOCK_") and k not in SETTINGS_BY_ENV)
        for name in unknown:
            env.pop(name)
        self.dropped = unknown
        return env

    def settings(self) -> dict[str, str]:
        """The CASECLOCK_* settings a worker of this deployment gets, beyond the defaults
        (ports and paths left out)."""
        env = self.env(0, self.workdir)
        skip = {"CASECLOCK_WEB_PORT", "CASECLOCK_DATA_DIR", "CASECLOCK_POLICY_FILE"}
        return {
            k: v for k, v in sorted(env.items()) if k.startswith("CASECLOCK_") and k not in skip
        }


def worker_pid(w: WorkerProcess) -> int:
    assert w.proc is not None, "worker not started"
    return w.proc.pid


def time_to_ready(w: WorkerProcess, started: float, timeout: float) -> float:
    """Seconds from `started` (time.monotonic() at Popen) to the first /readyz 200."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if w.proc is not None and w.proc.poll() is not None and w.proc.returncode != 75:
            raise RuntimeError(f"worker {w.name} exited {w.proc.returncode}: {w.log_tail()}")
        if w.ready():  # also restarts a worker whose recovery watchdog fired (w.restarts)
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"worker {w.name} not ready in {timeout:.0f}s: {w.log_tail()}")


def start_worker(w: WorkerProcess, timeout: float) -> float:
    """Start the worker; return its seconds to ready."""
    t0 = time.monotonic()
    w.start()
    return time_to_ready(w, t0, timeout)


def scrape(w: WorkerProcess) -> str | None:
    try:
        status, body = w.get("/metrics", timeout=5.0)
    except OSError:
        return None
    return body.decode() if status == 200 else None


def metric_total(text: str | None, name: str) -> float | None:
    """Sum of every sample of one metric (None when the worker does not export it)."""
    if text is None:
        return None
    samples = metric_samples(text, name)
    return sum(samples.values()) if samples else None


def events_seen(text: str | None) -> int | None:
    """Input events the worker has dealt with: applied, duplicate or dead-lettered."""
    parts = [metric_total(text, n) for n in (CONSUMED, DUPLICATE, DEAD_LETTERS)]
    if parts[0] is None:
        return None
    return int(sum(p or 0.0 for p in parts))


# --- process and machine figures ---------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (all its threads)."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores, every process) since boot."""
    try:
        cols = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = cols[3] + (cols[4] if len(cols) > 4 else 0)
    return (sum(cols[:8]) - idle) / _TICK


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Meter:
    """Wall time, CPU seconds of named processes and of the whole machine, and the load
    average, between its creation and `done()`. `others` is the busy CPU of every process not
    named here (other people's work on a shared machine)."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {"bench": os.getpid(), **pids}
        self.t0 = time.monotonic()
        self.load0 = load()
        self.cpu0 = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self.busy0 = machine_busy_seconds()

    def done(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        cpu: dict[str, float | None] = {}
        for n, p in self.pids.items():
            a, b = self.cpu0[n], cpu_seconds(p)
            cpu[n] = None if a is None or b is None else round(b - a, 2)
        busy1 = machine_busy_seconds()
        busy = None if self.busy0 is None or busy1 is None else busy1 - self.busy0
        ours = sum(v for v in cpu.values() if v is not None)
        return {
            "wall_s": round(wall, 3),
            "cpu_s": cpu,
            "cpu_cores": {n: None if v is None else round(v / wall, 3) for n, v in cpu.items()},
            "machine_busy_cores": None if busy is None else round(busy / wall, 3),
            "others_busy_cores": None if busy is None else round(max(0.0, busy - ours) / wall, 3),
            "load_start": self.load0,
            "load_end": load(),
        }


def memory_kib(pid: int) -> dict[str, int | None]:
    return {"rss_kib": rss_kib(pid), "peak_rss_kib": rss_kib(pid, "VmHWM")}


# --- Kafka in bulk -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


async def produce_bulk(
    bootstrap: str, records: Iterable[tuple[str, bytes, bytes]], keep: bool = False
) -> tuple[int, float, list[Produced]]:
    """Send (topic, key, value) records as fast as the producer batches them (acks=all);
    returns (count, seconds, what was sent when `keep`)."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await p.start()
    sent: list[Produced] = []
    n = 0
    t0 = time.monotonic()
    try:
        pending: list[tuple[asyncio.Future[Any], str, bytes, bytes]] = []

        async def settle() -> None:
            for fut, topic, key, value in pending:
                md = await fut
                if keep:
                    sent.append(Produced(topic, md.partition, md.offset, key, value))
            pending.clear()

        for topic, key, value in records:
            pending.append((await p.send(topic, value, key=key), topic, key, value))
            n += 1
            if len(pending) >= 20_000:
                await settle()
        await settle()
    finally:
        await p.stop()
    return n, time.monotonic() - t0, sent


class Probe:
    """One admin client and one group-less consumer, for end and committed offsets."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> Probe:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        out: list[TopicPartition] = []
        for t in topics:
            parts = self.consumer.partitions_for_topic(t)
            if not parts:
                await self.consumer._client.force_metadata_update()  # a topic just created
                parts = self.consumer.partitions_for_topic(t) or set()
            out.extend(TopicPartition(t, p) for p in sorted(parts))
        return out

    async def end_total(self, topics: Iterable[str]) -> int:
        tps = await self.partitions(topics)
        return sum((await self.consumer.end_offsets(tps)).values()) if tps else 0

    async def committed_total(self, group: str, topics: Sequence[str]) -> int:
        offsets = await self.admin.list_consumer_group_offsets(group)
        return sum(
            max(0, om.offset) for tp, om in offsets.items() if tp.topic in topics and om is not None
        )

    async def topics(self) -> set[str]:
        return set(await self.admin.list_topics())


@dataclass
class Consumption:
    """How a worker got through `expected` input records: samples of (seconds since `t0`,
    events the worker reports (metric), offsets its group committed)."""

    expected: int
    samples: list[tuple[float, int | None, int]] = field(default_factory=list)
    metric_done_s: float | None = None
    committed_done_s: float | None = None
    timed_out: bool = False
    busy: dict[str, Any] | None = None
    """The meter's figures at the first sign of the end (the metric, else the offsets)."""

    def _first(self, col: int, at_least: int) -> tuple[float, int] | None:
        for s in self.samples:
            v = s[col]
            if v is not None and v >= at_least:
                return s[0], int(v)
        return None

    def rate(self, col: int, base: int) -> dict[str, Any]:
        """Figures from one column (1: metric, 2: committed offsets). `events_per_s` is taken
        between the first sample with progress and the last sample before the end, so the
        worker was busy the whole interval; `wall_s` is first progress to the end sample."""
        first = self._first(col, base + 1)
        end = self._first(col, base + self.expected)
        if first is None or end is None:
            return {"events_per_s": None, "wall_s": None}
        inside = [s for s in self.samples if first[0] <= s[0] < end[0] and s[col] is not None]
        last = inside[-1] if inside else None
        wall = end[0] - first[0]
        out: dict[str, Any] = {
            "first_progress_s": round(first[0], 3),
            "done_s": round(end[0], 3),
            "wall_s": round(wall, 3),
            "events_per_s_wall": round((end[1] - first[1]) / wall, 1) if wall > 0 else None,
        }
        before = [s for s in self.samples if s[0] < first[0] and s[col] is not None]
        if last is not None and last[0] > first[0]:
            out["events_per_s"] = round((int(last[col] or 0) - first[1]) / (last[0] - first[0]), 1)
            out["rate_from"] = "interior samples (busy throughout)"
        elif wall <= 0 and before:  # all of it between two samples: a lower bound
            span = end[0] - before[-1][0]
            out["events_per_s"] = round((end[1] - int(before[-1][col] or 0)) / span, 1)
            out["rate_from"] = "sample before progress to done (one interval: a lower bound)"
        else:
            out["events_per_s"] = out["events_per_s_wall"]
            out["rate_from"] = "first progress to done (too few samples for more)"
        return out

    def summary(self, base: int = 0) -> dict[str, Any]:
        """rate() from the metric when the worker exports it, else from the offsets."""
        return self.rate(1 if self.metric_done_s is not None else 2, base)


async def watch_consumption(
    probe: Probe,
    w: WorkerProcess,
    group: str,
    topics: Sequence[str],
    expected: int,
    *,
    t0: float,
    give_up_s: float,
    interval: float = 0.5,
    metric_base: int = 0,
    committed_base: int = 0,
    need_commit: bool = True,
    meter: Meter | None = None,
) -> Consumption:
    """Poll the worker's metric and its group's committed offsets until both say `expected`
    more records were consumed (only the metric when `need_commit` is false and the metric is
    exported; only the offsets when it is not)."""
    c = Consumption(expected)
    deadline = time.monotonic() + give_up_s
    while True:
        now = time.monotonic() - t0
        seen = events_seen(scrape(w))
        committed = await probe.committed_total(group, topics)
        c.samples.append((now, seen, committed))
        if c.metric_done_s is None and seen is not None and seen >= metric_base + expected:
            c.metric_done_s = now
        if c.committed_done_s is None and committed >= committed_base + expected:
            c.committed_done_s = now
        ended = c.metric_done_s is not None or (seen is None and c.committed_done_s is not None)
        if meter is not None and c.busy is None and ended:
            c.busy = meter.done()
        metric_ok = c.metric_done_s is not None or seen is None
        commit_ok = c.committed_done_s is not None or (not need_commit and seen is not None)
        if metric_ok and commit_ok:
            return c
        if w.proc is not None and w.proc.poll() is not None:
            raise RuntimeError(f"worker {w.name} exited: {w.log_tail()}")
        if time.monotonic() > deadline:
            c.timed_out = True
            return c
        await asyncio.sleep(interval)
