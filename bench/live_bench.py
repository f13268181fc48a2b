"""The live benchmark: `caseclock worker` on a real broker, measured from outside, in one run.

    .venv/bin/python bench/live_bench.py --full             # the issue's sizes (~20 minutes)
    .venv/bin/python bench/live_bench.py --full --million   # and 1,000,000 open cases
    .venv/bin/python bench/live_bench.py --smoke            # tiny sizes, for CI (~1 minute)
    .venv/bin/python bench/live_bench.py --only ingest,recovery

It starts a local-kafka.sh broker on free ports (or uses --bootstrap) and worker subprocesses
(the integration harness's WorkerProcess), and treats the worker as a black box: its process,
its topics, its group's committed offsets, /metrics and /readyz. Parts (--only):

ingest     one worker (memory:// and rocksdb://) through a pre-produced backlog of generated
           histories (bench/generate.py, starting now, so nothing falls due meanwhile), beside
           the raw ceiling (bench/raw_ceiling.py: consume + orjson + produce, same topics),
           run before and after the workers.
lateness   fired_at - due_at of every alert read back from the alert topics, against replay's
           prediction for the same bytes. Steady: each case's acknowledgement warning falls due
           uniformly over --spread seconds and its breach --spread seconds later (a constant due
           rate); burst: every warning due in the same second, the breaches --burst-gap later.
           Open cases beyond --due-cap are background cases with nothing due during the run.
recovery   seconds from worker start to /readyz 200 with the table loaded (rocksdb://), data
           dir kept (after a clean stop, which saves the index snapshots; and after a SIGKILL,
           which reads every row) and wiped.
memory     resident memory (VmRSS) of the worker per open case, loaded minus empty.

Results: bench/results/live-<UTC date>.json and live-latest.json, plots live-lateness.png and
live-throughput.png there (--results elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from caseclock.cli.simulator import (
    GeneratorStats,
    event_doc,
    iter_events,
    make_customer,
    make_subject,
    random_event_id,
)
from caseclock.live.config import SETTINGS_BY_ENV, TABLE_STORES
from common import result_header, tree_dirty
from live_support import (
    AT_WORKER_DEFAULT,
    CONSUMED,
    DEAD_LETTERS,
    DUPLICATE,
    INPUT_TOPICS,
    OPEN_CASES,
    REPO,
    US,
    BenchDeployment,
    Broker,
    Consumption,
    Meter,
    Probe,
    Sent,
    WorkerProcess,
    bench_broker,
    cpu_seconds,
    create_topics,
    due,
    events_seen,
    expected_alerts,
    fired,
    iso,
    load,
    memory_kib,
    metric_total,
    now_us,
    percentile,
    produce_bulk,
    read_all,
    scrape,
    start_worker,
    time_to_ready,
    watch_consumption,
    worker_pid,
)

BENCH = REPO / "bench"
PARTS = ("ingest", "lateness", "recovery", "memory")
STORES = TABLE_STORES

TARGETS = {
    "ingest_rocksdb_events_per_s": 20_000,
    "ingest_ratio_to_raw": 0.25,
    "lateness_p99_s": 0.100,
    "burst_drain_s": 10.0,
    "ready_wiped_s": 30.0,
    "ready_kept_s": 5.0,
    "ready_kept_after_kill_s": 5.0,
    "bytes_per_open_case": 600,
    "target_cases": 1_000_000,
}

DUE_PLAN = "bench-due"
IDLE_PLAN = "bench-idle"
IDLE_WINDOW = "30d"

LATENESS_POLICY = """\
# Written by bench/live_bench.py for one lateness run: a case opened at o gets its
# acknowledgement warning at o + {warn_s:g} s and its breach at o + {ack_s:g} s; nothing else.
default_plan = "{due}"

[plans.{due}]
warn_fraction = {fraction!r}
[plans.{due}.priorities.3]
acknowledge = "{ack_ms}ms"
update_every = "{idle}"
elevate = "never"

