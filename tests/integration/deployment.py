"""One deployment of real `caseclock worker` processes: its topics and settings, and the workers.

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
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from caseclock.core.alerts import ALERT_TYPES
from caseclock.core.facts import INBOUND_TYPES
from caseclock.live.faust_app import RECOVERY_STUCK_EXIT

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


INPUT_TOPICS = INBOUND_TYPES


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
    the test starts or stops the worker, without waiting for it. A start may take settings of
    its own (`start(env)`: a failpoint, say), which the supervisor's restart goes without.
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
        self.log_start = 0
        """Where the current (or last) process' part of the log begins (`run_log`)."""
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

    def start(self, env: Mapping[str, str] | None = None) -> WorkerProcess:
        """Start the worker (on its data dir, kept from earlier runs); `env`: settings of
        this start alone, over the deployment's and the worker's."""
        with self._lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            self.log_start = log.tell()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "caseclock.cli", "worker"],
                env={
                    **self.dep.env(self.web_port, self.data_dir),
                    **self.extra_env,
                    **(env or {}),
                },
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

    def readyz(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The worker's /readyz document when it answers 200 with one, else None (down, not
        listening yet, or answering an error). Supervises first, as every probe does."""
        self.supervise()
        try:
            status, body = self.get("/readyz", timeout=timeout)
            doc = orjson.loads(body)
        except (OSError, orjson.JSONDecodeError):
            return None
        return doc if status == 200 and isinstance(doc, dict) else None

    def ready(self) -> bool:
        doc = self.readyz()
        return doc is not None and bool(doc.get("ready"))

    def partitions(self) -> list[int]:
        doc = self.readyz()
        return list(doc.get("partitions", [])) if doc is not None else []

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

    def wait_exit(self, timeout: float) -> int:
        """Wait until the current process exits by itself (a failpoint kills it: -SIGKILL);
        its exit status."""
        proc = self.proc
        if proc is None:
            raise AssertionError(f"worker {self.name} was never started")
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.name} still running after {timeout}s: {self.log_tail()}"
            ) from None

    def run_log(self) -> str:
        """The log of the current (or last) process, from its start."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

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


def run(coro: Any) -> Any:
    return asyncio.run(coro)
