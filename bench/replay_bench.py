"""Replay throughput and per-case memory of the caseclock SLA engine, on one core.

    taskset -c 0 .venv/bin/python bench/replay_bench.py --events 1000000 --seed 1

Phases (each reported in the result file):

1. history: generate ``--events`` lines with bench/generate.py in a subprocess (not timed, and
   not counted in this process's peak RSS), or reuse ``--history FILE`` when it exists.
2. replay (timed): read the file line by line, ``decode_event`` each line, ``Replayer.feed`` it,
   then ``Replayer.finish`` at the latest occurred_at. Wall (perf_counter) and CPU
   (process_time) seconds, events/s, alerts/s, and peak RSS (ru_maxrss) right after this phase.
   Reading the file is included (buffered, a small share); alerts are counted, not serialised.
3. profile (optional, ``--profile N``): cProfile over the first N lines with a fresh Replayer;
   top functions by own time.
4. memory per open case: build ``--cases`` open cases through the engine (a case-opened with
   customer_id, subject and reported_at, plus one public support note), keep them in a dict as
   the Replayer does and schedule each in a DeadlineIndex after each event (as Replayer.feed
   does). tracemalloc current-memory delta / N, once without and once with the index, so the
   figure includes the CaseState and its strings, the dict entry and the index entry (heap
   tuple + live-map entry). Also the serialised size, len(orjson.dumps(state.to_dict())), which
   is what the changelog stores, for these cases and for the open cases left by the replay.

Results go to bench/results/replay-<UTC date>.json and bench/results/latest.json.

``--business-hours`` instead compares replay throughput of one history under two policies in
the same run: support-plus counting 24x7, and the same windows in business hours (P2 and P3
in Europe/Berlin office hours with holidays, P1 in a New York extended-hours calendar), both
with ``pause_statuses = ["pending"]``; add ``--pauses`` to generate a history with pauses and
reopened cases. The two replays alternate for ``--rounds`` rounds and the best round of each
is kept (the machine is shared). The target: business hours within 20% of 24x7. Results go to
bench/results/replay-business-hours-<UTC date>.json (latest.json is left alone).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from caseclock.cli.simulator import (
    event_doc,
    make_customer,
    make_subject,
    random_event_id,
    rfc3339_ms,
)
from caseclock.contracts.inbound import Rejected, decode_event
from caseclock.core.engine import Engine
from caseclock.core.policy import Policy, load_policy, policy_from_toml
from caseclock.core.schedule import DeadlineIndex
from caseclock.core.state import CaseState
from caseclock.core.timeutil import to_us
from caseclock.replay import Replayer
from common import add_run_arguments, pin_to_one_core, result_header, rss_kib, write_result

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TARGET_EVENTS_PER_S = 100_000
TARGET_BYTES_PER_CASE = 1024
BUSINESS_HOURS_MAX_SLOWDOWN = 0.20

_WINDOWS = """
[plans.support-plus.priorities.1]
time_to_open = "1h"
acknowledge = "1h"
update_every = "4h"
elevate = "immediately"
[plans.support-plus.priorities.2]
time_to_open = "4h"
acknowledge = "4h"
update_every = "48h"
elevate = "8h"
[plans.support-plus.priorities.3]
time_to_open = "8h"
acknowledge = "8h"
update_every = "120h"
elevate = "never"
"""
POLICY_24X7 = (
    """
[plans.support-plus]
calendar = "24x7"
pause_statuses = ["pending"]
"""
    + _WINDOWS
)
POLICY_BUSINESS_HOURS = """
[calendars.emea]
timezone = "Europe/Berlin"
holidays = ["2026-01-01", "2026-01-06", "2026-04-03", "2026-04-06", "2026-05-01",
            "2026-05-14", "2026-05-25", "2026-10-03", "2026-12-24", "2026-12-25", "2026-12-26"]