{idle_plan}"""

IDLE_POLICY = f"""\
# Background cases: open, acknowledged or not, and nothing falls due for {IDLE_WINDOW}.
[plans.{IDLE_PLAN}]
warn_fraction = 0.5
[plans.{IDLE_PLAN}.priorities.1]
acknowledge = "{IDLE_WINDOW}"
update_every = "{IDLE_WINDOW}"
elevate = "never"
[plans.{IDLE_PLAN}.priorities.2]
acknowledge = "{IDLE_WINDOW}"
update_every = "{IDLE_WINDOW}"
elevate = "never"
[plans.{IDLE_PLAN}.priorities.3]
acknowledge = "{IDLE_WINDOW}"
update_every = "{IDLE_WINDOW}"
elevate = "never"
"""
IDLE_ONLY_POLICY = f'default_plan = "{IDLE_PLAN}"\n' + IDLE_POLICY


@dataclass(frozen=True)
class Sizes:
    ingest_events: int
    partitions: int
    lateness_cases: tuple[int, ...]
    """Open cases of the steady lateness runs."""
    burst_cases: tuple[int, ...]
    """Open cases of the burst runs."""
    due_cap: int
    """At most this many cases fall due in a run; the others are background."""
    spread_s: float
    burst_gap_s: float
    lead_margin_s: float
    lead_rate: float
    """Events/s assumed for loading the cases that fall due, to place their deadlines after it
    (the baseline worker does 1,300-3,700 on a busy 2-core machine; 2,000 was too few)."""
    recovery_cases: int
    recovery_events_per_case: int
    quiet_s: float
    poll_s: float
    settle_s: float
    """Pause before a memory reading (after start, after a load)."""
    read_idle_s: float
    recovery_delay: str | None
    """CASECLOCK_RECOVERY_DELAY for every worker (None: the worker's default)."""
    ready_timeout_s: float


FULL = Sizes(
    ingest_events=300_000,
    partitions=8,
    lateness_cases=(10_000, 100_000),
    burst_cases=(100_000,),
    due_cap=100_000,
    spread_s=60.0,
    burst_gap_s=60.0,
    lead_margin_s=10.0,
    lead_rate=1000.0,
    recovery_cases=100_000,
    recovery_events_per_case=2,
    quiet_s=5.0,
    poll_s=0.5,
    settle_s=2.0,
    read_idle_s=1.0,
    recovery_delay=None,
    ready_timeout_s=600.0,
)
SMOKE = replace(
    FULL,
    ingest_events=2000,
    lateness_cases=(200,),
    burst_cases=(200,),
    spread_s=2.0,
    burst_gap_s=3.0,
    lead_margin_s=2.0,
    recovery_cases=300,
    quiet_s=1.5,
    poll_s=0.25,
    settle_s=0.3,
    read_idle_s=0.5,
    recovery_delay="0",
    ready_timeout_s=90.0,
)


# --- the run's context -------------------------------------------------------------------------


@dataclass
class Ctx:
    broker: Broker
    sizes: Sizes
    seed: int
    workdir: Path
    run_id: str
    probe: Probe
    worker_env: dict[str, str] = field(default_factory=dict)
    """Settings given to every worker (--worker-env), after the benchmark's own."""

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def deployment(
        self, part: str, *, store: str, policy: str, app: str | None = None
    ) -> BenchDeployment:
        prefix = f"{self.run_id}-{part}"
        extra = {"CASECLOCK_STORE": store}
        if app is not None:
            extra["CASECLOCK_APP_ID"] = f"{prefix}-{app}"
        if self.sizes.recovery_delay is not None:
            extra["CASECLOCK_RECOVERY_DELAY"] = self.sizes.recovery_delay
        extra.update(self.worker_env)
        workdir = self.workdir / part
        workdir.mkdir(parents=True, exist_ok=True)
        return BenchDeployment(
            self.bootstrap,
            prefix,
            workdir,
            partitions=self.sizes.partitions,
            extra_env=extra,
            policy=policy,
        )

    async def watch(
        self,
        w: WorkerProcess,
        dep: BenchDeployment,
        n: int,
        *,
        t0: float,
        base: int = 0,
        need_commit: bool = True,
        meter: Meter | None = None,
    ) -> Consumption:
        """Wait until the worker has consumed `n` more input records (`base` already)."""
        return await watch_consumption(
            self.probe,
            w,
            app_id(dep),
            dep.input_topics,
            n,
            t0=t0,
            give_up_s=7200,
            interval=self.sizes.poll_s,
            metric_base=base,
            committed_base=base,
            need_commit=need_commit,
            meter=meter,
        )

    def meter(self, w: WorkerProcess | None = None) -> Meter:
        return Meter(worker=None if w is None else worker_pid(w), broker=self.broker.pid)


def app_id(dep: BenchDeployment) -> str:
    return dep.extra_env.get("CASECLOCK_APP_ID", dep.app_id)


@contextlib.contextmanager
def running(w: WorkerProcess) -> Iterator[WorkerProcess]:
    """Stop the worker when the block ends (SIGTERM, SIGKILL after two minutes)."""
    try:
        yield w
    finally:
        w.stop(timeout=120)


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def builtin_policy() -> str:
    return resources.files("caseclock.policies").joinpath("support-plus.toml").read_text()


def case_opened(
    rng: random.Random, case_id: str, at_us: int, plan: str, priority: int
) -> dict[str, Any]:
    doc = event_doc(
        "case-opened",
        case_id,
        iso(at_us),
        random_event_id(rng),
        priority=priority,
        plan=plan,
        customer_id=make_customer(rng),
        subject=make_subject(rng),
    )
    if rng.random() < 0.75:
        doc["reported_at"] = iso(at_us - round(rng.uniform(10, 600) * US))
    return doc


def support_note(rng: random.Random, case_id: str, at_us: int) -> dict[str, Any]:
    return event_doc(
        "case-noted",
        case_id,
        iso(at_us),
        random_event_id(rng),
        author="support",
        visibility="public",
    )


def as_record(dep: BenchDeployment, doc: dict[str, Any]) -> tuple[str, bytes, bytes]:
    return dep.topic(doc["type"]), doc["case_id"].encode(), orjson.dumps(doc)


def idle_cases(
    dep: BenchDeployment, stem: str, n: int, seed: int, notes: int
) -> Iterator[tuple[str, bytes, bytes]]:
    """n open cases of the idle plan (priorities 10/35/55% P1/P2/P3), opened over the last
    hour, each with `notes` public support notes after its opening (acknowledged)."""
    rng = random.Random(seed)
    t0 = now_us() - 3600 * US
    for i in range(n):
        at = t0 + i * 3600 * US // max(n, 1)
        cid = f"{stem}-{i:07d}"
        prio = rng.choices((1, 2, 3), (0.10, 0.35, 0.55))[0]
        yield as_record(dep, case_opened(rng, cid, at, IDLE_PLAN, prio))
        for k in range(notes):
            yield as_record(dep, support_note(rng, cid, at + (k + 1) * 1000))


def thin(samples: Sequence[Any], most: int = 240) -> list[Any]:
    step = max(1, math.ceil(len(samples) / most))
    out = list(samples[::step])
    if samples and out[-1] is not samples[-1]:
        out.append(samples[-1])
    return out


def quantiles(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 4),
        "p90": round(percentile(values, 90), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
    }


# --- ingest ------------------------------------------------------------------------------------


async def raw_ceiling(ctx: Ctx, topics: list[str], out: str, n: int, label: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / "raw_ceiling.py"), "--bootstrap", ctx.bootstrap]
    cmd += ["--topics", ",".join(topics), "--out", out, "--expect", str(n)]
    cmd += ["--group", f"{ctx.run_id}-{label}"]
    meter = ctx.meter()
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"raw ceiling failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    result["label"] = label
    result["events_per_cpu_s"] = round(n / result["cpu_s"], 1) if result["cpu_s"] else None
    result["machine"] = meter.done()
    log(f"ingest: raw ceiling {label}: {result['events_per_s']} events/s")
    return result


