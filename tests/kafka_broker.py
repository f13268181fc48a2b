"""A Kafka broker for integration tests.

``broker()`` yields a bootstrap string, choosing in order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` when set: used as-is, nothing is started or stopped;
2. testcontainers' ``KafkaContainer`` when a Docker engine answers;
3. ``deploy/kafka/local-kafka.sh`` (a real KRaft broker from Maven Central jars, no Docker)
   on a free port pair, stopped on exit (also on exceptions, Ctrl-C, and via atexit).

``CASECLOCK_KAFKA_BACKEND=docker|local`` forces one of the last two.

``local_broker()`` always starts a broker of the caller's own with ``local-kafka.sh`` and
yields a :class:`LocalKafka` that can be stopped and started again keeping its data (for tests
of a broker restart).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = REPO_ROOT / "deploy" / "kafka" / "local-kafka.sh"
DEFAULT_IMAGE = "confluentinc/cp-kafka:7.6.0"
PORT_BUSY_EXIT = 3  # local-kafka.sh exit code when a port is taken


class BrokerUnavailable(RuntimeError):
    pass


# --------------------------------------------------------------------------- readiness


async def async_wait_for_broker(bootstrap: str, wait_s: float = 60.0) -> None:
    """Retry an aiokafka admin round trip (describe_cluster) until a broker answers."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + wait_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await asyncio.wait_for(admin.start(), timeout=10)
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout=10)
            if cluster.get("brokers"):
                return
            last = RuntimeError(f"no brokers in metadata: {cluster!r}")
        except Exception as exc:
            last = exc
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await asyncio.sleep(0.5)
    raise BrokerUnavailable(f"Kafka at {bootstrap} did not answer within {wait_s}s: {last!r}")


def wait_for_broker(bootstrap: str, timeout: float = 60.0) -> None:
    """Synchronous wrapper; safe to call whether or not an event loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(async_wait_for_broker(bootstrap, timeout))
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(async_wait_for_broker(bootstrap, timeout))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, name="wait-for-kafka", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- backends


def docker_available(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (quickly; never raises)."""
    try:
        import docker

        client = docker.from_env(timeout=int(max(1, timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def _container_broker() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        from testcontainers.kafka import KafkaContainer

    image = os.environ.get("CASECLOCK_KAFKA_IMAGE", DEFAULT_IMAGE)
    container = KafkaContainer(image).with_kraft()
    # KafkaContainer leaves the transaction log at replication factor 3.
    container.with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
    container.with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    container.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true")
    with container:
        yield container.get_bootstrap_server()


def free_port_pair() -> tuple[int, int]:
    socks = []
    try:
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return socks[0].getsockname()[1], socks[1].getsockname()[1]
    finally:
        for s in socks:
            s.close()


def _script_env(port: int, controller_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["KAFKA_PORT"] = str(port)
    env["KAFKA_CONTROLLER_PORT"] = str(controller_port)
    return env


class LocalKafka:
    """One `local-kafka.sh` broker on its own port pair, which its owner may stop and start
    again on the same ports with its data kept (`halt` / `resume`: a broker restart, as its
    clients see it). `stop` removes it and its data for good; it is idempotent."""

    def __init__(self, port: int, controller_port: int) -> None:
        self.port = port
        self.controller_port = controller_port
        self.env = _script_env(port, controller_port)
        self.bootstrap = f"127.0.0.1:{port}"
        self._lock = threading.Lock()
        self._stopped = False

    def _script(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(LOCAL_KAFKA), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            # stderr (progress, log tail) goes to the terminal
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            text=True,
            check=False,
            timeout=None if capture else 120,
        )

    def start(self, keep_data: bool = False) -> int:
        """`local-kafka.sh start`; returns its exit status (PORT_BUSY_EXIT: nothing started)."""
        return self._script(
            "start", *(["--keep-data"] if keep_data else []), capture=True
        ).returncode

    def halt(self) -> None:
        """Controlled shutdown, keeping the data dir for :meth:`resume`."""
        self._script("stop", "--keep-data")

    def resume(self, timeout: float = 90.0) -> None:
        """Start again on the same ports and data; returns once a client round trip works."""
        rc = self.start(keep_data=True)
        if rc != 0:
            raise BrokerUnavailable(f"local-kafka.sh start --keep-data failed (exit {rc})")
        wait_for_broker(self.bootstrap, timeout)

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._script("stop")


@contextlib.contextmanager
def local_broker(attempts: int = 3) -> Iterator[LocalKafka]:
    """A `local-kafka.sh` broker of the caller's own on a free port pair, stopped on exit."""
    for attempt in range(1, attempts + 1):
        kafka = LocalKafka(*free_port_pair())
        atexit.register(kafka.stop)  # fallback if the finally below never runs
        started = True  # until we know better: an interrupted start is cleaned up
        try:
            rc = kafka.start()
            # Port taken by someone else between our pick and the start: nothing of ours runs.
            started = rc != PORT_BUSY_EXIT
            if rc == 0:
                yield kafka
                return
            if not started and attempt < attempts:
                continue
            raise BrokerUnavailable(
                f"{LOCAL_KAFKA.relative_to(REPO_ROOT)} start failed (exit {rc}); "
                "see its output above"
            )
        finally:
            if started:
                kafka.stop()
            atexit.unregister(kafka.stop)


@contextlib.contextmanager
def _local_broker(attempts: int = 3) -> Iterator[str]:
    with local_broker(attempts) as kafka:
        yield kafka.bootstrap


@contextlib.contextmanager
def broker(timeout: float = 60.0) -> Iterator[str]:
    """Yield a bootstrap string for a reachable Kafka broker (see module docstring)."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        wait_for_broker(configured, timeout)
        yield configured
        return

    backend = os.environ.get("CASECLOCK_KAFKA_BACKEND", "auto").strip().lower()
    if backend not in {"auto", "docker", "local"}:
        raise ValueError(f"CASECLOCK_KAFKA_BACKEND={backend!r}: expected auto, docker or local")
    use_docker = backend == "docker" or (backend == "auto" and docker_available())
    cm = _container_broker() if use_docker else _local_broker()
    with cm as bootstrap:
        wait_for_broker(bootstrap, timeout)
        yield bootstrap


if __name__ == "__main__":  # manual smoke test: python tests/kafka_broker.py
    with broker() as b:
        print(b)
