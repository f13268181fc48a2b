"""A Kafka broker for integration tests.

``broker()`` yields a bootstrap string, choosing in order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` when set: used as-is, nothing is started or stopped;
2. testcontainers' ``KafkaContainer`` when a Docker engine answers;
3. ``deploy/kafka/local-kafka.sh`` (a real KRaft broker from Maven Central jars, no Docker)
   on a free port pair, stopped on exit (also on exceptions, Ctrl-C, and via atexit).

``CASECLOCK_KAFKA_BACKEND=docker|local`` forces one of the last two.
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


class _LocalStopper:
    """Idempotent `local-kafka.sh stop` for one port pair (also registered with atexit)."""

    def __init__(self, port: int, controller_port: int) -> None:
        self.env = _script_env(port, controller_port)
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        subprocess.run(
            ["bash", str(LOCAL_KAFKA), "stop"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            check=False,
            timeout=120,
        )


@contextlib.contextmanager
def local_broker(attempts: int = 3) -> Iterator[str]:
    """Start `local-kafka.sh` on a free port pair, yield its bootstrap, stop it on exit (also
    used by bench/live_bench.py, which wants a broker of its own whatever the environment)."""
    for attempt in range(1, attempts + 1):
        port, controller_port = free_port_pair()
        stop = _LocalStopper(port, controller_port)
        atexit.register(stop)  # fallback if the finally below never runs
        started = True  # until we know better: an interrupted start is cleaned up
        try:
            proc = subprocess.run(
                ["bash", str(LOCAL_KAFKA), "start"],
                env=stop.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,  # stderr (progress, log tail) goes to the terminal
                text=True,
                check=False,
            )
            # Port taken by someone else between our pick and the start: nothing of ours runs.
            started = proc.returncode != PORT_BUSY_EXIT
            if proc.returncode == 0:
                yield proc.stdout.strip().splitlines()[-1]
                return
            if not started and attempt < attempts:
                continue
            raise BrokerUnavailable(
                f"{LOCAL_KAFKA.relative_to(REPO_ROOT)} start failed (exit {proc.returncode}); "
                "see its output above"
            )
        finally:
            if started:
                stop()
            atexit.unregister(stop)


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
    cm = _container_broker() if use_docker else local_broker()
    with cm as bootstrap:
        wait_for_broker(bootstrap, timeout)
        yield bootstrap


if __name__ == "__main__":  # manual smoke test: python tests/kafka_broker.py
    with broker() as b:
        print(b)
