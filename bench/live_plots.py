"""Plots of a bench/live_bench.py result: lateness against open cases, throughput against the
raw ceiling. PNG files next to the JSON (matplotlib, from the dev extras).

    .venv/bin/python bench/live_plots.py bench/results/live-latest.json   # redraw
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    load = result.get("load_start", ["?"])[0]
    return (
        f"caseclock {result.get('caseclock_commit')} · {m.get('nproc')} CPUs · "
        f"load {load} at start · {result.get('started_at', '')[:10]}"
    )


def _dress(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _save(plt: Any, fig: Any, result: dict[str, Any], path: Path) -> Path:
    fig.suptitle(_title(result), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_lateness(result: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    runs = result["lateness"]["runs"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    steady = sorted((r for r in runs if r["mode"] == "steady"), key=lambda r: r["open_cases"])
    floor = 1e-3  # log axes: show 0 as 1 ms
    for q, style in (("p50", "o-"), ("p99", "s-"), ("max", "^--")):
        xs = [r["open_cases"] for r in steady]
        ys = [max(floor, r["lateness_s"]["all"][q] or floor) for r in steady]
        left.plot(xs, ys, style, label=f"steady {q}")
    for r in runs:
        if r["mode"] != "burst":
            continue
        for q, marker in (("p50", "o"), ("p99", "s"), ("max", "^")):
            y = max(floor, r["lateness_s"]["all"][q] or floor)
            left.scatter(
                [r["open_cases"]], [y], marker=marker, s=70, facecolors="none", edgecolors="red"
            )
        left.annotate(
            f"burst of {r['due_cases']:,}\n(p50, p99, max)",
            (r["open_cases"], max(floor, r["lateness_s"]["all"]["max"] or floor)),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )
    target = result.get("targets_of_the_issue", {}).get("lateness_p99_s")
    if target:
        left.axhline(target, color="red", linestyle=":", label=f"target p99 {target * 1000:g} ms")
    left.set_xscale("log")
    left.set_yscale("log")
    _dress(
        left,
        "open cases",
        "alert lateness, fired_at - due_at (s)",
        "lateness against open cases (steady due rate; burst)",
    )
    for r in runs:
        rows = r["series"]["rows"]
        if not rows:
            continue
        right.plot(
            [row[0] for row in rows],
            [max(floor, row[3]) for row in rows],
            "o-" if r["mode"] == "burst" else "-",
            markersize=4,
            label=f"{r['name']} ({r['shape']['deadlines_per_s']:,.0f} due/s)",
        )
    right.set_yscale("log")
    _dress(
        right,
        "due_at, seconds after the first deadline",
        "p99 lateness of the alerts due in that second (s)",
        "lateness over the run",
    )
    return _save(plt, fig, result, path)


def plot_throughput(result: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    ing = result["ingest"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    labels, values, colors = [], [], []
    for r in ing["raw"]:
        per_cpu = r.get("events_per_cpu_s")
        cpu = f"\n{per_cpu:,.0f} per CPU-s" if per_cpu else ""
        labels.append(f"raw aiokafka\n{r.get('label', '')}{cpu}")
        values.append(r["events_per_s"] or 0)
        colors.append("grey")
    for store, w in ing["workers"].items():
        ratio = ing["ratio_to_raw"].get(store)
        per_cpu = w.get("events_per_worker_cpu_s")
        label = f"worker {store}"
        if ratio:
            label += f"\n({ratio:.3f} of raw)"
        if per_cpu:
            label += f"\n{per_cpu:,.0f} per CPU-s"
        labels.append(label)
        values.append(w["events_per_s"] or 0)
        colors.append("tab:blue")
    bars = left.bar(range(len(values)), values, color=colors)
    left.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    left.set_xticks(range(len(values)), labels, fontsize=8)
    target = result.get("targets_of_the_issue", {}).get("ingest_rocksdb_events_per_s")
    if target:
        left.axhline(target, color="red", linestyle=":", label=f"target {target:,} events/s")
        left.legend(fontsize=8)
    left.set_ylabel("events/s")
    left.set_title(f"ingest of {ing['events']:,} generated events, one worker")
    for (store, w), color in zip(ing["workers"].items(), ("tab:blue", "tab:green"), strict=False):
        if not w["samples"]:
            continue
        t0 = w["samples"][0][0]
        pts = [(t - t0, m) for t, m, _ in w["samples"] if m is not None]
        if pts:
            right.plot(*zip(*pts, strict=True), color=color, label=f"{store} (metric)")
        offs = [(t - t0, k) for t, _, k in w["samples"]]
        right.plot(
            *zip(*offs, strict=True), color=color, linestyle=":", label=f"{store} (committed)"
        )
    _dress(right, "seconds after ready", "events consumed", "consumption over time")
    return _save(plt, fig, result, path)


def plot_all(result: dict[str, Any], out_dir: Path) -> list[Path]:
    out = []
    if result.get("lateness", {}).get("runs"):
        out.append(plot_lateness(result, out_dir / "live-lateness.png"))
    if result.get("ingest"):
        out.append(plot_throughput(result, out_dir / "live-throughput.png"))
    return out


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/live-latest.json")
    for p in plot_all(orjson.loads(src.read_bytes()), src.parent):
        print(p)
