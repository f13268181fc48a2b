"""The demo: a producer that behaves like a busy support desk, and a live console of alerts.

`caseclock demo produce` opens cases and works them (acknowledges most, late or never some,
sets ETAs, finds workarounds, puts some on hold waiting for the customer, resolves), now and
then sends a malformed message, all under the accelerated demo policy (`policies/demo.toml`:
the support-plus shape in seconds, plus a business-hours plan).
`caseclock demo watch` prints every alert and dead letter as it arrives. `caseclock demo` runs a
worker plus both, which is what the README's first command starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from caseclock.cli.simulator import Message, StoryDesk, play
from caseclock.core.facts import INBOUND_TYPES
from caseclock.live.config import Config


def demo_policy_path() -> str:
    return "builtin:demo"


async def produce(cfg: Config, every: float, cases: int | None, seed: int | None) -> None:
    """Open a case every `every` seconds (jittered) and play each case's story (the desk is
    the package's simulator, `simulator.StoryDesk`), printing every event as it is sent."""
    from aiokafka import AIOKafkaProducer

    from caseclock.live.config import kafka_security

    topic_of = _input_topic_map(cfg)
    desk = StoryDesk(lambda kind: topic_of[kind], every, cases, seed)
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap_servers, **kafka_security(cfg))
    await producer.start()

    async def send(batch: list[Message]) -> None:
        for topic, key, value in batch:
            await producer.send_and_wait(topic, value, key=key)
            case = key.decode() if key else "-"
            _say(f"{_clock()}  {'':2}  {'event':<14} {_kind(topic, value):<16} {case}", dim=True)

    try:
        await play(desk, send, tick=DEMO_TICK_S)
    finally:
        await producer.stop()


DEMO_TICK_S = 0.1
"""How often the demo desk looks for steps due: fine enough for windows of 10 s and more."""


def _kind(topic: str, value: bytes | None) -> str:
    """The event type of a message, for the console (its topic when it has none)."""
    try:
        doc = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        doc = None
    return str(doc.get("type", topic)) if isinstance(doc, dict) else topic


def _input_topic_map(cfg: Config) -> dict[str, str]:
    if len(cfg.input_topics) == 1:
        return dict.fromkeys(INBOUND_TYPES, cfg.input_topics[0])
    by_name = {t: t for t in cfg.input_topics}
    return {t: by_name.get(t, cfg.input_topics[0]) for t in INBOUND_TYPES}


_COLORS = {"warning": "33", "breach": "31;1", "action": "35;1", "dead-letter": "36"}


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _say(text: str, color: str | None = None, dim: bool = False) -> None:
    if sys.stdout.isatty():
        if dim:
            text = f"\x1b[2m{text}\x1b[0m"
        elif color:
            text = f"\x1b[{color}m{text}\x1b[0m"
    print(text, flush=True)


def render_alert(a: Mapping[str, Any]) -> str:
    due = str(a["due_at"])[11:19]
    fired = datetime.fromisoformat(str(a["fired_at"]))
    late = (fired - datetime.fromisoformat(str(a["due_at"]))).total_seconds()
    who = f"{a['case_id']} ({a.get('customer_id') or '-'})"
    extra = " catch-up" if a.get("catch_up") else ""
    if a.get("calendar", "24x7") != "24x7":
        extra += f" ({a['calendar']} hours)"
    return (
        f"{_clock()}  P{a['priority']}  {a['type']:<14} {a['stage'].upper():<8} {who:<22} "
        f"due {due}  late {late:5.2f}s  {a['reason']}{extra}"
    )


async def watch(cfg: Config, seconds: float | None = None) -> int:
    """Print alerts and dead letters as they arrive (from now on). Returns how many alerts."""
    from aiokafka import AIOKafkaConsumer

    from caseclock.live.config import kafka_security

    topics = [*cfg.alert_topics.values(), cfg.dead_letter_topic]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=cfg.bootstrap_servers,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        group_id=None,
        **kafka_security(cfg),
    )
    await consumer.start()
    seen = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    head = f"{'time':<8}  pr  {'alert':<14} {'stage':<8} {'case (customer)':<22}"
    _say(f"{head} due / lateness / reason")
    try:
        while deadline is None or time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if r.value is None:
                        continue
                    doc = orjson.loads(r.value)
                    if tp.topic == cfg.dead_letter_topic:
                        _say(
                            f"{_clock()}  --  {'dead-letter':<14} {doc['reason']:<8} "
                            f"{doc['topic']}: {doc['detail']}",
                            _COLORS["dead-letter"],
                        )
                    else:
                        seen += 1
                        _say(render_alert(doc), _COLORS.get(doc["stage"]))
    finally:
        await consumer.stop()
    return seen


def run_demo(env: Mapping[str, str], seconds: float | None, every: float) -> int:
    """A worker subprocess (demo policy), the producer and the console, until Ctrl-C."""
    env = dict(env)
    env.setdefault("CASECLOCK_POLICY_FILE", demo_policy_path())
    env.setdefault("CASECLOCK_APP_ID", f"caseclock-demo-{int(time.time())}")
    env.setdefault("CASECLOCK_STORE", "memory://")
    env.setdefault("CASECLOCK_TICK_INTERVAL", "0.5")
    cfg = Config.from_env(env)
    worker_log = Path(cfg.data_dir) / "demo-worker.log"
    worker_log.parent.mkdir(parents=True, exist_ok=True)
    _say(
        f"caseclock demo: worker log in {worker_log}; metrics on "
        f"http://{cfg.web_host}:{cfg.web_port}/metrics; Ctrl-C stops everything"
    )
    with open(worker_log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "caseclock.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def main() -> int:
        await _wait_ready(cfg, proc)
        _say(
            "caseclock demo: worker ready; opening cases (demo policy: P1 ack 20 s, "
            "update every 40 s; P2 ack 40 s, elevate at 60 s; P3 ack 60 s)"
        )
        prod = asyncio.create_task(produce(cfg, every, None, None))
        try:
            return await watch(cfg, seconds)
        finally:
            prod.cancel()
            await asyncio.gather(prod, return_exceptions=True)

    try:
        n = asyncio.run(main())
        _say(f"caseclock demo: {n} alerts shown")
        return 0 if n > 0 or seconds is None else 1
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


async def _wait_ready(cfg: Config, proc: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"caseclock demo: the worker exited ({proc.returncode}); see its log")
        if await asyncio.to_thread(_is_ready, cfg):
            return
        await asyncio.sleep(0.5)
    raise SystemExit("caseclock demo: the worker did not become ready in time")


def _is_ready(cfg: Config) -> bool:
    import urllib.request

    url = f"http://{cfg.web_host}:{cfg.web_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False
