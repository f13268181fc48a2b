#!/usr/bin/env python3
"""Render the caseclock Grafana dashboard from a live Prometheus into one PNG, without Grafana.

    python deploy/grafana/render_dashboard.py --prometheus http://127.0.0.1:9090 \\
        --start now-30m --end now [--step 15s] [--scrape-interval 15s] \\
        [--dashboard deploy/grafana/dashboards/caseclock.json] [--out deploy/grafana/dashboard.png]

Every panel of the dashboard is drawn where its ``gridPos`` puts it (rows become section
headers), with the panel's title, unit, legend format, stacking, thresholds and value mappings:

* time series panels: every target through ``/api/v1/query_range``, one line per series,
  labelled by the target's ``legendFormat`` (``{{label}}`` substituted);
* stat panels: the last non-null value of each series (Grafana's ``lastNotNull``), coloured by
  the panel's thresholds.

Grafana's built-in variables are substituted as Grafana would: ``$__range`` = end - start,
``$__interval`` = step, ``$__rate_interval`` = max(step + scrape interval, 4 x scrape interval)
(pass the scrape interval of the Prometheus being queried). Start and end accept unix seconds,
RFC 3339 timestamps, ``now`` and ``now-<duration>`` (``now-15m``).

Needs only matplotlib and the standard library; the end-to-end test
(tests/integration/test_observability_e2e.py) runs it against the Prometheus it scraped a real
worker with, and produced the checked-in ``deploy/grafana/dashboard.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dashboard_model import (  # a sibling file: this runs as a script, not from a package
    DEFAULT_DASHBOARD,
    HERE,
    grafana_variables,
    iter_panels,
    load_dashboard,
    query_targets,
    substitute_grafana_variables,
)

DEFAULT_OUT = HERE / "dashboard.png"

# Grafana's dark theme and its "classic" palette.
BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e9a"
PALETTE = (
    "#7EB26D",
    "#EAB839",
    "#6ED0E0",
    "#EF843C",
    "#E24D42",
    "#1F78C1",
    "#BA43A9",
    "#705DA0",
    "#508642",
    "#CCA300",
    "#447EBC",
    "#C15C17",
    "#890F02",
    "#0A437C",
    "#6D1F62",
    "#584477",
)
NAMED_COLORS = {
    "green": "#73BF69",
    "red": "#F2495C",
    "orange": "#FF9830",
    "yellow": "#FADE2A",
    "blue": "#5794F2",
    "purple": "#B877D9",
    "text": TEXT,
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# --------------------------------------------------------------------------- time and units


def parse_duration(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"1h30m"`` or a plain number of seconds -> seconds."""
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15s, 5m, 1h30m)")
    return total


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds, RFC 3339, ``now`` or ``now-<duration>`` -> unix seconds."""
    now = time.time() if now is None else now
    s = text.strip()
    if s == "now":
        return now
    if s.startswith("now-"):
        return now - parse_duration(s[4:])
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r}") from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(f"naive time {text!r}: add a UTC offset")
    return dt.timestamp()


def _trim(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:.{decimals}f}"
    if value == 0:
        return "0"
    mag = abs(value)
    digits = 0 if mag >= 100 else 1 if mag >= 10 else 2 if mag >= 1 else 3
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(value: float, unit: str, decimals: int | None = None) -> str:
    """Format a value the way Grafana's units ``short``, ``s``, ``percentunit``, ``ops`` do."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "percentunit":
        return f"{_trim(value * 100, decimals)}%"
    if unit == "s":
        mag = abs(value)
        if mag == 0:
            return "0 s"
        if mag < 1:
            return f"{_trim(value * 1000, decimals)} ms"
        if mag < 60:
            return f"{_trim(value, decimals)} s"
        if mag < 3600:
            return f"{_trim(value / 60, decimals)} min"
        if mag < 86400:
            return f"{_trim(value / 3600, decimals)} hour"
        return f"{_trim(value / 86400, decimals)} day"
    suffix = " ops/s" if unit == "ops" else ""
    mag = abs(value)
    for factor, letter in ((1e9, " Bil"), (1e6, " Mil"), (1e3, " K")):
        if mag >= factor:
            return f"{_trim(value / factor, decimals)}{letter}{suffix}"
    return f"{_trim(value, decimals)}{suffix}"


# --------------------------------------------------------------------------- Prometheus


@dataclass
class Series:
    labels: dict[str, str]
    times: list[float]
    values: list[float]
    legend: str = ""
    ref: str = ""


@dataclass
class PanelData:
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def legend_text(fmt: str, labels: Mapping[str, str]) -> str:
    if fmt:
        return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


