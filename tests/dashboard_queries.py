"""Extract PromQL from the Grafana dashboard and the Prometheus rules (shared by the tests).

``panel_queries`` lists every target expression of a dashboard. Grafana expands ``$__...``
variables before it sends a query, so the raw expressions do not parse in Prometheus; pass
``runnable=True`` (or use :func:`substitute_grafana_variables`) to get queries that can be sent
to Prometheus' HTTP API as they are, e.g. by the end-to-end test.

``metric_names`` is a small PromQL scanner, enough for the tests to check that every metric a
query or rule refers to is one caseclock or Faust really exports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

#: Values substituted for Grafana's built-in variables in runnable queries.
GRAFANA_VARIABLES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def load_dashboard(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a dashboard object")
    return data


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

    return _VARIABLE.sub(replace, expr)


def panel_queries(path: str | Path, *, runnable: bool = False) -> list[tuple[str, str]]:
    """``(panel title, expr)`` for every target of every panel, in dashboard order.

    With ``runnable=True`` Grafana variables are substituted (see :data:`GRAFANA_VARIABLES`).
    Targets without an ``expr`` (none in caseclock's dashboard) are left out.
    """
    dashboard = load_dashboard(path)
    out: list[tuple[str, str]] = []
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            out.append(
                (panel.get("title", ""), substitute_grafana_variables(expr) if runnable else expr)
            )
    return out


def rule_exprs(path: str | Path) -> list[tuple[str, str]]:
    """``(record or alert name, expr)`` for every rule of a Prometheus rules file."""
    data = yaml.safe_load(Path(path).read_text())
    return [
        (rule.get("record") or rule["alert"], str(rule["expr"]))
        for group in data["groups"]
        for rule in group["rules"]
    ]


def recorded_names(path: str | Path) -> set[str]:
    """Names of the recording rules defined in a rules file."""
    data = yaml.safe_load(Path(path).read_text())
    return {
        rule["record"] for group in data["groups"] for rule in group["rules"] if "record" in rule
    }


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_TOKEN = re.compile(r"[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "start",
        "end",
    }
)


def metric_names(expr: str) -> set[str]:
    """Metric (and recording-rule) names referenced by a PromQL expression.

    Drops strings, label matchers, range selectors and grouping clauses, then keeps the
    identifiers that are neither keywords, numbers nor function calls. Grafana variables are
    substituted first so ``[$__rate_interval]`` is harmless.
    """
    text = _VARIABLE.sub("1m", expr)
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token[0].isdigit() or token.lower() in _KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # function or aggregation operator
        names.add(token)
    return names
