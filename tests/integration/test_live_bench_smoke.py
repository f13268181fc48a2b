"""bench/live_bench.py --smoke runs every part on the test broker and writes a coherent result.

Correctness only: every part ran, the result has its keys, and the counts add up (every event
produced was consumed, every alert replay predicts was read back once). No figure is compared
with a threshold: CI machines are shared and noisy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from caseclock.live.config import TABLE_STORES

REPO = Path(__file__).resolve().parents[2]


def test_live_bench_smoke(kafka_bootstrap: str, tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "bench" / "live_bench.py"), "--smoke"]
    cmd += ["--bootstrap", kafka_bootstrap, "--results", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    r: dict[str, Any] = orjson.loads((tmp_path / "live-latest.json").read_bytes())

    for key in ("machine", "caseclock_commit", "load_start", "load_end", "parameters", "targets"):
        assert key in r, key
    assert r["mode"] == "smoke"
    assert r["parts"] == ["ingest", "lateness", "recovery", "memory"]
    assert sorted(Path(p).name for p in r["plots"]) == ["live-lateness.png", "live-throughput.png"]
    assert all((tmp_path / Path(p).name).stat().st_size > 0 for p in r["plots"])

    ing = r["ingest"]
    n = ing["events"]
    assert n == r["parameters"]["ingest_events"]
    assert [raw["events"] for raw in ing["raw"]] == [n, n]
    for store in TABLE_STORES:
        w = ing["workers"][store]
        c = w["counts"]
        assert c["applied"] + c["duplicates"] == n, c
        assert c["dead_letters"] == 0, c
        assert c["committed"] == n, c
        assert w["consumed_all"] and not w["timed_out"], w
        assert w["events_per_s"] > 0 and ing["ratio_to_raw"][store] > 0

    runs = r["lateness"]["runs"]
    assert [(x["mode"], x["open_cases"]) for x in runs] == [("steady", 200), ("burst", 200)]
    for run in runs:
        a = run["alerts"]
        # each case: one acknowledgement warning and one breach, all read back once
        assert a["expected_by_replay"] == 2 * run["due_cases"], a
        assert a["read_back"] == a["matched"] == a["expected_by_replay"], a
        assert a["missing"] == a["spurious"] == a["repeats"] == 0, a
        assert run["warnings"]["never_sent"] == 0, run["warnings"]
        assert run["lateness_s"]["all"]["n"] == a["expected_by_replay"]
        assert run["lateness_s"]["all"]["p50"] >= 0
        assert run["load"]["events"] == run["due_cases"]
        assert sum(row[1] for row in run["series"]["rows"]) == a["read_back"]

    rec = r["recovery"]
    k = rec["cases"]
    assert rec["load"]["events"] == k * rec["load"]["events_per_case"]
    assert rec["open_cases_gauge_loaded"] == k
    assert rec["changelog"]["records"] >= k
    for label in ("kept", "kept_after_kill", "wiped"):
        assert rec[f"data_dir_{label}"]["ready_s"] > 0
        assert rec[f"data_dir_{label}"]["open_cases_gauge"] == k, rec
    # After a clean stop the index comes from the snapshots as they are; after a kill, from
    # the periodic snapshot taken before the notes, with the notes' cases read again.
    kept = {"rows_read": 0, "deadlines_from_index_snapshots": k, "read_again": 0}
    assert rec["data_dir_kept"]["rebuild"] == kept
    killed = rec["data_dir_kept_after_kill"]["rebuild"]
    changed = rec["before_kill"]["cases_changed_after_the_snapshot"]
    assert killed["rows_read"] == 0 and killed["deadlines_from_index_snapshots"] == k, rec
    assert changed <= killed["read_again"] < k, rec
    assert rec["data_dir_wiped"]["rebuild"]["rows_read"] == k, rec
    mem = r["memory"]
    assert mem["cases"] == k and mem["rss_bytes_per_open_case"] is not None
    assert [x["name"] for x in mem["lateness_runs"]] == ["steady-200", "burst-200"]
