"""Extract PromQL from the Grafana dashboard and the Prometheus rules (shared by the tests).

The dashboard side is the one dashboard model, ``deploy/grafana/dashboard_model.py`` (also what
the renderer uses), re-exported here: ``panel_queries`` lists every target expression of a
dashboard; Grafana expands ``$__...`` variables before it sends a query, so the raw expressions
do not parse in Prometheus; pass ``runnable=True`` (or use :func:`substitute_grafana_variables`)
to get queries that can be sent to Prometheus' HTTP API as they are, e.g. by the end-to-end test.

``metric_names`` is a small PromQL scanner, enough for the tests to check that every metric a
query or rule refers to is one caseclock or Faust really exports.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from deploy.grafana.dashboard_model import GRAFANA_VARIABLES as GRAFANA_VARIABLES
from deploy.grafana.dashboard_model import VARIABLE
from deploy.grafana.dashboard_model import iter_panels as iter_panels
from deploy.grafana.dashboard_model import load_dashboard as load_dashboard
from deploy.grafana.dashboard_model import panel_queries as panel_queries
from deploy.grafana.dashboard_model import (
    substitute_grafana_variables as substitute_grafana_variables,
)


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
    text = VARIABLE.sub("1m", expr)
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
