"""The package layout is the architecture: imports point one way only.

core <- contracts <- replay (<- explain), live <- cli. The core (facts, state, fold, clocks,
alerts, policy, calendars, schedule, time) imports nothing of the others and no I/O library,
so the live worker and replay cannot drive different rules, and the core is testable without
a broker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "caseclock"

# For each layer: the caseclock layers it may import, and third-party roots it must not.
ALLOWED: dict[str, set[str]] = {
    "policies": set(),  # package data: the built-in policy files
    "core": {"core"},
    "contracts": {"core", "contracts", ""},
    "replay": {"core", "contracts", "replay"},
    "explain": {"core", "contracts", "replay", "explain"},
    "live": {"core", "contracts", "live"},
    "cli": {"core", "contracts", "live", "replay", "explain", "cli", ""},
}
FORBIDDEN_LIBS: dict[str, set[str]] = {
    "core": {"faust", "aiokafka", "kafka", "prometheus_client", "mode", "socket", "asyncio"},
    "contracts": {"faust", "aiokafka", "kafka", "prometheus_client", "mode"},
    "replay": {"faust", "aiokafka", "kafka", "prometheus_client", "mode"},
    "explain": {"faust", "aiokafka", "kafka", "prometheus_client", "mode"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the layer must be visible)"
            out.append(node.module or "")
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


MODULES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_one_way(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"{path}: module outside the known layers {sorted(ALLOWED)}"
    for mod in _imports(path):
        root = mod.split(".")[0]
        if root == "caseclock":
            target = mod.split(".")[1] if "." in mod else ""
            assert target in ALLOWED[layer], f"{path.name} ({layer}) imports {mod}"
        else:
            assert root not in FORBIDDEN_LIBS.get(layer, set()), (
                f"{path.name} ({layer}) imports {mod}"
            )


def test_the_core_reads_no_clock() -> None:
    """Time comes in as an argument: no datetime.now, time.time or monotonic in the core."""
    for path in (SRC / "core").rglob("*.py"):
        text = path.read_text()
        for call in ("datetime.now(", ".utcnow(", "time.time(", "time.monotonic(", "date.today("):
            assert call not in text, f"{path.name} reads the clock ({call})"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules above are not vacuous: a core module importing Faust is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import faust\nfrom caseclock.live.metrics import Metrics\n")
    mods = _imports(bad)
    assert "faust" in FORBIDDEN_LIBS["core"] and mods[0] == "faust"
    assert mods[1].split(".")[1] not in ALLOWED["core"]
