"""Observability end to end: a real worker, a real Prometheus, the real rules and dashboard.

One worker runs a ~30 s synthetic support desk on the production support-plus policy (windows
of hours: the load back-dates ``occurred_at`` so that warnings, breaches, catch-up alerts and
elevations fall due *during* the test, and so that the dashboard's attainment queries, which
read the ``le="3600"`` / ``"14400"`` / ``"28800"`` buckets, have data). A second worker joins
and leaves early on, so rebalances, per-worker series and readiness changes exist too.
Prometheus (``/usr/bin/prometheus``) scrapes every worker each second (job ``caseclock``, file
service discovery like the compose stack's DNS discovery: a stopped worker's target goes away)
and loads ``deploy/prometheus/rules/caseclock.rules.yml``. Then:

(a) every query of every dashboard panel returns at least one series with a finite value, and
    every panel shows a non-zero value at some point of the run (for "Send failures by record"
    the dead-letter topic is created too small for the dead letter of an oversized message);
(b) every metric a rule or alert depends on (through recording rules) has samples in the
    worker's own /metrics (``up`` is Prometheus' own: checked there);
(c) the rules file loaded (both groups, every rule), every rule evaluated without error, and
    the P1 acknowledgement page fired from the breaches of the load;
(d) /readyz answered 503 until recovery finished and 200 only after it (log line, recovery
    gauge, partition gauge), for both workers, while /healthz was 200 throughout;

and finally deploy/grafana/render_dashboard.py renders the dashboard from this Prometheus into
a PNG (also to ``$CASECLOCK_RENDER_DASHBOARD`` when set, which is how
deploy/grafana/dashboard.png is produced).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from caseclock.cli.simulator import BackdatedDesk, Message, play
from tests.dashboard_queries import metric_names, panel_queries, recorded_names, rule_exprs
from tests.integration.deployment import Deployment, WorkerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "caseclock.json"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "caseclock.rules.yml"
RENDER = ROOT / "deploy" / "grafana" / "render_dashboard.py"
RENDER_ENV = "CASECLOCK_RENDER_DASHBOARD"

PARTITIONS = 4
LOAD_SECONDS = 30.0
SECOND_WORKER_AT = 4.0  # seconds into the load
SECOND_WORKER_STAYS = 2.0  # seconds after both workers are ready
#: The dead-letter topic is created with the input size limit (64 KiB) as its
#: max.message.bytes, a plausible misconfiguration: the dead letter of an oversized message
#: (its bytes in base64, plus metadata) is larger, the broker refuses it, and that is the
#: send failure the "Send failures by record" panel is there to show.
DEAD_LETTER_TOPIC_MAX_BYTES = 65536


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# --------------------------------------------------------------------------- HTTP helpers


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


def scrape(worker: WorkerProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The worker's /metrics as {sample name: [(labels, value)]} (names with their suffixes)."""
    status, body = worker.get("/metrics", timeout=5.0)
    assert status == 200, body[:200]
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def gauge(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    values = samples.get(name, [])
    assert len(values) == 1, f"{name}: {values}"
    return values[0][1]


# --------------------------------------------------------------------------- Prometheus


class Prometheus:
    """``/usr/bin/prometheus`` on a loopback port, scraping the targets in a file_sd file.

    Prometheus applies target changes (the initial file included) up to 5 s late: its
    discovery and scrape managers batch updates. :meth:`wait_target` before starting a
    process whose first seconds matter.
    """

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets_file = workdir / "targets.json"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = math.nan

    def start(self, targets: list[str]) -> None:
        self.set_targets(targets)
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    # The alerts (up{job="caseclock"}) and deploy/prometheus/prometheus.yml use
                    # this job name.
                    "job_name": "caseclock",
                    "metrics_path": "/metrics",
                    "file_sd_configs": [{"files": [str(self.targets_file)]}],
                }
            ],
        }
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.started_at = time.time()
        self.wait_ready()

    def set_targets(self, targets: list[str]) -> None:
        """Replace the scrape targets (atomically: Prometheus watches the file)."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": targets}]))
        tmp.replace(self.targets_file)

    def wait_target(self, address: str, timeout: float = 15.0) -> None:
        """Wait until ``address`` is an active scrape target (scraped from then on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = self.api("targets", state="active")["activeTargets"]
            if any(t["labels"].get("instance") == address for t in active):
                return
            time.sleep(0.2)
        raise AssertionError(f"{address} never became a scrape target: {self.log_tail()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log_tail()}")
            try:
                if http_get(f"{self.url}/-/ready", timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready in {timeout}s: {self.log_tail()}")

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}", timeout=15.0)
        doc = orjson.loads(body)
        assert status == 200 and doc.get("status") == "success", (path, params, doc)
        return doc["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, time=f"{at:.3f}")
        assert data["resultType"] in ("vector", "scalar"), data
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}"
        )
        return list(data["result"])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        message = "prometheus not installed (Debian/Ubuntu: apt-get install prometheus)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    prom = Prometheus(binary, workdir)
    try:
        yield prom  # started by the test, with its first targets
    finally:
        prom.stop()


