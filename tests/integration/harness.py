"""Run real `caseclock worker` processes against the test broker, feed them, read what they emit.

Workers are subprocesses (not in-process apps) so tests can SIGKILL them like an OOM-killer or
a node failure would, and so each has its own event loop, registry and web port.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from caseclock.contracts.inbound import DEFAULT_MAX_MESSAGE_BYTES, Rejected, decode_event
from caseclock.core.policy import Policy, load_policy
from caseclock.core.timeutil import from_us, to_us
from caseclock.live.faust_app import RECOVERY_STUCK_EXIT
from caseclock.replay import replay

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

INPUT_TOPICS = (
    "case-opened",
    "case-noted",
    "eta-set",
    "case-resolved",
    "priority-changed",
    "status-changed",
    "case-reopened",
)
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
    recovery_timeout: float = 20.0
    extra_env: dict[str, str] = field(default_factory=dict)
    policy: str = FAST_POLICY
    """The policy file's text (TOML), written to the workdir once."""

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
            p.write_text(self.policy)
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
            CASECLOCK_RECOVERY_TIMEOUT=str(self.recovery_timeout),
            CASECLOCK_WEB_PORT=str(web_port),
            CASECLOCK_LOG_LEVEL="info",
        )
        env.update(self.extra_env)
        return env


class WorkerProcess:
    """One `caseclock worker` subprocess; stopped (or killed) on exit.

    Like a supervisor (Kubernetes' restartPolicy, compose's restart), it starts the worker
    again when the worker exits because its recovery watchdog fired (exit status 75); every
    other exit is left for the test to see. `restarts` counts those restarts. Starting and
    stopping hold a lock that supervising only tries, so a poller thread may supervise while
    the test starts or stops the worker, without waiting for it.
    """

    def __init__(
        self, dep: Deployment, name: str, extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.dep = dep
        self.name = name
        self.extra_env = dict(extra_env or {})
        """Settings of this worker alone (e.g. its CASECLOCK_GROUP_INSTANCE_ID)."""
        self.web_port = free_port()
        self.data_dir = dep.workdir / f"data-{name}"
        self.log_path = dep.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._lock = threading.RLock()

    def supervise(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # being started or stopped right now
        try:
            if self.proc is not None and self.proc.poll() == RECOVERY_STUCK_EXIT:
                self.restarts += 1
                self.start()
        finally:
            self._lock.release()

    def start(self) -> WorkerProcess:
        with self._lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "caseclock.cli", "worker"],
                env={**self.dep.env(self.web_port, self.data_dir), **self.extra_env},
                cwd=self.dep.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        return self

    def alive(self) -> bool:
        """The current process runs (a watchdog exit not yet restarted counts as down)."""
        return self.proc is not None and self.proc.poll() is None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def ready(self) -> bool:
        self.supervise()
        try:
            status, body = self.get("/readyz")
        except OSError:
            return False
        return status == 200 and bool(orjson.loads(body).get("ready"))

    def partitions(self) -> list[int]:
        self.supervise()
        try:
            status, body = self.get("/readyz")
        except OSError:
            return []
        return list(orjson.loads(body).get("partitions", [])) if status == 200 else []

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
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
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
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
    bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes | None]]
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


