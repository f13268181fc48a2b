"""Reading a worker's /metrics: samples of one metric out of the Prometheus text format.

Parsed by hand (two regexes) so the tests check the text a scraper reads, not a client's model.
"""

from __future__ import annotations

import re


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric in Prometheus text format: {sorted label pairs: value}."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = _SAMPLE.match(line)
        if m is None or m.group("name") != name:
            continue
        labels = tuple(sorted(_LABEL.findall(m.group("labels") or "")))
        out[labels] = float(m.group("value"))
    return out


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
