"""The Grafana dashboard as data: its panels, their queries, and Grafana's variables.

One model for everything that reads ``dashboards/caseclock.json`` without Grafana: the renderer
(``render_dashboard.py``, which draws it from a live Prometheus) and the tests (which check
that every query parses, names real metrics and returns data). Grafana expands its built-in
``$__...`` variables before it sends a query, so a raw expression does not run in Prometheus;
both need the same expansion, and a second copy of it would drift (one of them once reported
the unknown variable's query, the other did not).

Standard library only, so that the renderer stays a script that needs nothing but matplotlib.
Run as ``python deploy/grafana/render_dashboard.py`` it imports this file as a sibling; the
tests import it as ``deploy.grafana.dashboard_model`` from the repository root.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DASHBOARD = HERE / "dashboards" / "caseclock.json"

#: Values for Grafana's built-in variables where no time range is at hand (the tests): what
#: Grafana would send for a one-hour dashboard scraped every 15 s.
GRAFANA_VARIABLES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
"""A Grafana variable reference: ``$name`` or ``${name}``."""


def load_dashboard(path: str | Path = DEFAULT_DASHBOARD) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a dashboard object")
    return data


def iter_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows, in dashboard order."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def query_targets(panel: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The panel's targets that carry a PromQL ``expr`` (none of caseclock's lack one)."""
    for target in panel.get("targets", []):
        if target.get("expr"):
            yield target


def prom_duration(seconds: float) -> str:
    """A PromQL duration literal (whole milliseconds, at least 1ms)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def grafana_variables(span: float, step: float, scrape_interval: float) -> dict[str, str]:
    """Grafana's built-in variables for a time range of ``span`` seconds queried every ``step``
    seconds from a Prometheus that scrapes every ``scrape_interval`` seconds, as Grafana
    computes them: ``$__rate_interval`` = max(step + scrape interval, 4 x scrape interval)."""
    return {
        "__range": prom_duration(span),
        "__interval": prom_duration(step),
        "__rate_interval": prom_duration(max(step + scrape_interval, 4 * scrape_interval)),
    }


def substitute_grafana_variables(
    expr: str, variables: Mapping[str, str] = GRAFANA_VARIABLES
) -> str:
    """Replace ``$__rate_interval`` / ``${__range}`` ... with concrete durations.

    Raises ``ValueError`` for a variable not in ``variables`` (the query would not run).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return variables[name]

    return VARIABLE.sub(replace, expr)


def panel_queries(
    path: str | Path = DEFAULT_DASHBOARD,
    *,
    runnable: bool = False,
    variables: Mapping[str, str] = GRAFANA_VARIABLES,
) -> list[tuple[str, str]]:
    """``(panel title, expr)`` for every query target of every panel, in dashboard order.

    With ``runnable=True`` Grafana variables are substituted (``variables``, by default
    :data:`GRAFANA_VARIABLES`), so the queries can be sent to Prometheus as they are.
    """
    out: list[tuple[str, str]] = []
    for panel in iter_panels(load_dashboard(path).get("panels", [])):
        for target in query_targets(panel):
            expr = str(target["expr"])
            if runnable:
                expr = substitute_grafana_variables(expr, variables)
            out.append((panel.get("title", ""), expr))
    return out