async def ingest_worker(ctx: Ctx, store: str, label: str, n: int) -> dict[str, Any]:
    s = ctx.sizes
    dep = ctx.deployment("ingest", store=store, policy=builtin_policy(), app=label)
    w = WorkerProcess(dep, label)
    with running(w):
        t0 = time.monotonic()
        w.start()
        ready_s = time_to_ready(w, t0, s.ready_timeout_s)
        meter = ctx.meter(w)
        c = await ctx.watch(w, dep, n, t0=t0, meter=meter)
        busy = c.busy or meter.done()
        text = scrape(w)
        mem = memory_kib(worker_pid(w))
    by_metric = c.rate(1, 0)
    by_offsets = c.rate(2, 0)
    eps = by_metric["events_per_s"] or by_offsets["events_per_s"]
    cpu = busy["cpu_s"]["worker"]
    counts = {
        "produced": n,
        "applied": metric_total(text, CONSUMED),
        "duplicates": metric_total(text, DUPLICATE),
        "dead_letters": metric_total(text, DEAD_LETTERS) or 0,
        "seen_by_metric": events_seen(text),
        "committed": c.samples[-1][2] if c.samples else None,
    }
    log(f"ingest: {store} {eps} events/s ({by_offsets['events_per_s']} by committed offsets)")
    return {
        "store": store,
        "app_id": app_id(dep),
        "settings": dep.settings(),
        "ready_s": round(ready_s, 3),
        "events_per_s": eps,
        "events_per_worker_cpu_s": round(n / cpu, 1) if cpu else None,
        "by_metric": by_metric,
        "by_committed_offsets": by_offsets,
        "timed_out": c.timed_out,
        "counts": counts,
        "consumed_all": counts["seen_by_metric"] == n and counts["committed"] == n,
        "machine": busy,
        "memory_at_end": mem,
        "restarts": w.restarts,
        "samples": [[round(t, 3), m, k] for t, m, k in thin(c.samples)],
    }


async def part_ingest(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    base = ctx.deployment("ingest", store="memory://", policy=builtin_policy())
    topics = base.input_topics
    raw_out = base.topic("raw-out")
    await create_topics(ctx.bootstrap, [*topics, raw_out], s.partitions)
    stats = GeneratorStats()
    start_ms = now_us() // 1000
    topic_of = {t: base.topic(t) for t in INPUT_TOPICS}

    def records() -> Iterator[tuple[str, bytes, bytes]]:
        for line in iter_events(s.ingest_events, ctx.seed, start_ms, stats=stats):
            doc = orjson.loads(line)
            yield topic_of[doc["type"]], doc["case_id"].encode(), line

    log(f"ingest: producing {s.ingest_events} generated events")
    n, produce_s, _ = await produce_bulk(ctx.bootstrap, records())
    end = await ctx.probe.end_total(topics)
    if end != n:
        raise RuntimeError(f"produced {n} events but the topics hold {end}")
    out: dict[str, Any] = {
        "events": n,
        "history": {
            "generator": "bench/generate.py",
            "seed": ctx.seed,
            "start": iso(start_ms * 1000),
            **stats.to_dict(),
        },
        "produce_s": round(produce_s, 3),
        "partitions": s.partitions,
        "topics": topics,
    }
    raws = [await raw_ceiling(ctx, topics, raw_out, n, "raw-before")]
    workers = {}
    for store in STORES:
        label = store.removesuffix("://")
        workers[store] = await ingest_worker(ctx, store, label, n)
    raws.append(await raw_ceiling(ctx, topics, raw_out, n, "raw-after"))
    rates = [r["events_per_s"] for r in raws if r["events_per_s"]]
    ceiling = round(sum(rates) / len(rates), 1) if rates else None
    out["raw"] = raws
    out["raw_events_per_s"] = ceiling
    out["workers"] = workers
    out["ratio_to_raw"] = {st: _ratio(w["events_per_s"], ceiling) for st, w in workers.items()}
    per_cpu = [r["events_per_cpu_s"] for r in raws if r["events_per_cpu_s"]]
    raw_cpu = round(sum(per_cpu) / len(per_cpu), 1) if per_cpu else None
    out["raw_events_per_cpu_s"] = raw_cpu
    out["ratio_to_raw_per_cpu_s"] = {
        st: _ratio(w["events_per_worker_cpu_s"], raw_cpu) for st, w in workers.items()
    }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 4)