def query_range(
    prometheus: str, expr: str, start: float, end: float, step: float, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """One ``/api/v1/query_range`` call; returns ``data.result`` (raises on an error)."""
    params = urllib.parse.urlencode(
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    )
    url = f"{prometheus.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = json.loads(e.read() or b"{}")
        raise RuntimeError(body.get("error") or f"HTTP {e.code}") from None
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", "query failed"))
    result = body["data"]["result"]
    assert isinstance(result, list)
    return result


def fetch_panel(
    prometheus: str,
    panel: Mapping[str, Any],
    start: float,
    end: float,
    step: float,
    variables: Mapping[str, str],
) -> PanelData:
    data = PanelData()
    for target in query_targets(panel):
        if target.get("hide"):
            continue
        expr = substitute_grafana_variables(str(target["expr"]), variables)
        try:
            result = query_range(prometheus, expr, start, end, step)
        except (RuntimeError, ValueError, OSError) as e:
            data.errors.append(f"{target.get('refId', '?')}: {e}")
            continue
        for item in result:
            labels = dict(item.get("metric", {}))
            pairs = item.get("values", [])
            data.series.append(
                Series(
                    labels=labels,
                    times=[float(t) for t, _ in pairs],
                    values=[float(v) for _, v in pairs],
                    legend=legend_text(target.get("legendFormat", ""), labels),
                    ref=str(target.get("refId", "")),
                )
            )
    return data


# --------------------------------------------------------------------------- drawing


def _threshold_color(value: float, defaults: Mapping[str, Any]) -> str:
    steps = defaults.get("thresholds", {}).get("steps") or [{"color": "green", "value": None}]
    color = str(steps[0].get("color", "green"))
    for step in steps:
        limit = step.get("value")
        if limit is None or (not math.isnan(value) and value >= float(limit)):
            color = str(step.get("color", color))
    return NAMED_COLORS.get(color, color)


def _mapped(value: float, defaults: Mapping[str, Any]) -> tuple[str, str] | None:
    for mapping in defaults.get("mappings", []):
        if mapping.get("type") != "value":
            continue
        for key, opt in mapping.get("options", {}).items():
            try:
                hit = not math.isnan(value) and float(key) == value
            except ValueError:
                hit = False
            if hit:
                color = str(opt.get("color") or "")
                return str(opt.get("text", key)), NAMED_COLORS.get(color, color)
    return None


def _last_not_null(values: Sequence[float]) -> float:
    for v in reversed(values):
        if not math.isnan(v):
            return v
    return math.nan


# Layout, in inches (Grafana's grid is 24 columns wide; a grid row is ~30 px high).
FIG_WIDTH = 20.0
UNIT_W = FIG_WIDTH / 24
UNIT_H = 0.4
HEADER = 0.8  # the dashboard title above the grid
GAP = 0.05  # between panels
LEGEND_ROW = 0.19
_NICE = (1, 2, 2.5, 5, 10)


@dataclass
class Card:
    """A panel's rectangle in inches from the figure's bottom-left corner."""

    left: float
    bottom: float
    width: float
    height: float


class Canvas:
    def __init__(self, fig: Any, height: float) -> None:
        self.fig = fig
        self.height = height

    def card(self, grid: Mapping[str, int]) -> Card:
        top = self.height - HEADER - grid["y"] * UNIT_H
        return Card(
            grid["x"] * UNIT_W + GAP,
            top - grid["h"] * UNIT_H + GAP,
            grid["w"] * UNIT_W - 2 * GAP,
            grid["h"] * UNIT_H - 2 * GAP,
        )

    def fx(self, inches: float) -> float:
        return inches / FIG_WIDTH

    def fy(self, inches: float) -> float:
        return inches / self.height

    def text(self, x: float, y: float, text: str, **kw: Any) -> None:
        self.fig.text(self.fx(x), self.fy(y), text, **kw)

    def frame(self, card: Card, title: str) -> None:
        from matplotlib.patches import Rectangle

        self.fig.add_artist(
            Rectangle(
                (self.fx(card.left), self.fy(card.bottom)),
                self.fx(card.width),
                self.fy(card.height),
                transform=self.fig.transFigure,
                facecolor=PANEL,
                edgecolor=BORDER,
                linewidth=1,
                zorder=-10,  # under the axes drawn into the card
            )
        )
        self.text(
            card.left + 0.12,
            card.bottom + card.height - 0.2,
            title,
            color=TEXT,
            fontsize=10,
            fontweight="bold",
            va="center",
        )

    def axes(self, left: float, bottom: float, width: float, height: float) -> Any:
        return self.fig.add_axes((self.fx(left), self.fy(bottom), self.fx(width), self.fy(height)))


def draw_stat(canvas: Canvas, card: Card, panel: Mapping[str, Any], data: PanelData) -> None:
    canvas.frame(card, str(panel.get("title", "")))
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = str(defaults.get("unit", "short"))
    decimals = defaults.get("decimals")
    middle = card.bottom + (card.height - 0.35) / 2
    if data.errors or not data.series:
        canvas.text(
            card.left + card.width / 2,
            middle,
            "; ".join(data.errors) or "No data",
            color="#F2495C" if data.errors else MUTED,
            ha="center",
            va="center",
            fontsize=9,
            wrap=True,
        )
        return
    series = sorted(data.series, key=lambda s: (s.ref, s.legend))
    n = len(series)
    for i, s in enumerate(series):
        value = _last_not_null(s.values)
        mapped = _mapped(value, defaults)
        text = mapped[0] if mapped else format_value(value, unit, decimals)
        color = (mapped[1] if mapped and mapped[1] else "") or _threshold_color(value, defaults)
        x = card.left + card.width * (i + 0.5) / n
        canvas.text(
            x,
            middle + (0.15 if n > 1 else 0),
            text,
            color=color,
            ha="center",
            va="center",
            fontsize=26 if n == 1 else 22,
            fontweight="bold",
        )
        if n > 1:
            canvas.text(x, middle - 0.4, s.legend, color=TEXT, ha="center", va="center")


def _y_ticks(top: float, unit: str) -> list[float]:
    """Round tick values from 0 to about ``top`` (durations in round s / min / h / days)."""
    from matplotlib.ticker import MaxNLocator

    scale = 1.0
    if unit == "s":
        for factor in (86400.0, 3600.0, 60.0):
            if top >= 2 * factor:
                scale = factor
                break
    locator = MaxNLocator(nbins=5, steps=list(_NICE))
    ticks = [float(t) * scale for t in locator.tick_values(0, top / scale)]
    return [t for t in ticks if t >= 0]


def draw_timeseries(
    canvas: Canvas,
    card: Card,
    panel: Mapping[str, Any],
    data: PanelData,
    start: float,
    end: float,
) -> None:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    canvas.frame(card, str(panel.get("title", "")))
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    unit = str(defaults.get("unit", "short"))
    stacked = custom.get("stacking", {}).get("mode", "none") == "normal"
    fill = float(custom.get("fillOpacity", 0)) / 100.0
    width = float(custom.get("lineWidth", 1)) * 1.3

    series = sorted(data.series, key=lambda s: (s.ref, s.legend))
    labels = [s.legend or " " for s in series]
    plot_left = card.left + 0.9
    plot_width = card.width - 0.9 - 0.2
    entry = 0.45 + 0.062 * max((len(label) for label in labels), default=1)
    ncol = max(1, min(len(labels), int(plot_width // entry)))
    rows = -(-len(labels) // ncol) if labels else 0
    legend_height = rows * LEGEND_ROW + (0.08 if rows else 0)
    plot_bottom = card.bottom + 0.3 + legend_height
    ax = canvas.axes(
        plot_left, plot_bottom, plot_width, card.bottom + card.height - 0.42 - plot_bottom
    )
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=8, length=0, pad=4)
    ax.grid(True, color=BORDER, linewidth=0.7)
    ax.set_axisbelow(True)
    ax.set_xlim(start, end)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(
        lambda v, _pos: datetime.fromtimestamp(float(v), UTC).strftime("%H:%M:%S")
    )
    ax.yaxis.set_major_formatter(lambda v, _pos: format_value(float(v), unit))
    if data.errors:
        ax.text(
            0.5,
            0.5,
            "\n".join(data.errors),
            color="#F2495C",
            ha="center",
            va="center",
            fontsize=8,
            transform=ax.transAxes,
            wrap=True,
        )
    if not series:
        if not data.errors:
            ax.text(
                0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes
            )
        ax.set_yticks([])
        return
    grid = sorted({t for s in series for t in s.times})
    xs = np.array(grid, dtype=float)
    base = np.zeros(len(grid))
    top = 0.0
    bottom = math.inf
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        by_time = dict(zip(s.times, s.values, strict=True))
        ys = np.array([by_time.get(t, math.nan) for t in grid], dtype=float)
        lower = base.copy()
        if stacked:
            ys = np.where(np.isnan(ys), np.nan, ys + base)
            base = np.where(np.isnan(ys), base, ys)
        ax.plot(xs, ys, color=color, linewidth=width, label=labels[i])
        if fill > 0:
            ax.fill_between(
                xs,
                lower if stacked else 0,
                ys,
                color=color,
                alpha=fill,
                linewidth=0,
                where=~np.isnan(ys),
            )
        finite = ys[np.isfinite(ys)]
        if finite.size:
            top = max(top, float(finite.max()))
            bottom = min(bottom, float(finite.min()))
    if defaults.get("min") is not None:
        floor = float(defaults["min"])
        ticks = _y_ticks(top if top > floor else 1.0, unit)
        ax.set_yticks(ticks)
        ax.set_ylim(floor, max(ticks[-1], top * 1.05))
    elif math.isfinite(bottom) and bottom == top:
        ax.set_ylim(bottom - 0.5 * (abs(bottom) or 1), top + 0.5 * (abs(top) or 1))
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(plot_left - 0.05, card.bottom + 0.08 + legend_height),
        bbox_transform=canvas.fig.dpi_scale_trans,
        ncol=ncol,
        frameon=False,
        fontsize=8,
        labelcolor=TEXT,
        handlelength=1.0,
        handletextpad=0.4,
        columnspacing=1.0,
        borderaxespad=0,
        borderpad=0,
        labelspacing=0.35,
    )
    for line in legend.get_lines():
        line.set_linewidth(3)


def render(
    prometheus: str,
    start: float,
    end: float,
    out: Path,
    *,
    dashboard_path: Path = DEFAULT_DASHBOARD,
    step: float | None = None,
    scrape_interval: float = 15.0,
    dpi: int = 80,
) -> Path:
    """Query every panel of the dashboard and write the PNG grid to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if end <= start:
        raise ValueError("end must be after start")
    dashboard = load_dashboard(dashboard_path)
    span = end - start
    step = step or max(1.0, round(span / 240))
    variables = grafana_variables(span, step, scrape_interval)
    panels = [p for p in iter_panels(dashboard.get("panels", [])) if "gridPos" in p]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    height = HEADER + rows * UNIT_H + 0.1
    fig = plt.figure(figsize=(FIG_WIDTH, height), dpi=dpi, facecolor=BACKGROUND)
    canvas = Canvas(fig, height)
    canvas.text(
        0.12,
        height - HEADER / 2,
        str(dashboard.get("title", "")),
        color=TEXT,
        fontsize=16,
        fontweight="bold",
        va="center",
    )
    canvas.text(
        FIG_WIDTH - 0.12,
        height - HEADER / 2,
        f"{datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M:%S} to "
        f"{datetime.fromtimestamp(end, UTC):%H:%M:%S} UTC    step {variables['__interval']}    "
        f"$__rate_interval {variables['__rate_interval']}    {prometheus}",
        color=MUTED,
        fontsize=10,
        ha="right",
        va="center",
    )
    for panel in panels:
        card = canvas.card(panel["gridPos"])
        if panel.get("type") == "row":
            canvas.text(
                card.left + 0.05,
                card.bottom + card.height / 2,
                str(panel.get("title", "")),
                color=TEXT,
                fontsize=13,
                fontweight="bold",
                va="center",
            )
            continue
        data = fetch_panel(prometheus, panel, start, end, step, variables)
        if panel.get("type") == "stat":
            draw_stat(canvas, card, panel, data)
        else:
            draw_timeseries(canvas, card, panel, data, start, end)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, facecolor=BACKGROUND, dpi=dpi)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    p.add_argument("--start", default="now-1h", help="unix s, RFC 3339 or now-<dur> (now-1h)")
    p.add_argument("--end", default="now", help="unix s, RFC 3339 or now (default now)")
    p.add_argument("--step", type=parse_duration, help="query step (default: range / 240)")
    p.add_argument(
        "--scrape-interval",
        type=parse_duration,
        default=15.0,
        help="scrape interval of the queried Prometheus, for $__rate_interval (default 15s)",
    )
    p.add_argument("--dashboard", type=Path, default=DEFAULT_DASHBOARD, help="dashboard JSON")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    p.add_argument("--dpi", type=int, default=80)
    args = p.parse_args(argv)
    now = time.time()
    try:
        start, end = parse_time(args.start, now), parse_time(args.end, now)
        out = render(
            args.prometheus,
            start,
            end,
            args.out,
            dashboard_path=args.dashboard,
            step=args.step,
            scrape_interval=args.scrape_interval,
            dpi=args.dpi,
        )
    except (argparse.ArgumentTypeError, ValueError, OSError) as e:
        print(f"render_dashboard: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
