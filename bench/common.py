"""What every benchmark records about where and how it ran, in one place.

The replay, calendar, live and fault benchmarks each write a JSON result; a figure is only
comparable with another when both say which commit, interpreter, machine and pinning they
were measured with, in the same words. So the helpers that find those out, and the header
that carries them (`result_header`), live here and nowhere else.

A sibling script, not a package module: the benchmarks run as ``python bench/<name>.py``, so
this directory is on ``sys.path`` and they import it as ``common``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def git(*args: str) -> str | None:
    """The stripped output of a git command in the checkout (None when git fails)."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """The short commit of the checkout (None outside git)."""
    return git("rev-parse", "--short", "HEAD") or None


def tree_dirty() -> bool | None:
    """Whether tracked files differ from the commit (None outside git): a result measured on
    a dirty tree does not belong to `git_commit()` alone."""
    status = git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_kib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def rss_kib(pid: int | str = "self", field: str = "VmRSS") -> int | None:
    """Resident memory of a process in KiB (VmRSS, or VmHWM for its peak); None when
    unreadable (the process is gone, or this is not Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def machine_description() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_kib": _mem_total_kib(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def pin_to_one_core(no_pin: bool) -> dict[str, Any]:
    """Run on one core: keep an affinity set by taskset, else set it to CPU 0 in-process.

    Single-core figures are what the targets are stated in, and on a shared 2-core machine
    they are also the only ones that repeat."""
    if not hasattr(os, "sched_getaffinity"):
        return {"pinned": False, "how": "unsupported on this platform", "cpus": None}
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) == 1:
        return {"pinned": True, "how": "affinity set before start (taskset -c)", "cpus": cpus}
    if no_pin:
        return {"pinned": False, "how": "--no-pin", "cpus": cpus}
    os.sched_setaffinity(0, {cpus[0]})
    return {
        "pinned": True,
        "how": f"os.sched_setaffinity(0, {{{cpus[0]}}}) in-process (same effect as taskset -c)",
        "cpus": sorted(os.sched_getaffinity(0)),
        "taskset_available": shutil.which("taskset") is not None,
    }


def command_line() -> str:
    """The command this process was started with, as typed (to run the benchmark again)."""
    return " ".join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))


def python_version() -> str:
    return sys.version.replace("\n", " ")


def result_header(benchmark: str, started: datetime) -> dict[str, Any]:
    """The first keys of every benchmark result, in this order: what was measured, when, with
    which command, on which commit, interpreter and machine."""
    return {
        "benchmark": benchmark,
        "started_at": started.isoformat(timespec="seconds"),
        "command": command_line(),
        "caseclock_commit": git_commit(),
        "python": python_version(),
        "python_implementation": platform.python_implementation(),
        "machine": machine_description(),
    }


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options every single-core benchmark takes: pinning, and where its result goes."""
    p.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    p.add_argument("--results", type=Path, default=BENCH / "results", help="output directory")
    p.add_argument("--no-write", action="store_true", help="print results, write no files")


def write_result(
    result: dict[str, Any],
    stem: str,
    started: datetime,
    args: argparse.Namespace,
    *,
    latest: str | None = None,
) -> None:
    """Write `result` to ``<--results>/<stem>-<UTC date>.json`` (and a copy to `latest`, when
    named), or print it with --no-write; the options are those of `add_run_arguments`."""
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n"
    if args.no_write:
        print(text)
        return
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    dated = results / f"{stem}-{started.date().isoformat()}.json"
    dated.write_text(text)
    if latest is None:
        print(f"wrote {dated}", file=sys.stderr)
    else:
        (results / latest).write_text(text)
        print(f"wrote {dated} and {results / latest}", file=sys.stderr)