# --- lateness ----------------------------------------------------------------------------------


def lateness_policy(warn_s: float, ack_s: float) -> str:
    return LATENESS_POLICY.format(
        warn_s=warn_s,
        ack_s=ack_s,
        due=DUE_PLAN,
        fraction=warn_s / ack_s,
        ack_ms=round(ack_s * 1000),
        idle=IDLE_WINDOW,
        idle_plan=IDLE_POLICY,
    )


def analyse(
    live: list[dict[str, Any]],
    expected: list[dict[str, Any]],
    windows: dict[str, tuple[int, int]],
    ref_us: int,
) -> dict[str, Any]:
    """Live alerts against replay's: counts, lateness, warnings never sent, drain per window."""
    copies: dict[str, list[dict[str, Any]]] = {}
    for a in live:
        copies.setdefault(a["alert_id"], []).append(a)
    first = {aid: min(group, key=fired) for aid, group in copies.items()}
    exp = {a["alert_id"]: a for a in expected}
    missing = [a for aid, a in exp.items() if aid not in first]
    spurious = [aid for aid in first if aid not in exp]
    caught_up = {(a["case_id"], a["type"]) for a in first.values() if a.get("catch_up")}
    lost = [a for a in missing if a["stage"] == "warning"]
    lost_for_catch_up = [a for a in lost if (a["case_id"], a["type"]) in caught_up]
    late = {aid: (fired(a) - due(a)) / US for aid, a in first.items()}
    by_stage: dict[str, list[float]] = {}
    for aid, a in first.items():
        by_stage.setdefault(a["stage"], []).append(late[aid])
    fired_all = sorted(fired(a) for a in first.values())
    out: dict[str, Any] = {
        "alerts": {
            "expected_by_replay": len(exp),
            "read_back": len(live),
            "distinct_read_back": len(first),
            "matched": len(exp) - len(missing),
            "missing": len(missing),
            "spurious": len(spurious),
            "repeats": len(live) - len(first),
            "catch_ups": sum(1 for a in first.values() if a.get("catch_up")),
        },
        "warnings": {
            "expected": sum(1 for a in exp.values() if a["stage"] == "warning"),
            "never_sent": len(lost),
            "never_sent_superseded_by_catch_up": len(lost_for_catch_up),
            "missing_other_than_warnings": len(missing) - len(lost),
        },
        "lateness_s": {
            "all": quantiles(list(late.values())),
            **{stage: quantiles(v) for stage, v in sorted(by_stage.items())},
        },
        "fired": {
            "first_s": None if not fired_all else round((fired_all[0] - ref_us) / US, 3),
            "last_s": None if not fired_all else round((fired_all[-1] - ref_us) / US, 3),
            "alerts_per_s": None
            if len(fired_all) < 2
            else round(len(fired_all) / max((fired_all[-1] - fired_all[0]) / US, 1e-6), 1),
            "peak_alerts_per_s": max(
                (n for n in _per_second([(f - ref_us) / US for f in fired_all]).values()),
                default=0,
            ),
        },
    }
    win: dict[str, Any] = {}
    for name, (lo, hi) in windows.items():
        inside = [a for a in first.values() if lo <= due(a) < hi]
        fired_in = [fired(a) for a in inside]
        win[name] = {
            "due_from_s": round((lo - ref_us) / US, 3),
            "due_to_s": round((hi - ref_us) / US, 3),
            "expected": sum(1 for a in exp.values() if lo <= due(a) < hi),
            "live": len(inside),
            "lateness_s": quantiles([late[a["alert_id"]] for a in inside]),
            "drained_s_after_window_start": None
            if not fired_in
            else round((max(fired_in) - lo) / US, 3),
        }
    out["windows"] = win
    series: dict[int, list[float]] = {}
    for aid, a in first.items():
        series.setdefault(math.floor((due(a) - ref_us) / US), []).append(late[aid])
    out["series"] = {
        "columns": ["due_s", "n", "p50_s", "p99_s", "max_s"],
        "rows": [
            [k, len(v), round(percentile(v, 50), 4), round(percentile(v, 99), 4), round(max(v), 4)]
            for k, v in sorted(series.items())
        ],
    }
    return out


def _per_second(times_s: Sequence[float]) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in times_s:
        out[math.floor(t)] = out.get(math.floor(t), 0) + 1
    return out


async def wait_quiet(
    ctx: Ctx, topics: list[str], until_us: int, quiet_s: float, cap_s: float, meter: Meter
) -> tuple[int, dict[str, Any], bool]:
    """After `until_us`, wait until the alert topics stop growing for `quiet_s`. Returns the
    count, the meter as of the last growth, and whether the cap was hit."""
    last = -1
    last_change = time.monotonic()
    busy = meter.done()
    deadline = time.monotonic() + cap_s
    while True:
        n = await ctx.probe.end_total(topics)
        if n != last:
            last, last_change, busy = n, time.monotonic(), meter.done()
        if now_us() >= until_us and time.monotonic() - last_change >= quiet_s:
            return last, busy, False
        if time.monotonic() > deadline:
            return last, busy, True
        await asyncio.sleep(0.5)


