"""Infrastructure under a worker made to fail: a data volume that fills up, a broker paused.

`small_volume` mounts a tmpfs of its own (needs root, or CAP_SYS_ADMIN) where a worker keeps
its RocksDB data dir, and `Filler` fills it to the last byte and frees it again. `paused`
SIGSTOPs a broker of the test's own (tests.kafka_broker.local_broker) and always SIGCONTs it.
`wait_stopped` and `held_offsets` read what the worker says (/readyz, /metrics) and does (the
group's committed offsets) while its line is stopped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from tests.integration.deployment import Deployment, WorkerProcess, run
from tests.integration.faults.offsets import _committed
from tests.integration.metrics_text import metric_samples
from tests.kafka_broker import LOCAL_KAFKA, LocalKafka, wait_for_broker

# --- a data volume that fills up ------------------------------------------------------------


@contextlib.contextmanager
def small_volume(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` MiB mounted at `path` (created), unmounted (by path) on exit;
    skips the test when mounting is not permitted (EPERM: no root, no CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        why = mounted.stderr.strip()
        if "permission denied" in why.lower() or "must be superuser" in why.lower():
            pytest.skip(f"a small data volume needs `mount -t tmpfs` (EPERM here): {why}")
        raise AssertionError(f"mount -t tmpfs at {path} failed: {why}")
    try:
        yield path
    finally:
        # the worker is stopped by now; a lazy unmount if something still holds a file
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


class Filler:
    """A file that takes every free byte of a volume and keeps taking what is freed (a full
    volume stays full while something else writes to it), from `fill` until `free`."""

    def __init__(self, volume: Path, every: float = 0.02) -> None:
        self.path = volume / "filler"
        self.every = every
        self.bytes = 0
        self.topped_up = 0
        """Bytes taken after the first fill: space the worker freed meanwhile."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _take(self) -> int:
        """Write until ENOSPC, in ever smaller pieces down to a byte; bytes written."""
        written = 0
        with open(self.path, "ab", buffering=0) as f:
            size = 1 << 20
            while size:
                try:
                    written += f.write(b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    size //= 2
        return written

    def _keep_full(self) -> None:
        while not self._stop.wait(self.every):
            self.topped_up += self._take()

    def fill(self) -> int:
        """Fill the volume (ENOSPC) and keep it full; returns the bytes the first fill took."""
        self.bytes = self._take()
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep_full, name="filler", daemon=True)
        self._thread.start()
        return self.bytes

    def __enter__(self) -> Filler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def free(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.path.unlink(missing_ok=True)


def free_bytes(volume: Path) -> int:
    st = os.statvfs(volume)
    return st.f_bavail * st.f_frsize


# --- what a worker whose line stopped says and does ------------------------------------------


def readiness(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    """/readyz's status and document ((0, {}) when the worker does not answer)."""
    try:
        status, body = worker.get("/readyz", timeout=2.0)
        doc = orjson.loads(body)
    except (OSError, orjson.JSONDecodeError):
        return 0, {}
    return status, doc if isinstance(doc, dict) else {}


def readiness_during(worker: WorkerProcess, seconds: float) -> Counter[int]:
    """/readyz's statuses, sampled every 0.1 s for `seconds` (0: no answer)."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen[readiness(worker)[0]] += 1
        time.sleep(0.1)
    return seen


def metric(worker: WorkerProcess, name: str) -> float | None:
    """The value of an unlabelled metric on the worker's /metrics (None: not answering)."""
    try:
        status, body = worker.get("/metrics", timeout=2.0)
    except OSError:
        return None
    return metric_samples(body.decode(), name).get(()) if status == 200 else None


def wait_stopped(worker: WorkerProcess, naming: str, timeout: float) -> tuple[float, str]:
    """Wait until /readyz is 503 with a "failure" that contains `naming`; returns the seconds
    waited and the failure."""
    t0 = time.monotonic()
    last: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() - t0 < timeout:
        last = readiness(worker)
        status, doc = last
        if status == 503 and naming in str(doc.get("failure", "")):
            return round(time.monotonic() - t0, 3), str(doc["failure"])
        time.sleep(0.1)
    raise AssertionError(
        f"/readyz not 503 with a failure naming {naming!r} within {timeout}s: last {last}\n"
        f"{worker.log_tail(20)}"
    )


def wait_metric(worker: WorkerProcess, name: str, value: float, timeout: float) -> float:
    """Wait until the worker's `name` reads `value`; returns the seconds waited."""
    t0 = time.monotonic()
    seen = None
    while time.monotonic() - t0 < timeout:
        seen = metric(worker, name)
        if seen == value:
            return round(time.monotonic() - t0, 3)
        time.sleep(0.2)
    raise AssertionError(f"{name} is {seen}, not {value}, after {timeout}s")


def committed(dep: Deployment) -> dict[TopicPartition, int]:
    """The group's committed offsets of the deployment's input partitions."""
    got: dict[TopicPartition, int] = run(_committed(dep.bootstrap, dep.app_id))
    inputs = set(dep.input_topics)
    return {tp: off for tp, off in got.items() if tp.topic in inputs}


def held_offsets(
    before: Mapping[TopicPartition, int],
    after: Mapping[TopicPartition, int],
    sent_before: Mapping[TopicPartition, int],
    sent_after: Mapping[TopicPartition, int],
) -> None:
    """Nothing committed between the two readings while the load produced meanwhile."""
    moved = {tp: (before.get(tp), off) for tp, off in after.items() if off != before.get(tp)}
    assert not moved, f"input committed while the line was stopped (before, after): {moved}"
    grew = sum(sent_after.get(tp, 0) - sent_before.get(tp, 0) for tp in sent_after)
    assert grew > 0, "the load sent nothing meanwhile: the offsets prove nothing"


# --- a broker paused ---------------------------------------------------------------------------


def broker_pid(kafka: LocalKafka) -> int:
    """The pid of the broker's JVM (`local-kafka.sh status`: `running: <bootstrap> pid N ...`)."""
    out = subprocess.run(
        ["bash", str(LOCAL_KAFKA), "status"],
        env=kafka.env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if "pid" not in out:
        raise AssertionError(f"local-kafka.sh status found no broker on {kafka.bootstrap}: {out}")
    return int(out[out.index("pid") + 1])


@contextlib.contextmanager
def paused(kafka: LocalKafka, health_timeout: float = 90.0) -> Iterator[int]:
    """SIGSTOP the broker's process for the body (its port stays open: the kernel still
    accepts connections, nothing answers them), SIGCONT it always, then wait until a client
    round trip works again; yields the pid."""
    pid = broker_pid(kafka)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for_broker(kafka.bootstrap, health_timeout)