@pytest.fixture
def loads() -> Iterator[list[LoadThread]]:
    """Load threads a test starts; stopped at the end even when the test fails early."""
    started: list[LoadThread] = []
    try:
        yield started
    finally:
        for load in started:
            load.cancel()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Workers a test starts; every one is stopped at the end, whatever happened."""
    started: list[WorkerProcess] = []
    try:
        yield started
    finally:
        for w in started:
            w.stop(timeout=20.0)


# --------------------------------------------------------------------------- readiness


@dataclass
class Startup:
    """What /readyz and /healthz said while a worker started, and the state at the first 200."""

    readyz: Counter[int | None] = field(default_factory=Counter)
    healthz: Counter[int | None] = field(default_factory=Counter)
    not_ready_bodies: list[dict[str, Any]] = field(default_factory=list)
    ready_body: dict[str, Any] = field(default_factory=dict)
    recovered_logged: bool = False
    recovery_complete: float = math.nan
    partitions_owned: float = math.nan
    seconds: float = math.nan


def watch_startup(w: WorkerProcess, timeout: float = 60.0) -> Startup:
    """Poll /readyz (and /healthz) every 50 ms until ready; record what was seen."""
    seen = Startup()
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if w.proc is not None and w.proc.poll() is not None:
            raise AssertionError(f"worker {w.name} exited: {w.log_tail()}")
        try:
            status, body = w.get("/readyz", timeout=2.0)
        except OSError:
            seen.readyz[None] += 1
            time.sleep(0.05)
            continue
        seen.readyz[status] += 1
        doc = orjson.loads(body)
        if status == 200 and doc.get("ready"):
            # Read in this order: the log line and the gauges are written before `ready` is
            # set, so they must already be there when /readyz says 200.
            seen.recovered_logged = "caseclock: recovered" in w.log_path.read_text(errors="replace")
            samples = scrape(w)
            seen.recovery_complete = gauge(samples, "caseclock_recovery_complete")
            seen.partitions_owned = gauge(samples, "caseclock_partitions_owned")
            seen.ready_body = doc
            seen.seconds = time.monotonic() - t0
            try:
                seen.healthz[w.get("/healthz", timeout=2.0)[0]] += 1
            except OSError:
                seen.healthz[None] += 1
            return seen
        seen.not_ready_bodies.append(doc)
        try:
            seen.healthz[w.get("/healthz", timeout=2.0)[0]] += 1
        except OSError:
            seen.healthz[None] += 1
        time.sleep(0.05)
    raise AssertionError(f"worker {w.name} not ready in {timeout}s: {w.log_tail()}")


def check_startup(name: str, seen: Startup, expect_partitions: int | None = None) -> None:
    where = f"{name}: {seen}"
    assert seen.readyz[503] > 0, f"/readyz never said 503 before recovery finished; {where}"
    assert all(b.get("ready") is False for b in seen.not_ready_bodies), where
    assert set(seen.readyz) <= {None, 200, 503}, where
    assert seen.recovered_logged, f"/readyz said 200 before recovery was logged; {where}"
    assert seen.recovery_complete == 1, where
    owned = seen.ready_body.get("partitions", [])
    assert seen.partitions_owned == len(owned) > 0, where
    if expect_partitions is not None:
        assert owned == list(range(expect_partitions)), where
    assert set(seen.healthz) == {200}, f"/healthz not 200 while the web server was up; {where}"


class ReadinessMonitor(threading.Thread):
    """Polls a worker's /readyz in the background; records (status, partitions) changes."""

    def __init__(self, w: WorkerProcess) -> None:
        super().__init__(name=f"readyz-{w.name}", daemon=True)
        self.w = w
        self.changes: list[tuple[float, int | None, tuple[int, ...]]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        last: tuple[int | None, tuple[int, ...]] | None = None
        while not self._stop_event.is_set():
            try:
                status, body = self.w.get("/readyz", timeout=2.0)
                now: tuple[int | None, tuple[int, ...]] = (
                    status,
                    tuple(orjson.loads(body).get("partitions", [])),
                )
            except OSError:
                now = (None, ())
            if now != last:
                self.changes.append((time.time(), *now))
                last = now
            self._stop_event.wait(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


# --------------------------------------------------------------------------- the load
# The desk is the package's support-desk simulator (caseclock.cli.simulator.BackdatedDesk):
# one wave a second, back-dated on the support-plus policy so that every alert kind and every
# dead-letter reason falls due during the test.


async def run_desk(desk: BackdatedDesk, bootstrap: str, seconds: float) -> None:
    """Play the desk into Kafka: each wave's messages sent together, then their acks awaited."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=1_048_576)
    await producer.start()

    async def send(batch: list[Message]) -> None:
        futures = [await producer.send(t, v, key=k) for t, k, v in batch]
        await asyncio.gather(*futures)

    try:
        await play(desk, send, tick=1.0, seconds=seconds)
    finally:
        await producer.stop()


class LoadThread(threading.Thread):
    def __init__(self, desk: BackdatedDesk, bootstrap: str, seconds: float) -> None:
        super().__init__(name="support-desk", daemon=True)
        self.desk, self.bootstrap, self.seconds = desk, bootstrap, seconds
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(run_desk(self.desk, self.bootstrap, self.seconds))
        except BaseException as e:  # re-raised in the test thread
            self.error = e

    def cancel(self) -> None:
        self.desk.stopped.set()
        self.join(10)

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        assert not self.is_alive(), "load did not finish"
        if self.error is not None:
            raise self.error


async def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


# --------------------------------------------------------------------------- assertions


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll until ``predicate()``; False when ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    values = [float(item["value"][1]) for item in result]
    return [v for v in values if math.isfinite(v)]


def rule_dependencies() -> dict[str, set[str]]:
    """Rule name -> the raw metric names its expression needs (recording rules expanded)."""
    exprs = dict(rule_exprs(RULES))
    recorded = recorded_names(RULES)

    def expand(expr: str, seen: frozenset[str] = frozenset()) -> set[str]:
        out: set[str] = set()
        for name in metric_names(expr):
            if name in recorded:
                assert name not in seen, f"recording rule cycle through {name}"
                out |= expand(exprs[name], seen | {name})
            else:
                out.add(name)
        return out

    return {name: expand(expr) for name, expr in exprs.items()}


def present(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> bool:
    """A metric name as PromQL uses it is exported (sample names carry their suffixes)."""
    return bool(samples.get(name))


# --------------------------------------------------------------------------- the test


@pytest.mark.timeout(300)
def test_dashboard_rules_and_probes_on_live_worker(
    kafka_bootstrap: str,
    unique_prefix: str,
    tmp_path: Path,
    prometheus: Prometheus,
    workers: list[WorkerProcess],
    loads: list[LoadThread],
) -> None:
    t_test = time.monotonic()
    dep = Deployment(
        kafka_bootstrap,
        unique_prefix,
        tmp_path,
        partitions=PARTITIONS,
        extra_env={
            "CASECLOCK_POLICY_FILE": "builtin:support-plus",
            # Resolved cases are purged 10 s after their last fact: "purged" ticks in the run.
            "CASECLOCK_RETENTION": "10s",
        },
    )

    asyncio.run(
        create_topic(
            kafka_bootstrap,
            dep.dead_letter_topic,
            PARTITIONS,
            {"max.message.bytes": str(DEAD_LETTER_TOPIC_MAX_BYTES)},
        )
    )

    # -- worker 1: scraped from its first second; ready only after recovery (d) -------------
    w1 = WorkerProcess(dep, "w1")
    prometheus.start([f"127.0.0.1:{w1.web_port}"])
    prometheus.wait_target(f"127.0.0.1:{w1.web_port}")
    workers.append(w1.start())
    w1_startup = watch_startup(w1)
    check_startup("w1", w1_startup, expect_partitions=PARTITIONS)
    w1_monitor = ReadinessMonitor(w1)
    w1_monitor.start()

    # -- the load, and a second worker joining and leaving (rebalances) ---------------------
    desk = BackdatedDesk(dep.topic)
    load = LoadThread(desk, kafka_bootstrap, LOAD_SECONDS)
    w2 = WorkerProcess(dep, "w2")
    # Listed before it starts (like a scheduled pod): Prometheus applies target changes late.
    prometheus.set_targets([f"127.0.0.1:{w1.web_port}", f"127.0.0.1:{w2.web_port}"])
    load_started = time.time()
    loads.append(load)
    load.start()
    time.sleep(SECOND_WORKER_AT)
    prometheus.wait_target(f"127.0.0.1:{w2.web_port}")
    workers.append(w2.start())
    w2_startup = watch_startup(w2)
    check_startup("w2", w2_startup)
    # w1 recovers its new share too: usually within 1-5 s (Faust's recovery loop waits up to
    # 5 s for changelog records). Now and then Faust's changelog recovery stalls after the
    # rebalance (~1 run in 7 here: "Resuming flow..." and then nothing; w2 leaving unsticks
    # it). Either way w1 must tell the truth: ready with its share, or not ready and its
    # recovery gauge at 0 (the input of CaseclockRecoveryStuck).
    w1_settled = wait_for(lambda: w1.ready() and 0 < len(w1.partitions()) < PARTITIONS, 12.0)
    if w1_settled:
        assert sorted(w1.partitions() + w2.partitions()) == list(range(PARTITIONS))
        split = "sum(caseclock_partitions_owned) == 4 and count(caseclock_partitions_owned) == 2"
        assert wait_for(lambda: bool(prometheus.query(split, time.time())), 10.0), (
            "Prometheus never saw the partitions split between the workers"
        )
        time.sleep(SECOND_WORKER_STAYS)
    else:
        recovering = gauge(scrape(w1), "caseclock_recovery_complete") == 0
        assert recovering or w1.ready(), f"not ready, yet recovered: {w1_monitor.changes}"
    w2.stop(timeout=20.0)
    prometheus.set_targets([f"127.0.0.1:{w1.web_port}"])
    load.finish(timeout=LOAD_SECONDS + 30)
    # A stalled recovery ends with the watchdog restarting w1 (see CaseClock._watchdog); the
    # harness plays the supervisor, so allow for the timeout plus a fresh start.
    takeback = dep.recovery_timeout + 40.0
    assert wait_for(lambda: w1.ready() and w1.partitions() == list(range(PARTITIONS)), takeback), (
        f"w1 did not take all partitions back (restarts: {w1.restarts}): {w1.log_tail()}"
    )
    time.sleep(3.0)  # ETAs of the last waves pass, and a few more scrapes land
    w1_monitor.stop()

    # w1 left readiness while the group rebalanced and came back with the new assignment.
    statuses = [s for _, s, _ in w1_monitor.changes]
    assert statuses[0] == 200 and statuses[-1] == 200, w1_monitor.changes
    assert 503 in statuses, f"w1 stayed ready through both rebalances: {w1_monitor.changes}"
    shares = {parts for _, s, parts in w1_monitor.changes if s == 200}
    assert any(0 < len(parts) < PARTITIONS for parts in shares) or not w1_settled, shares
    assert w1.get("/healthz")[0] == 200

    # -- (c) the rules loaded and evaluate without error ------------------------------------
    file_rules = yaml.safe_load(RULES.read_text())["groups"]
    deadline = time.monotonic() + 35  # the recording group runs every 30 s
    while True:
        groups = prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r["health"] != "unknown" for r in rules):
            break
        assert time.monotonic() < deadline, f"rules not evaluated: {groups}"
        time.sleep(0.5)
    assert {g["name"]: len(g["rules"]) for g in groups} == {
        g["name"]: len(g["rules"]) for g in file_rules
    }
    assert {g["file"] for g in groups} == {str(RULES)}
    bad = [
        (r["name"], r["health"], r.get("lastError", ""))
        for r in rules
        if r["health"] != "ok" or r.get("lastError")
    ]
    assert not bad, bad
    firing = {
        a["labels"]["alertname"]
        for a in prometheus.api("alerts")["alerts"]
        if a["state"] == "firing"
    }
    assert "CaseclockP1AcknowledgementBreach" in firing, firing

    # -- (a) every panel query answers, with data ---------------------------------------------
    at = time.time()
    scrapes = finite_values(prometheus.query('count_over_time(up{job="caseclock"}[1m])', at))
    assert scrapes and max(scrapes) >= 30, f"rate() windows too thin: {scrapes} samples/min"
    empty: list[tuple[str, str]] = []
    nan_only: list[tuple[str, str, list[dict[str, Any]]]] = []
    active_panels: set[str] = set()
    queries = panel_queries(DASHBOARD, runnable=True)
    assert len(queries) >= 28
    for title, expr in queries:
        result = prometheus.query(expr, at)
        if not result:
            empty.append((title, expr))
            continue
        if not finite_values(result):
            nan_only.append((title, expr, result))
        over_run = prometheus.query_range(expr, load_started, at, 1.0)
        if any(math.isfinite(float(v)) and float(v) != 0 for s in over_run for _, v in s["values"]):
            active_panels.add(title)
    # Timer lag is 0 while the timers keep up, which is the healthy state this load produces;
    # the panel must still answer with data (checked above), not necessarily move.
    healthy_at_zero = {"Oldest overdue timer by worker"}
    flat = sorted({t for t, _ in queries} - active_panels - healthy_at_zero)
    assert not empty, f"panel queries without any series: {empty}"
    assert not nan_only, f"panel queries with only NaN: {nan_only}"
    assert not flat, f"panels flat at 0 for the whole run: {flat}; load sent {desk.sent}"
    # Revoked partitions stop counting at once, so workers never claim more than exist for
    # longer than the scrape skew: each target is scraped every second at its own offset, and a
    # rebalance can finish between the old owner's last scrape and the new owner's next one.
    # (Before revocation dropped the gauges, the excess lasted a whole recovery.)
    owned = prometheus.query_range("sum(caseclock_partitions_owned)", load_started, at, 1.0)
    excess = [float(v) for series in owned for _, v in series["values"] if float(v) > PARTITIONS]
    assert owned and len(excess) <= 2, f"partitions double-counted for {len(excess)} s: {excess}"

    # -- (b) every metric a rule needs is in the worker's scrape -----------------------------
    samples = scrape(w1)
    deps = rule_dependencies()
    assert {n for names in deps.values() for n in names} >= {
        "caseclock_sla_breaches_total",
        "caseclock_faust_topic_partition_end_offset",
        "up",
    }, deps
    missing = {
        rule: sorted(n for n in names if n != "up" and not present(samples, n))
        for rule, names in deps.items()
    }
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"rule inputs not exported by the worker: {missing}"
    assert prometheus.query('up{job="caseclock"} == 1', time.time()), "up is Prometheus' own"

    # -- the dashboard, rendered from this Prometheus ------------------------------------------
    png = tmp_path / "dashboard.png"
    rendered = subprocess.run(
        [
            sys.executable,
            str(RENDER),
            "--prometheus",
            prometheus.url,
            "--start",
            f"{prometheus.started_at:.3f}",
            "--end",
            f"{at:.3f}",
            "--step",
            "1s",
            "--scrape-interval",
            "1s",
            "--out",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert png.stat().st_size > 50_000, png.stat()
    from matplotlib import image

    pixels = image.imread(str(png))
    assert pixels.shape[0] > 2000 and pixels.shape[1] > 1200, pixels.shape
    assert float(pixels[..., :3].std()) > 0.02, "the image is (nearly) one colour"
    target = os.environ.get(RENDER_ENV, "").strip()
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)

    duration = time.monotonic() - t_test
    print(
        f"observability e2e: {duration:.1f}s; w1 ready after {w1_startup.seconds:.1f}s, "
        f"{'settled' if w1_settled else 'STALLED in recovery'} while w2 was up, "
        f"w2 after {w2_startup.seconds:.1f}s; load {dict(desk.sent)}; "
        f"w1 readiness {[(round(t - load_started, 1), s, p) for t, s, p in w1_monitor.changes]}"
    )