async def lateness_run(ctx: Ctx, mode: str, open_cases: int) -> dict[str, Any]:
    s = ctx.sizes
    due_n = min(open_cases, s.due_cap)
    bg_n = open_cases - due_n
    spread = s.spread_s if mode == "steady" else 1.0
    gap = s.spread_s if mode == "steady" else s.burst_gap_s
    lead = math.ceil(s.lead_margin_s + due_n / s.lead_rate)
    warn_after = lead + spread
    ack = warn_after + gap
    name = f"{mode}-{open_cases}"
    dep = ctx.deployment(
        f"late-{name}", store="rocksdb://", policy=lateness_policy(warn_after, ack)
    )
    topics = dep.input_topics
    await create_topics(ctx.bootstrap, topics, s.partitions)
    run: dict[str, Any] = {
        "name": name,
        "mode": mode,
        "open_cases": open_cases,
        "due_cases": due_n,
        "background_cases": bg_n,
        "store": "rocksdb://",
        "shape": {
            "opened": f"uniformly over the {spread:g} s before production starts",
            "warning_after_open_s": warn_after,
            "breach_after_open_s": ack,
            "lead_s": lead,
            "warnings_due": f"[lead, lead + {spread:g}) s after production starts",
            "breaches_due": f"[lead + {gap:g}, lead + {gap + spread:g}) s",
            "deadlines_per_s": round(due_n / spread, 1),
        },
    }
    w = WorkerProcess(dep, "w")
    with running(w):
        run["ready_s"] = round(start_worker(w, s.ready_timeout_s), 3)
        run["settings"] = dep.settings()
        pid = worker_pid(w)
        await asyncio.sleep(s.settle_s)
        run["memory_empty"] = memory_kib(pid)
        seen = 0
        if bg_n:
            log(f"lateness {name}: loading {bg_n} background cases")
            records = idle_cases(dep, f"{name}-bg", bg_n, ctx.seed, notes=0)
            n, produce_s, _ = await produce_bulk(ctx.bootstrap, records)
            t0 = time.monotonic()
            c = await ctx.watch(w, dep, n, t0=t0, need_commit=False)
            seen = n
            run["background_load"] = {
                "events": n,
                "produce_s": round(produce_s, 3),
                **c.summary(),
            }
            run["memory_background"] = memory_kib(pid)
        rng = random.Random(ctx.seed)
        p0 = now_us()
        step = spread * US / due_n
        docs = (
            case_opened(
                rng, f"{name}-{i:07d}", p0 - round(spread * US) + round(i * step), DUE_PLAN, 3
            )
            for i in range(due_n)
        )
        log(f"lateness {name}: {due_n} cases falling due from +{lead} s")
        n, produce_s, produced = await produce_bulk(
            ctx.bootstrap, (as_record(dep, d) for d in docs), keep=True
        )
        t0 = time.monotonic() - (now_us() - p0) / US
        c = await ctx.watch(w, dep, n, t0=t0, base=seen, need_commit=False)
        loaded_s = c.metric_done_s if c.metric_done_s is not None else c.committed_done_s
        run["load"] = {
            "events": n,
            "produce_s": round(produce_s, 3),
            "loaded_s_after_production_start": None if loaded_s is None else round(loaded_s, 3),
            "loaded_before_first_due": loaded_s is not None and loaded_s < lead,
            "events_per_s": c.summary(seen)["events_per_s"],
        }
        run["memory_loaded"] = memory_kib(pid)
        first_due = p0 + lead * US
        last_due = p0 + round((lead + gap + spread) * US)
        await asyncio.sleep(max(0.0, (first_due - now_us()) / US))
        meter = ctx.meter(w)
        alert_topics = list(dep.alert_topics.values())
        count, busy, capped = await wait_quiet(
            ctx,
            alert_topics,
            last_due + US,
            s.quiet_s,
            cap_s=lead + 2 * (gap + spread) + 900,
            meter=meter,
        )
        run["machine_while_due"] = busy
        run["memory_end"] = memory_kib(pid)
        run["quiet_wait_capped"] = capped
        run["restarts"] = w.restarts
    log(f"lateness {name}: reading back {count} alerts")
    read = await read_all(ctx.bootstrap, alert_topics, idle=s.read_idle_s, give_up_after=600)
    live = [orjson.loads(v) for *_, v in read if v is not None]
    sent = [Sent(p.topic, p.partition, p.offset, p.key, p.value, p0) for p in produced]
    expected = expected_alerts(dep, sent, last_due + US)
    windows = {
        "warnings": (first_due, first_due + round(spread * US)),
        "breaches": (first_due + round(gap * US), last_due),
    }
    run.update(analyse(live, expected, windows, first_due))
    run["rss_bytes_per_open_case"] = _per_case(
        run["memory_empty"], run["memory_loaded"], open_cases
    )
    lat = run["lateness_s"]["all"]
    log(
        f"lateness {name}: p50 {lat['p50']} s, p99 {lat['p99']} s, max {lat['max']} s; "
        f"{run['warnings']['never_sent']} warnings never sent"
    )
    return run


def _per_case(empty: dict[str, Any], loaded: dict[str, Any], n: int) -> float | None:
    a, b = empty.get("rss_kib"), loaded.get("rss_kib")
    return None if a is None or b is None or n <= 0 else round((b - a) * 1024 / n, 1)


