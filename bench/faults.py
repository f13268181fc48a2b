"""Run the fault suite (tests/integration/faults) and keep its figures with the machine's.

    .venv/bin/python bench/faults.py                 # what CI runs, about six minutes here
    .venv/bin/python bench/faults.py --scale 10      # 200,000-event case, 30 kills, ...
    .venv/bin/python bench/faults.py -- -k churn     # after --: more pytest arguments
    .venv/bin/python bench/faults.py --repeat 10 --scale 1.25 --label kill-then-move \
        -- -k kill_then_move                         # ten consecutive runs, ten kills each

Runs pytest on tests/integration/faults with CASECLOCK_FAULT_REPORT pointing at a fresh
bench/results/faults-latest.json, into which every scenario writes its figures (alerts
expected and delivered, repeats, catch-ups, lateness, time to serve again, watchdog restarts;
see tests/integration/faults/figures.py), passed or failed. Then adds, under "run": the
command, start time, commit, Python, the machine (bench/common.py's description), the
Kafka version, pytest's exit status and the wall time; and copies the file to
faults-<UTC date>.json. The exit status is pytest's.

With --repeat N the same pytest run is made N times in a row, and every run's figures go,
in order, into faults-<label>-runs.json (with the run details once, and how many passed);
the exit status is the first failing run's, or 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from common import (  # noqa: E402 - a sibling script, not a package
    command_line,
    git_commit,
    machine_description,
    python_version,
)


def kafka_version() -> str:
    """The broker the suite runs on: local-kafka.sh's version, unless a broker was given."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        return f"external ({os.environ['KAFKA_BOOTSTRAP_SERVERS']})"
    if os.environ.get("KAFKA_VERSION", "").strip():
        return os.environ["KAFKA_VERSION"].strip()
    script = (REPO / "deploy" / "kafka" / "local-kafka.sh").read_text()
    found = re.search(r'^KAFKA_VERSION="\$\{KAFKA_VERSION:-([^}]+)\}"', script, re.M)
    return found.group(1) if found else "unknown"


def run_once(args: argparse.Namespace, report: Path) -> dict[str, Any]:
    """One pytest run of the suite (or the part the pytest arguments select), its figures
    and the details of the run."""
    started = datetime.now(UTC)
    report.unlink(missing_ok=True)
    env = dict(
        os.environ, CASECLOCK_FAULT_REPORT=str(report), CASECLOCK_FAULT_SCALE=str(args.scale)
    )
    command = [sys.executable, "-m", "pytest", "tests/integration/faults", "-s", *args.pytest_args]
    t0 = time.monotonic()
    status = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    wall = time.monotonic() - t0
    data: dict[str, Any] = orjson.loads(report.read_bytes()) if report.exists() else {}
    data["run"] = {
        "command": command_line(),
        "pytest": " ".join(command[1:]),
        "started_at": started.isoformat(timespec="seconds"),
        "caseclock_commit": git_commit(),
        "python": python_version(),
        "machine": machine_description(),
        "kafka_version": kafka_version(),
        "scale": args.scale,
        "pytest_exit_status": status,
        "wall_s": round(wall, 1),
    }
    return data


def write_json(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="CASECLOCK_FAULT_SCALE (default 1)")
    p.add_argument("--results", type=Path, default=BENCH / "results", help="output directory")
    p.add_argument("--repeat", type=int, default=1, help="consecutive runs (default 1)")
    p.add_argument("--label", default="repeat", help="with --repeat: faults-<label>-runs.json")
    p.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = p.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    report = args.results / "faults-latest.json"
    if args.repeat > 1:  # faults-latest.json stays the last whole-suite run's
        return repeat(args, args.results / f".faults-{args.label}-run.json")
    data = run_once(args, report)
    status = int(data["run"]["pytest_exit_status"])
    write_json(report, data)
    started = datetime.fromisoformat(data["run"]["started_at"])
    shutil.copyfile(report, args.results / f"faults-{started:%Y-%m-%d}.json")
    for name, figures in sorted(data.items()):
        if name != "run":
            print(
                f"{name}: {figures.get('outcome')} in {figures.get('runtime_s')} s", file=sys.stderr
            )
    print(
        f"figures: {report} (pytest exit status {status}, {data['run']['wall_s']:.0f} s)",
        file=sys.stderr,
    )
    return status


def repeat(args: argparse.Namespace, report: Path) -> int:
    out = args.results / f"faults-{args.label}-runs.json"
    runs: list[dict[str, Any]] = []
    first_failure = 0
    for i in range(args.repeat):
        data = run_once(args, report)
        report.unlink(missing_ok=True)
        status = int(data["run"]["pytest_exit_status"])
        first_failure = first_failure or status
        runs.append(data)
        passed = sum(1 for r in runs if r["run"]["pytest_exit_status"] == 0)
        write_json(out, {"runs": runs, "passed": passed, "of": len(runs), "planned": args.repeat})
        print(f"run {i + 1}/{args.repeat}: exit {status}; {passed} passed so far", file=sys.stderr)
    print(f"figures: {out}", file=sys.stderr)
    return first_failure


if __name__ == "__main__":
    sys.exit(main())