[calendars.emea.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-13:00,14:00-17:00"

[calendars.us-extended]
timezone = "America/New_York"
holidays = ["2026-01-01", "2026-01-19", "2026-05-25", "2026-07-03", "2026-09-07",
            "2026-11-26", "2026-12-25"]
[calendars.us-extended.hours]
mon = "07:00-22:00"
tue = "07:00-22:00"
wed = "07:00-22:00"
thu = "07:00-22:00"
fri = "07:00-22:00"
sat = "09:00-13:00"

[plans.support-plus]
calendar = "emea"
pause_statuses = ["pending"]
""" + _WINDOWS.replace(
    "[plans.support-plus.priorities.1]\n",
    '[plans.support-plus.priorities.1]\ncalendar = "us-extended"\n',
)


# --- phase 1: history ------------------------------------------------------------------------


def _generate(path: Path, n: int, seed: int, rate: float, pauses: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / "generate.py"), "--events", str(n), "--seed", str(seed)]
    cmd += ["--rate", str(rate), "--out", str(path), "--stats"]
    if pauses:
        cmd.append("--pauses")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=True)
    wall = time.perf_counter() - t0
    stats = orjson.loads(done.stderr.strip().splitlines()[-1])
    return {"command": cmd[1:], "wall_s": round(wall, 2), "lines_per_s": round(n / wall), **stats}


# --- phase 2: timed replay -------------------------------------------------------------------


def _replay(path: Path, policy: Policy) -> tuple[dict[str, Any], Replayer]:
    r = Replayer(policy)
    feed = r.feed
    alerts = 0
    lines = 0
    invalid = 0
    latest: int | None = None
    max_scheduled = 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with path.open("rb", buffering=1 << 20) as f:
        w0 = time.perf_counter()
        c0 = time.process_time()
        for line in f:
            lines += 1
            try:
                ev = decode_event(line.rstrip(b"\n"), policy)
            except Rejected:
                invalid += 1
                continue
            t = to_us(ev.occurred_at)
            if latest is None or t > latest:
                latest = t
            alerts += len(feed(ev))
            if not lines & 0x3FFF:  # every 16384 lines: cases with a pending deadline
                max_scheduled = max(max_scheduled, len(r.index))
        alerts += len(r.finish(latest))
        c1 = time.process_time()
        w1 = time.perf_counter()
    wall = w1 - w0
    cpu = c1 - c0
    states = r.states
    open_cases = sum(
        1 for s in states.values() if s.opened_at is not None and s.resolved_at is None
    )
    res = {
        "lines": lines,
        "invalid": invalid,
        "applied": r.summary.events,
        "duplicates": r.summary.duplicates,
        "alerts": alerts,
        "alerts_by_type_stage": {f"{t} {s}": n for (t, s), n in sorted(r.summary.alerts.items())},
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s_wall": round(lines / wall),
        "events_per_s_cpu": round(lines / cpu),
        "alerts_per_s_wall": round(alerts / wall),
        "us_per_event_wall": round(wall / lines * 1e6, 2),
        "peak_rss_kib_before": rss_before,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_kib_after": rss_kib(),
        "cases_in_memory": len(states),
        "open_cases_at_end": open_cases,
        "scheduled_at_end": len(r.index),
        "max_scheduled_sampled": max(max_scheduled, len(r.index)),
        "horizon": None
        if latest is None
        else datetime.fromtimestamp(latest / 1e6, UTC).isoformat(),
    }
    return res, r


def _serialized_sizes(states: list[CaseState]) -> dict[str, Any]:
    sizes = sorted(len(orjson.dumps(s.to_dict())) for s in states)
    if not sizes:
        return {"n": 0}
    return {
        "n": len(sizes),
        "mean_bytes": round(statistics.fmean(sizes), 1),
        "p50_bytes": sizes[len(sizes) // 2],
        "p99_bytes": sizes[min(len(sizes) - 1, len(sizes) * 99 // 100)],
        "max_bytes": sizes[-1],
    }


def _deep_size(objs: Any, seen: set[int]) -> int:
    """sys.getsizeof over objects not counted yet (by id): shared objects are counted once."""
    total = 0
    for o in objs:
        if o is None or id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
    return total


def _state_parts(s: CaseState) -> list[Any]:
    parts: list[Any] = [s, s.priorities]
    for name in CaseState.__slots__:
        v = getattr(s, name)
        if not isinstance(v, list):
            parts.append(v)
    for p in s.priorities:
        parts.append(p)
        parts.extend(p)
    return parts


def _replay_memory(r: Replayer) -> dict[str, Any]:
    """Deep getsizeof walk of what the Replayer holds at the end of the history."""
    seen: set[int] = set()
    open_states = [
        s for s in r.states.values() if s.opened_at is not None and s.resolved_at is None
    ]
    open_bytes = sum(_deep_size(_state_parts(s), seen) for s in open_states)
    other_bytes = sum(_deep_size(_state_parts(s), seen) for s in r.states.values())
    dict_bytes = sys.getsizeof(r.states)
    idx = r.index
    heap = idx._heap
    live = idx._live
    index_bytes = sys.getsizeof(heap) + sys.getsizeof(live)
    for entry in heap:
        index_bytes += _deep_size((entry, *entry), seen)
    for key, val in live.items():
        index_bytes += _deep_size((key, val, *val), seen)
    n_open = len(open_states)
    return {
        "method": "deep sys.getsizeof walk, each object counted once (ints, strs, bytes, "
        "lists, tuples); approximate, excludes allocator overhead",
        "open_cases": n_open,
        "cases_in_memory": len(r.states),
        "scheduled": len(idx),
        "heap_entries": len(heap),
        "open_state_mean_bytes": round(open_bytes / n_open, 1) if n_open else None,
        "other_state_mean_bytes": round(other_bytes / max(1, len(r.states) - n_open), 1),
        "states_dict_bytes_per_entry": round(dict_bytes / max(1, len(r.states)), 1),
        "index_bytes_per_scheduled_case": round(index_bytes / max(1, len(idx)), 1),
        "open_case_bytes_estimate": round(
            open_bytes / n_open
            + dict_bytes / max(1, len(r.states))
            + index_bytes / max(1, len(idx)),
            1,
        )
        if n_open
        else None,
        "total_bytes_per_open_case": round(
            (open_bytes + other_bytes + dict_bytes + index_bytes) / max(1, n_open), 1
        ),
        "note": "open_case_bytes_estimate = open_state_mean + dict bytes per entry + index "
        "bytes per scheduled case; total_bytes_per_open_case divides everything the Replayer "
        "holds (including resolved and unopened cases, which Replayer.states keeps) by the "
        "open cases",
    }


# --- phase 2b: breakdown ----------------------------------------------------------------------


class _Timer:
    def __init__(self) -> None:
        self.ns: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        ns = self.ns
        calls = self.calls
        clock = time.perf_counter_ns

        def timed(*a: Any, **k: Any) -> Any:
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                ns[name] += clock() - t
                calls[name] += 1

        return timed


class _TimedIndex(DeadlineIndex):
    """A DeadlineIndex with a __dict__, so its methods can be wrapped per instance."""


def _breakdown(path: Path, policy: Policy) -> dict[str, Any]:
    """Inclusive time spent in each engine/index entry point over the whole history.

    The wrappers (instance attributes, no source change) add ~0.2 us per call, so the
    instrumented run is slower than the timed one; shares are what matter.
    """
    tm = _Timer()
    r = Replayer(policy)
    eng = r.engine
    for name in ("apply", "next_due", "evaluate", "_alert", "time_to_open"):
        setattr(eng, name, tm.wrap(f"engine.{name}", getattr(eng, name)))
    idx = _TimedIndex()
    for name in ("schedule", "pop_before"):
        setattr(idx, name, tm.wrap(f"index.{name}", getattr(idx, name)))
    r.index = idx
    feed = tm.wrap("Replayer.feed", r.feed)
    decode = tm.wrap("decode_event", decode_event)
    latest: int | None = None
    lines = 0
    with path.open("rb", buffering=1 << 20) as f:
        w0 = time.perf_counter_ns()
        for line in f:
            lines += 1
            ev = decode(line.rstrip(b"\n"), policy)
            t = to_us(ev.occurred_at)
            if latest is None or t > latest:
                latest = t
            feed(ev)
        tm.wrap("Replayer.finish", r.finish)(latest)
        wall = time.perf_counter_ns() - w0
    n = tm.ns
    inner = (
        "engine.apply",
        "engine.next_due",
        "engine.evaluate",
        "engine.time_to_open",
        "index.schedule",
        "index.pop_before",
    )
    n["  Replayer own code (feed+finish minus the above)"] = (
        n["Replayer.feed"] + n["Replayer.finish"] - sum(n[k] for k in inner)
    )
    n["  engine.evaluate minus _alert"] = n["engine.evaluate"] - n["engine._alert"]
    n["  loop, file read, to_us (rest of wall)"] = (
        wall - n["decode_event"] - n["Replayer.feed"] - n["Replayer.finish"]
    )
    rows = []
    for name, total in sorted(n.items(), key=lambda x: -x[1]):
        rows.append(
            {
                "what": name,
                "us_per_event": round(total / lines / 1000, 2),
                "share_of_wall": round(total / wall, 3),
                "calls": tm.calls.get(name),
                "us_per_call": round(total / tm.calls[name] / 1000, 2)
                if tm.calls.get(name)
                else None,
            }
        )
    return {
        "lines": lines,
        "instrumented_wall_s": round(wall / 1e9, 2),
        "note": "inclusive times; evaluate includes _alert; next_due counts both calls (after "
        "apply and after evaluate); wrappers add ~0.2 us per call",
        "rows": rows,
    }


# --- phase 3: profile ------------------------------------------------------------------------


def _profile(path: Path, policy: Policy, n: int, top: int) -> dict[str, Any]:
    r = Replayer(policy)
    with path.open("rb") as f:
        lines = [f.readline() for _ in range(n)]
    lines = [x for x in lines if x]

    def run() -> None:
        latest = None
        for line in lines:
            ev = decode_event(line.rstrip(b"\n"), policy)
            t = to_us(ev.occurred_at)
            latest = t if latest is None or t > latest else latest
            r.feed(ev)
        r.finish(latest)

    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    total = st.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, lineno, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{_short(file)}:{lineno}({func})"))
    rows.sort(reverse=True)
    by_cum = sorted(rows, key=lambda x: x[1], reverse=True)
    fmt = [
        {
            "function": name,
            "ncalls": nc,
            "tottime_s": round(tt, 3),
            "cumtime_s": round(ct, 3),
            "tottime_share": round(tt / total, 3),
        }
        for tt, ct, nc, name in rows[:top]
    ]
    fmt_cum = [
        {
            "function": name,
            "ncalls": nc,
            "cumtime_s": round(ct, 3),
            "cum_share": round(ct / total, 3),
        }
        for tt, ct, nc, name in by_cum[:top]
    ]
    return {
        "lines": len(lines),
        "profiled_total_s": round(total, 3),
        "top_tottime": fmt,
        "top_cumtime": fmt_cum,
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python"):
        i = file.find(marker)
        if i >= 0:
            return (
                file[i + len(marker) :] if marker != "/lib/python" else "stdlib:" + Path(file).name
            )
    return file


# --- phase 4: memory per open case -----------------------------------------------------------


def _case_messages(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """n (case-opened, note) pairs with realistic content, as raw message bytes."""
    rng = random.Random(seed)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    out = []
    for i in range(n):
        case_id = f"CS-{i + 1:08d}"
        t = start + i * 1500
        opened = event_doc(
            "case-opened",
            case_id,
            rfc3339_ms(t),
            random_event_id(rng),
            priority=rng.choices((1, 2, 3), (0.10, 0.35, 0.55))[0],
            plan="support-plus",
            reported_at=rfc3339_ms(t - rng.randrange(60_000, 1_800_000)),
            customer_id=make_customer(rng),
            subject=make_subject(rng),
        )
        note_id = random_event_id(rng)  # drawn before the note's time, as it always was
        note = event_doc(
            "case-noted",
            case_id,
            rfc3339_ms(t + rng.randrange(60_000, 3_600_000)),
            note_id,
            author="support",
            visibility="public",
        )
        out.append((orjson.dumps(opened), orjson.dumps(note)))
    return out


def _build_cases(
    msgs: list[tuple[bytes, bytes]], policy: Policy, with_index: bool
) -> tuple[int, dict[str, CaseState]]:
    """tracemalloc delta of building the cases (the raw message bytes are allocated before)."""
    engine = Engine(policy)
    states: dict[str, CaseState] = {}
    index = DeadlineIndex()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for raw_open, raw_note in msgs:
        for raw in (raw_open, raw_note):
            ev = decode_event(raw, policy)
            now = to_us(ev.occurred_at)  # Replayer.feed passes its clock (an int per case)
            state, _ = engine.apply(states.get(ev.case_id), ev, now)
            states[ev.case_id] = state  # as Replayer.feed: the first event's case_id is the key
            if with_index:
                index.schedule(ev.case_id, engine.next_due(state))
    del ev, state, now
    gc.collect()
    delta = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    if with_index:
        assert len(index) == len(states)
    return delta, states


def _field_breakdown(states: list[CaseState]) -> dict[str, float]:
    """Mean bytes per case by CaseState field (deep getsizeof, shared objects counted once).

    pydantic-core caches short strings while parsing JSON, so repeated customer ids and
    subjects are often one shared object; they are counted once here, as in tracemalloc.
    """
    seen: set[int] = set()
    per: Counter[str] = Counter()
    for s in states:
        per["CaseState object (__slots__)"] += _deep_size((s,), seen)
        for name in CaseState.__slots__:
            v = getattr(s, name)
            if isinstance(v, list):
                objs: list[Any] = [v]
                for p in v:
                    objs.append(p)
                    objs.extend(p)
                per[f"{name} (list, tuples, ints)"] += _deep_size(objs, seen)
            else:
                per[name] += _deep_size((v,), seen)
    n = max(1, len(states))
    out = {k: round(v / n, 1) for k, v in sorted(per.items(), key=lambda x: -x[1]) if v}
    out["total (excl. dict and index entries)"] = round(sum(per.values()) / n, 1)
    return out


def _memory(n: int, seed: int, policy: Policy) -> dict[str, Any]:
    msgs = _case_messages(n, seed)
    states_only, _ = _build_cases(msgs, policy, with_index=False)
    gc.collect()
    total, states = _build_cases(msgs, policy, with_index=True)
    breakdown = _field_breakdown(list(states.values()))
    return {
        "cases": n,
        "content": "case-opened (priority, plan, reported_at, customer_id, subject) + one public "
        "support note, applied with Engine.apply; dict entry keyed by case_id; DeadlineIndex "
        "scheduled after each event as Replayer.feed does",
        "method": "tracemalloc current-memory delta / N (Python-allocated memory only; "
        "raw message bytes allocated before the baseline; decoded events freed)",
        "bytes_per_case_state_and_dict": round(states_only / n, 1),
        "bytes_per_case_index": round((total - states_only) / n, 1),
        "bytes_per_open_case": round(total / n, 1),
        "getsizeof_walk_per_case": breakdown,
        "serialized": _serialized_sizes(list(states.values())),
    }


# --- main ------------------------------------------------------------------------------------


def _business_hours(path: Path, rounds: int) -> dict[str, Any]:
    """Replay one history under the 24x7 and the business-hours policy, alternately."""
    policies = {
        "24x7": policy_from_toml(POLICY_24X7, "<bench 24x7>"),
        "business_hours": policy_from_toml(POLICY_BUSINESS_HOURS, "<bench business hours>"),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in policies}
    for i in range(rounds):
        for name, policy in policies.items():
            print(f"  round {i + 1}/{rounds}: {name} ...", file=sys.stderr)
            rep, r = _replay(path, policy)
            del r
            gc.collect()
            runs[name].append(rep)
    best = {name: max(reps, key=lambda x: x["events_per_s_wall"]) for name, reps in runs.items()}
    eps = {name: b["events_per_s_wall"] for name, b in best.items()}
    slowdown = 1 - eps["business_hours"] / eps["24x7"]
    return {
        "rounds": rounds,
        "policies": {"24x7": POLICY_24X7, "business_hours": POLICY_BUSINESS_HOURS},
        "events_per_s_wall_by_round": {
            name: [x["events_per_s_wall"] for x in reps] for name, reps in runs.items()
        },
        "best": best,
        "slowdown": round(slowdown, 4),
        "target": {
            "max_slowdown": BUSINESS_HOURS_MAX_SLOWDOWN,
            "measured": round(slowdown, 4),
            "met": slowdown <= BUSINESS_HOURS_MAX_SLOWDOWN,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=400.0, help="case arrivals per hour")
    p.add_argument("--history", type=Path, help="events file: reused if it exists, else written")
    p.add_argument("--cases", type=int, default=200_000, help="open cases for the memory phase")
    p.add_argument("--profile", type=int, default=200_000, help="lines to profile (0: skip)")
    p.add_argument(
        "--no-breakdown",
        dest="breakdown",
        action="store_false",
        help="skip the instrumented per-component timing pass",
    )
    p.add_argument("--top", type=int, default=20, help="profile rows to keep")
    add_run_arguments(p)
    p.add_argument(
        "--business-hours",
        action="store_true",
        help="compare 24x7 with a business-hours policy on one history (only that)",
    )
    p.add_argument("--rounds", type=int, default=3, help="--business-hours: alternating rounds")
    p.add_argument("--pauses", action="store_true", help="generate pauses and reopened cases")
    args = p.parse_args(argv)

    started = datetime.now(UTC)
    pinning = pin_to_one_core(args.no_pin)
    policy = load_policy()
    result: dict[str, Any] = {
        **result_header(
            "caseclock replay (decode_event + Replayer.feed + finish) and memory/case", started
        ),
        "pinning": pinning,
        "gc": "default (enabled, thresholds " + str(gc.get_threshold()) + ")",
        "parameters": {
            "events": args.events,
            "seed": args.seed,
            "rate_cases_per_hour": args.rate,
            "start": "2026-01-01T00:00:00Z",
            "memory_cases": args.cases,
            "profile_lines": args.profile,
            "policy": "built-in support-plus",
            "pauses": args.pauses,
        },
    }

    tmp = None
    if args.history is not None and args.history.exists():
        path = args.history
        result["history"] = {"reused": str(path)}
    else:
        if args.history is None:
            tmp = tempfile.TemporaryDirectory(prefix="caseclock-bench-")
            path = Path(tmp.name) / "history.jsonl"
        else:
            path = args.history
        print(f"generating {args.events} events -> {path}", file=sys.stderr)
        result["history"] = _generate(path, args.events, args.seed, args.rate, args.pauses)
    result["history"]["bytes"] = path.stat().st_size

    if args.business_hours:
        result["benchmark"] = "caseclock replay: 24x7 against business hours, one history"
        result["parameters"]["policy"] = "POLICY_24X7 and POLICY_BUSINESS_HOURS (replay_bench)"
        try:
            print("replay: 24x7 and business hours ...", file=sys.stderr)
            result["business_hours"] = _business_hours(path, args.rounds)
        finally:
            if tmp is not None:
                tmp.cleanup()
        result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_result(result, "replay-business-hours", started, args)
        summary = {k: result["business_hours"][k] for k in ("events_per_s_wall_by_round", "target")}
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
        return 0

    try:
        print("replay (timed) ...", file=sys.stderr)
        rep, r = _replay(path, policy)
        open_states = [
            s for s in r.states.values() if s.opened_at is not None and s.resolved_at is None
        ]
        rep["serialized_open_states_at_end"] = _serialized_sizes(open_states)
        rep["memory_at_end"] = _replay_memory(r)
        result["replay"] = rep
        del r, open_states
        gc.collect()
        print(orjson.dumps(rep, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)

        if args.breakdown:
            print("breakdown (instrumented replay) ...", file=sys.stderr)
            result["breakdown"] = _breakdown(path, policy)
            gc.collect()
        if args.profile > 0:
            print(f"profile ({args.profile} lines) ...", file=sys.stderr)
            result["profile"] = _profile(path, policy, args.profile, args.top)
            gc.collect()
    finally:
        if tmp is not None:
            tmp.cleanup()

    print(f"memory ({args.cases} open cases) ...", file=sys.stderr)
    result["memory"] = _memory(args.cases, args.seed, policy)

    eps = result["replay"]["events_per_s_wall"]
    bpc = result["memory"]["bytes_per_open_case"]
    result["targets"] = {
        "events_per_s": {
            "target": TARGET_EVENTS_PER_S,
            "measured": eps,
            "met": eps >= TARGET_EVENTS_PER_S,
        },
        "bytes_per_open_case": {
            "target": f"< {TARGET_BYTES_PER_CASE}",
            "measured": bpc,
            "met": bpc < TARGET_BYTES_PER_CASE,
        },
    }
    est = result["replay"]["memory_at_end"]["open_case_bytes_estimate"]
    if est is not None:
        result["targets"]["bytes_per_open_case_replay_end_estimate"] = {
            "target": f"< {TARGET_BYTES_PER_CASE}",
            "measured": est,
            "met": est < TARGET_BYTES_PER_CASE,
            "note": "getsizeof walk of the open cases left by the replay (realistic event "
            "counts per case), plus their dict and index entries",
        }
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")

    write_result(result, "replay", started, args, latest="latest.json")
    print(orjson.dumps(result["targets"], option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