async def part_lateness(ctx: Ctx) -> dict[str, Any]:
    s = ctx.sizes
    runs = [await lateness_run(ctx, "steady", n) for n in s.lateness_cases]
    runs += [await lateness_run(ctx, "burst", n) for n in s.burst_cases]
    return {
        "measure": "fired_at - due_at of every alert read back from the alert topics (first "
        "copy of each alert_id); expected alerts from replay (caseclock.replay) of the same bytes",
        "runs": runs,
    }


# --- recovery and memory -----------------------------------------------------------------------


async def part_recovery(ctx: Ctx, restarts: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load --recovery-cases open cases into a rocksdb:// worker: resident memory per case;
    then, with `restarts`, time to ready again with the data dir kept (after a clean stop,
    then after a kill), then wiped. Returns (memory, recovery)."""
    s = ctx.sizes
    k = s.recovery_cases
    dep = ctx.deployment("recovery", store="rocksdb://", policy=IDLE_ONLY_POLICY)
    # A periodic snapshot soon after the worker is ready (the default is 30 s), for the kill.
    dep.extra_env.setdefault("CASECLOCK_SNAPSHOT_INTERVAL", str(SNAPSHOT_INTERVAL_S))
    topics = dep.input_topics
    await create_topics(ctx.bootstrap, topics, s.partitions)
    rec: dict[str, Any] = {"cases": k, "store": "rocksdb://"}
    w = WorkerProcess(dep, "w")
    with running(w):
        rec["ready_s_empty_table"] = round(start_worker(w, s.ready_timeout_s), 3)
        rec["settings"] = dep.settings()
        await asyncio.sleep(s.settle_s)
        empty = memory_kib(worker_pid(w))
        log(f"recovery/memory: loading {k} cases")
        notes = s.recovery_events_per_case - 1
        records = idle_cases(dep, "rc", k, ctx.seed, notes=notes)
        n, produce_s, _ = await produce_bulk(ctx.bootstrap, records)
        t0 = time.monotonic()
        c = await ctx.watch(w, dep, n, t0=t0)
        rec["load"] = {
            "events": n,
            "events_per_case": s.recovery_events_per_case,
            "what": "each case: a case-opened (P1/P2/P3 10/35/55%, customer, subject, "
            f"reported_at) and {notes} public support note(s); nothing falls due",
            "produce_s": round(produce_s, 3),
            **c.summary(),
        }
        await asyncio.sleep(s.settle_s)
        loaded = memory_kib(worker_pid(w))
        rec["open_cases_gauge_loaded"] = metric_total(scrape(w), OPEN_CASES)
    memory = {
        "cases": k,
        "store": "rocksdb://",
        "measure": "VmRSS of the worker process with the cases loaded, minus VmRSS right "
        "after it was ready with an empty table, per case",
        "empty": empty,
        "loaded": loaded,
        "rss_bytes_per_open_case": _per_case(empty, loaded, k),
    }
    log(f"recovery/memory: {memory['rss_bytes_per_open_case']} B per open case")
    if not restarts:
        return memory, rec
    changelog = sorted(
        t for t in await ctx.probe.topics() if t.startswith(app_id(dep)) and "changelog" in t
    )
    records_n = await ctx.probe.end_total(changelog)
    rec["changelog"] = {
        "topics": changelog,
        "records": records_n,
        "records_per_case": round(records_n / k, 3) if k else None,
    }
    # kept: after a clean stop (index snapshots saved); kept_after_kill: the worker before it
    # saved a periodic snapshot once ready, then 1 % of the cases changed, then a SIGKILL;
    # wiped: from the changelog.
    changed = max(10, k // 100)
    for label, wipe in (("kept", False), ("kept_after_kill", False), ("wiped", True)):
        if wipe:
            shutil.rmtree(w.data_dir, ignore_errors=True)
        if label == "kept_after_kill":
            start_worker(w, s.ready_timeout_s)
            rec["before_kill"] = await change_after_a_snapshot(ctx, w, dep, k, changed)
            w.kill()
        with running(w):
            meter = ctx.meter()
            ready = start_worker(w, s.ready_timeout_s)
            busy = meter.done()
            text = scrape(w)
            rec[f"data_dir_{label}"] = {
                "ready_s": round(ready, 3),
                "worker_cpu_s_to_ready": cpu_seconds(worker_pid(w)),
                "open_cases_gauge": metric_total(text, OPEN_CASES),
                "memory": memory_kib(worker_pid(w)),
                "machine": busy,
                "restarts": w.restarts,
                "rebuild": rebuild_of(w),
            }
            t = time.monotonic()
        rec[f"data_dir_{label}"]["stop_s"] = round(time.monotonic() - t, 3)
        log(f"recovery: data dir {label}: ready in {ready:.2f} s")
    return memory, rec


SNAPSHOT_INTERVAL_S = 10
PERIODIC_SAVE = "saved the index snapshots of"


async def change_after_a_snapshot(
    ctx: Ctx, w: WorkerProcess, dep: BenchDeployment, cases: int, n: int
) -> dict[str, Any]:
    """Wait for the worker's next periodic index snapshot, then add a support note to `n` of
    the `cases` (spread over them) and wait until their rows are durable (their input
    committed, which the commit order allows only once the rows are in the changelog and in
    RocksDB): what a restart after a kill must read again. (Applied is not enough: rows
    staged and not yet acknowledged are not in RocksDB, and a restart reads their input
    again instead.)"""
    saves = w.log_path.read_text(errors="replace").count(PERIODIC_SAVE)
    give_up = time.monotonic() + 4 * SNAPSHOT_INTERVAL_S + 60
    while w.log_path.read_text(errors="replace").count(PERIODIC_SAVE) <= saves:
        if time.monotonic() > give_up:
            raise RuntimeError("no periodic index snapshot: " + w.log_tail())
        await asyncio.sleep(0.2)
    rng = random.Random(ctx.seed + 1)
    step = max(1, cases // n)
    at = now_us()
    notes = [as_record(dep, support_note(rng, f"rc-{i:07d}", at)) for i in range(0, cases, step)]
    t0 = time.monotonic()
    await produce_bulk(ctx.bootstrap, notes[:n])
    end = await ctx.probe.end_total(dep.input_topics)
    while (metric_total(scrape(w), CONSUMED) or 0) < n or (
        await ctx.probe.committed_total(app_id(dep), dep.input_topics) < end
    ):
        if time.monotonic() - t0 > 120:
            raise RuntimeError("the notes after the snapshot were not committed: " + w.log_tail())
        await asyncio.sleep(0.2)
    return {"cases_changed_after_the_snapshot": n, "applied_s": round(time.monotonic() - t0, 3)}


REBUILT = re.compile(
    r"recovered partitions .*: (\d+) rows read, (\d+) deadlines from index snapshots"
    r"(?:, (\d+) of them read again)?"
)


def rebuild_of(w: WorkerProcess) -> dict[str, int] | None:
    """What the worker's latest index rebuild read: rows, deadlines from snapshots, and of
    those the ones read again (changed after a snapshot taken while the worker ran)."""
    found = REBUILT.findall(w.log_path.read_text(errors="replace"))
    if not found:
        return None
    rows, deadlines, again = found[-1]
    return {
        "rows_read": int(rows),
        "deadlines_from_index_snapshots": int(deadlines),
        "read_again": int(again or 0),
    }


# --- targets, output ---------------------------------------------------------------------------


def targets(result: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = {}

    def check(name: str, measured: Any, target: Any, met: bool | None, note: str = "") -> None:
        t[name] = {"target": target, "measured": measured, "met": met}
        if note:
            t[name]["note"] = note

    ing = result.get("ingest")
    if ing:
        eps = ing["workers"]["rocksdb://"]["events_per_s"]
        ratio = ing["ratio_to_raw"]["rocksdb://"]
        goal = TARGETS["ingest_rocksdb_events_per_s"]
        check("ingest_rocksdb_events_per_s", eps, f">= {goal}", eps is not None and eps >= goal)
        goal = TARGETS["ingest_ratio_to_raw"]
        check(
            "ingest_rocksdb_ratio_to_raw", ratio, f">= {goal}", ratio is not None and ratio >= goal
        )
    late = result.get("lateness")
    if late:
        goal = TARGETS["lateness_p99_s"]
        for r in late["runs"]:
            p99 = r["lateness_s"]["all"]["p99"]
            key = f"lateness_p99_s_{r['name']}"
            if r["mode"] == "steady":
                check(key, p99, f"<= {goal}", p99 is not None and p99 <= goal)
            else:
                drain = r["windows"]["warnings"]["drained_s_after_window_start"]
                goal_b = TARGETS["burst_drain_s"]
                check(
                    f"burst_drain_s_{r['name']}",
                    drain,
                    f"<= {goal_b}",
                    drain is not None and drain <= goal_b and r["warnings"]["never_sent"] == 0,
                    "last alert of the burst second, from its start; not met if a warning of "
                    "the burst was never sent",
                )
        lost = sum(r["warnings"]["never_sent"] for r in late["runs"])
        check("warnings_never_sent", lost, 0, lost == 0)

    def size_note(cases: int) -> str:
        if cases == TARGETS["target_cases"]:
            return ""
        return f"measured at {cases:,} cases; the target is for {TARGETS['target_cases']:,}"

    rec = result.get("recovery")
    if rec and "data_dir_kept" in rec:
        for label in ("kept", "kept_after_kill", "wiped"):
            if f"data_dir_{label}" not in rec:
                continue
            ready = rec[f"data_dir_{label}"]["ready_s"]
            goal = TARGETS[f"ready_{label}_s"]
            note = size_note(rec["cases"])
            check(f"ready_s_data_dir_{label}", ready, f"<= {goal}", ready <= goal, note)
    mem = result.get("memory")
    if mem:
        bpc = mem["rss_bytes_per_open_case"]
        goal = TARGETS["bytes_per_open_case"]
        met = bpc is not None and bpc <= goal
        check("rss_bytes_per_open_case", bpc, f"<= {goal}", met, size_note(mem["cases"]))
    return t


def parse_sizes(text: str) -> tuple[int, ...]:
    return tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())


def sizes_from(args: argparse.Namespace) -> Sizes:
    s = SMOKE if args.smoke else FULL
    if args.million:
        s = replace(s, lateness_cases=(*s.lateness_cases, 1_000_000), recovery_cases=1_000_000)
    over: dict[str, Any] = {}
    if args.ingest_events is not None:
        over["ingest_events"] = args.ingest_events
    if args.lateness_cases is not None:
        over["lateness_cases"] = parse_sizes(args.lateness_cases)
    if args.burst_cases is not None:
        over["burst_cases"] = parse_sizes(args.burst_cases)
    if args.recovery_cases is not None:
        over["recovery_cases"] = args.recovery_cases
    if args.spread is not None:
        over["spread_s"] = args.spread
    if args.burst_gap is not None:
        over["burst_gap_s"] = args.burst_gap
    if args.partitions is not None:
        over["partitions"] = args.partitions
    if args.lead_rate is not None:
        over["lead_rate"] = args.lead_rate
    return replace(s, **over)


async def run_parts(ctx_args: dict[str, Any], parts: list[str], result: dict[str, Any]) -> None:
    async with Probe(ctx_args["broker"].bootstrap) as probe:
        ctx = Ctx(probe=probe, **ctx_args)
        if "ingest" in parts:
            result["ingest"] = await part_ingest(ctx)
        if "lateness" in parts:
            result["lateness"] = await part_lateness(ctx)
        if "recovery" in parts or "memory" in parts:
            memory, recovery = await part_recovery(ctx, restarts="recovery" in parts)
            late = result.get("lateness", {}).get("runs", [])
            memory["lateness_runs"] = [
                {
                    "name": r["name"],
                    "open_cases": r["open_cases"],
                    "rss_bytes_per_open_case": r["rss_bytes_per_open_case"],
                }
                for r in late
            ]
            result["memory"] = memory
            if "recovery" in parts:
                result["recovery"] = recovery


def worker_defaults() -> dict[str, str]:
    """The worker's own defaults of the settings that shape the figures (left as they are)."""
    names = (*AT_WORKER_DEFAULT, "CASECLOCK_RECOVERY_DELAY", "CASECLOCK_SESSION_TIMEOUT")
    return {n: SETTINGS_BY_ENV[n].default for n in names if n in SETTINGS_BY_ENV}


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so that workers and the broker are stopped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    size.add_argument("--full", action="store_true", help="the issue's sizes (the default)")
    p.add_argument("--million", action="store_true", help="also 1,000,000 open cases")
    p.add_argument("--only", default=",".join(PARTS), help=f"parts, of {','.join(PARTS)}")
    p.add_argument("--bootstrap", help="use this broker instead of starting one")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ingest-events", type=int)
    p.add_argument("--lateness-cases", help="open cases of the steady runs, e.g. 10000,100000")
    p.add_argument("--burst-cases", help="open cases of the burst runs ('' for none)")
    p.add_argument("--recovery-cases", type=int)
    p.add_argument("--spread", type=float, help="steady: seconds over which warnings fall due")
    p.add_argument("--burst-gap", type=float, help="burst: seconds from warnings to breaches")
    p.add_argument("--partitions", type=int)
    p.add_argument(
        "--lead-rate", type=float, help="lateness: events/s assumed for loading the due cases"
    )
    p.add_argument("--results", type=Path, default=BENCH / "results", help="output directory")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--keep-workdir", action="store_true", help="keep worker logs and data")
    p.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a CASECLOCK_* setting for every worker (repeatable), e.g. to compare two settings",
    )
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    sizes = sizes_from(args)
    worker_env = dict(x.split("=", 1) for x in args.worker_env if "=" in x)
    bad = [x for x in args.worker_env if "=" not in x or not x.startswith("CASECLOCK_")]
    if bad:
        p.error(f"--worker-env wants CASECLOCK_NAME=VALUE, not {', '.join(bad)}")
    signal.signal(signal.SIGTERM, _terminate)

    started = datetime.now(UTC)
    t_start = time.monotonic()
    run_id = f"lb{uuid.uuid4().hex[:8]}"
    result: dict[str, Any] = {
        **result_header("caseclock live: the worker on a real broker, seen from outside", started),
        "tree_dirty": tree_dirty(),
        "load_start": load(),
        "mode": "smoke" if args.smoke else "full",
        "million": args.million,
        "parts": parts,
        "parameters": {**asdict(sizes), "seed": args.seed},
        "targets_of_the_issue": TARGETS,
        "worker_defaults": worker_defaults(),
        "worker_env": worker_env,
    }
    workdir = Path(tempfile.mkdtemp(prefix="caseclock-live-"))
    try:
        with bench_broker(args.bootstrap) as broker:
            result["broker"] = asdict(broker)
            log(f"broker {broker.bootstrap} (started here: {broker.started_here}); run {run_id}")
            ctx_args = {
                "broker": broker,
                "sizes": sizes,
                "seed": args.seed,
                "workdir": workdir,
                "run_id": run_id,
                "worker_env": worker_env,
            }
            asyncio.run(run_parts(ctx_args, parts, result))
    finally:
        if args.keep_workdir:
            log(f"worker logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["targets"] = targets(result)
    result["load_end"] = load()
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["duration_s"] = round(time.monotonic() - t_start, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        from live_plots import plot_all

        result["plots"] = [str(_rel(x)) for x in plot_all(result, args.results)]
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n"
    dated = args.results / f"live-{started.date().isoformat()}.json"
    dated.write_text(text)
    (args.results / "live-latest.json").write_text(text)
    log(f"wrote {dated} and live-latest.json in {result['duration_s']} s")
    print(orjson.dumps(result["targets"], option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    return 0


def _rel(path: Path) -> Path:
    try:
        return path.resolve().relative_to(REPO)
    except ValueError:
        return path


if __name__ == "__main__":
    sys.exit(main())