async def topic_partitions(c: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics` (that exist) as `c` sees them."""
    tps: list[TopicPartition] = []
    for t in topics:
        parts = c.partitions_for_topic(t)
        if parts is None:
            await c._client.force_metadata_update()  # the topic was just created
            parts = c.partitions_for_topic(t) or set()
        tps.extend(TopicPartition(t, p) for p in sorted(parts))
    return tps


async def read_all(
    bootstrap: str, topics: Iterable[str], idle: float = 1.0, give_up_after: float = 30.0
) -> list[tuple[str, int, int, bytes | None, bytes]]:
    """Every record currently in `topics` (from the beginning, no group), as
    (topic, partition, offset, key, value). Stops after `idle` seconds without news."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = await topic_partitions(c, topics)
        if not tps:
            return []
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[tuple[str, int, int, bytes | None, bytes]] = []
        deadline = time.monotonic() + give_up_after
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


# --- scripted feeding, replay expectations and alert checks --------------------------------

US = 1_000_000
MARGIN_US = 1_500_000
"""Alerts due this close to a cut-off may still be in flight: they are not compared."""

ALERT_FIELDS = ("alert_id", "type", "stage", "reason", "case_id", "priority", "due_at")


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    """RFC 3339 with a UTC offset, microsecond precision."""
    return from_us(us).isoformat()


def ts_us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


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


def load_test_policy(dep: Deployment) -> Policy:
    return load_policy(str(dep.policy_path))


def expected_alerts(dep: Deployment, sent: Iterable[Sent], horizon_us: int) -> list[dict[str, Any]]:
    """What `caseclock replay` says for the exact bytes sent, up to and including the horizon,
    as alert documents (serialised as the worker serialises them). Messages the worker rejects
    (same checks: key, size limit) are left out, as the worker leaves them out."""
    policy = load_test_policy(dep)
    limit = int(dep.extra_env.get("CASECLOCK_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES))
    events = []
    for s in sent:
        if s.value is None:
            continue
        try:
            events.append(decode_event(s.value, policy, key=s.key, max_bytes=limit))
        except Rejected:
            continue
    return [orjson.loads(a.to_json()) for a in replay(events, policy, until=horizon_us)]


def alert_key(a: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(ts_us(a[f]) if f == "due_at" else a[f] for f in ALERT_FIELDS)


def due(a: Mapping[str, Any]) -> int:
    return ts_us(a["due_at"])


def fired(a: Mapping[str, Any]) -> int:
    return ts_us(a["fired_at"])


def lateness_s(a: Mapping[str, Any]) -> float:
    return (fired(a) - due(a)) / US


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def describe(alerts: Iterable[Mapping[str, Any]], t0_us: int) -> str:
    """Alerts as readable lines, times as seconds after t0 (for assertion messages)."""
    rows = sorted(alerts, key=lambda a: (a["case_id"], due(a), a["type"], a["stage"]))
    return "\n".join(
        f"  {a['case_id']:<12} {a['type']:<13} {a['stage']:<7} {a['reason']:<20} "
        f"P{a['priority']} due={(due(a) - t0_us) / US:7.3f}"
        + (f" fired={(fired(a) - t0_us) / US:7.3f}" if "fired_at" in a else "")
        + (" catch-up" if a.get("catch_up") else "")
        for a in rows
    )


def wait_until(
    predicate: Any, timeout: float, interval: float = 0.2, what: str = "", detail: Any = None
) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds (with `detail()`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    extra = f": {detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}{extra}")


def sleep_until(at_us: int) -> None:
    delay = (at_us - now_us()) / US
    if delay > 0:
        time.sleep(delay)


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric in Prometheus text format: {sorted label pairs: value}."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = _SAMPLE.match(line)
        if m is None or m.group("name") != name:
            continue
        labels = tuple(sorted(_LABEL.findall(m.group("labels") or "")))
        out[labels] = float(m.group("value"))
    return out


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class OutageReport:
    repeats: int
    catch_ups: int
    skipped: int
    """Predicted alerts that a catch-up alert stood for (so they were not emitted themselves)."""


def check_outage(
    live: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    *,
    t0_us: int,
    kill_us: int,
    cutoff_us: int,
    context: str = "",
) -> OutageReport:
    """What must hold when a worker was SIGKILLed at `kill_us` (measured once it was dead) and
    its cases were picked up again (by a restarted worker, or by a survivor): check_faults
    with that one fault."""
    return check_faults(
        live, expected, t0_us=t0_us, faults_us=[kill_us], cutoff_us=cutoff_us, context=context
    )


def check_faults(
    live: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    *,
    t0_us: int,
    faults_us: Sequence[int],
    cutoff_us: int,
    context: str = "",
    explain: Callable[[str], str] | None = None,
    takeover: Callable[[int, str], tuple[int, int] | None] | None = None,
) -> OutageReport:
    """What must hold after faults at `faults_us` (a SIGKILL measured once the worker was dead,
    a broker stop, a membership change) from which the service recovered, given every alert
    copy read from the alert topics (`live`) and what replay says (`expected`, horizon =
    `cutoff_us`). Alerts due within the margin before the cut-off are not compared. A failure
    message shows `context`, and `explain(case_id)` when given (what was sent for the case).
    `takeover(i, case_id)`, when given, bounds the instant R at which a worker began serving
    the case again after fault i: (A, B) with every alert fired at or after A fired after R
    (the case's previous owner had stopped serving it by A), and R after B (its next owner was
    not ready yet at B); None when the samples cannot tell (a rebalance between two of them).

    * every alert fired at or after its due_at;
    * a repeat carries the same alert_id and content as its first copy (apart from fired_at and
      the catch_up flag), at most once per fault, and one obligation never gets two ids;
    * nothing spurious: every live alert is one replay predicts (id, type, stage, reason, case,
      priority, due_at);
    * nothing lost: a predicted alert missing live must have been stood for by a catch-up: the
      first alert of its clock (case and type) fired at or after its due_at has catch_up set;
    * no storm: for each fault, per clock, of the alerts fired after the takeover (from A), at
      most one is for what was already due before it (by B); when a breach fell due between
      the fault and B (and was not fired before A) and one is, it is the most recent such
      breach. Everything due by B was
      past due when the worker rebuilt or learned the case, so catch-up folds it into one
      alert. What fell due after B may come out point by point (a timer behind its backlog
      emits each as itself, semantics 3.7, even once a backlog delays it past the next
      deadline), and what the previous owner fired before it let go is none of the takeover's
      doing. Without `takeover`, A is the fault and B the first alert after it (F): good
      enough for one fault, a short backlog and a worker that stops serving at once (a kill),
      but with several faults F can lie far beyond the fault checked, behind a long backlog a
      lone warning fired after its breach fell due reads as a storm, and so does a warning
      the previous owner fired before a rebalance, followed by the breach after it.
    """
    upto = cutoff_us - MARGIN_US
    live_c = [a for a in live if due(a) <= upto]
    exp_c = [a for a in expected if due(a) <= upto]

    def where(case_id: str) -> str:
        """Live and replay alerts (only the case's, when there are many) for a failure."""
        if len(live) + len(exp_c) > 200:
            mine = [a for a in live if a["case_id"] == case_id]
            theirs = [a for a in exp_c if a["case_id"] == case_id]
            head = f"\n(case {case_id} only, of {len(live)} live and {len(exp_c)} predicted)"
        else:
            mine, theirs, head = list(live), exp_c, ""
        told = f"\nsent for {case_id}:\n{explain(case_id)}" if explain is not None else ""
        return (
            f"{head}\nlive:\n{describe(mine, t0_us)}\nreplay:\n{describe(theirs, t0_us)}"
            f"{told}\n{context}"
        )

    bad = [a for a in live if fired(a) < due(a)]
    assert not bad, f"fired before due:\n{describe(bad, t0_us)}"

    copies: dict[str, list[Mapping[str, Any]]] = {}
    for a in live:
        copies.setdefault(a["alert_id"], []).append(a)
    repeats = 0
    for aid, group in copies.items():
        assert len(group) <= 1 + len(faults_us), (
            f"{aid} emitted {len(group)} times{where(group[0]['case_id'])}"
        )
        strip = [{k: v for k, v in a.items() if k not in ("fired_at", "catch_up")} for a in group]
        assert all(s == strip[0] for s in strip), f"repeat of {aid} differs: {group}"
        repeats += len(group) - 1
    ids_of: dict[tuple[Any, ...], set[str]] = {}
    for a in live:
        ids_of.setdefault(alert_key(a)[1:], set()).add(a["alert_id"])
    two = {k: v for k, v in ids_of.items() if len(v) > 1}
    assert not two, f"one obligation, several ids: {two}"

    exp_keys = {alert_key(a) for a in exp_c}
    spurious = [a for a in live_c if alert_key(a) not in exp_keys]
    assert not spurious, (
        f"alerts replay does not predict:\n{describe(spurious, t0_us)}"
        f"{where(spurious[0]['case_id']) if spurious else ''}"
    )

    by_clock: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in sorted(live, key=fired):
        by_clock.setdefault((a["case_id"], a["type"]), []).append(a)
    skipped = 0
    for m in exp_c:
        if m["alert_id"] in copies:
            continue
        clock = by_clock.get((m["case_id"], m["type"]), [])
        first_after = next((a for a in clock if fired(a) >= due(m)), None)
        assert first_after is not None and first_after.get("catch_up"), (
            f"lost (no catch-up stands for it): {m}{where(m['case_id'])}"
        )
        skipped += 1

    exp_breaches: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in exp_c:
        if a["stage"] == "breach":
            exp_breaches.setdefault((a["case_id"], a["type"]), []).append(a)
    for i, fault_us in enumerate(faults_us):
        fault_s = (fault_us - t0_us) / US
        for (case_id, type_), clock in sorted(by_clock.items()):
            post = [a for a in clock if fired(a) >= fault_us]
            if not post:
                continue
            if takeover is None:
                a_us, b_us = fault_us, fired(post[0])
            else:
                bounds = takeover(i, case_id)
                if bounds is None:
                    continue
                a_us, b_us = bounds
                post = [a for a in post if fired(a) >= a_us]
            label = (
                f"{case_id} {type_} (fault at {fault_s:.2f}s, taken over after "
                f"{(b_us - t0_us) / US:.2f}s, fired from {(a_us - t0_us) / US:.2f}s)"
            )
            caught = {a["alert_id"] for a in post if due(a) <= b_us}
            assert len(caught) <= 1, (
                f"{label}: alert storm:\n{describe(post, t0_us)}{where(case_id)}"
            )
            fired_before = {a["alert_id"] for a in clock if fired(a) < a_us}  # previous owner
            breaches = [
                a
                for a in exp_breaches.get((case_id, type_), [])
                if fault_us < due(a) <= b_us and a["alert_id"] not in fired_before
            ]
            if breaches and caught:  # (none caught: the catch-up is for a breach due after B)
                latest = max(breaches, key=due)
                assert caught == {latest["alert_id"]}, (
                    f"{label}: catch-up is not the latest breach {latest}{where(case_id)}"
                )
    catch_ups = sum(1 for a in live if a.get("catch_up"))
    return OutageReport(repeats=repeats, catch_ups=catch_ups, skipped=skipped)
