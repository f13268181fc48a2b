"""Faust, mode and aiokafka internals are used only behind one door (`live.faust_compat`).

Outside that package, caseclock's code may not:

* name a private attribute of theirs (any `_name` that `test_internals.INTERNALS` lists as
  upstream's, read as `x._name` or `getattr(x, "_name")`, on any object, `self` included);
* subclass one of their classes, except the documented extension points in PUBLIC_BASES;
* import from one of their modules other than the public ones in PUBLIC_MODULES.

So an upgrade touches one package, and test_internals (which names its files) says what there
to re-read. The checker is run against a planted violation too, so it is not vacuous.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.live.faust_compat.test_internals import INTERNALS

ROOT = Path(__file__).resolve().parents[4]
SRC = ROOT / "src" / "caseclock"
DOOR = SRC / "live" / "faust_compat"

FRAMEWORKS = ("faust", "mode", "aiokafka")
PUBLIC_MODULES = {
    "faust",
    "faust.types",  # TP
    "faust.sensors.prometheus",  # setup_prometheus_sensors, the documented sensor set-up
    "aiokafka",
    "aiokafka.admin",
    "aiokafka.errors",
}
PUBLIC_BASES = {"Worker"}  # faust.Worker: caseclock's CLI worker overrides its logging hook


def upstream_private_names() -> set[str]:
    """Every underscore name the internals table records as upstream's."""
    names = set()
    for entry in INTERNALS:
        for part in entry.path.split("."):
            if part.startswith("_") and not part.startswith("__"):
                names.add(part)
    return names


def violations(path: Path, private: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    framework_names: set[str] = set()
    out = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in FRAMEWORKS:
                framework_names.update(a.asname or a.name for a in node.names)
                if node.module not in PUBLIC_MODULES:
                    out.append(f"{where}: imports {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FRAMEWORKS:
                    framework_names.add((alias.asname or alias.name).split(".")[0])
                    if alias.name not in PUBLIC_MODULES:
                        out.append(f"{where}: imports {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in private:
            out.append(f"{where}: uses {node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            out.append(f"{where}: {node.func.id}(..., {node.args[1].value!r})")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = ast.unparse(base)
                if name.split(".")[0] in framework_names and name.split(".")[-1] not in (
                    PUBLIC_BASES
                ):
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: subclasses {name}")
    return out


def outside_the_door() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if DOOR not in p.parents]


def test_no_framework_internal_is_used_outside_faust_compat() -> None:
    private = upstream_private_names()
    assert len(private) > 20  # the table is there and read
    found = [v for path in outside_the_door() for v in violations(path, private)]
    assert found == [], "move these behind live/faust_compat:\n" + "\n".join(found)


def test_the_checker_sees_each_kind_of_violation(tmp_path: Path) -> None:
    planted = ROOT / "src" / "caseclock" / "live" / "_planted_for_test.py"
    planted.write_text(
        "from faust.transport.drivers import aiokafka as drv\n"
        "import faust\n"
        "class C(drv.Consumer):\n"
        "    def f(self):\n"
        "        return self._unacked_messages, getattr(faust, '_assignment', None)\n"
        "class W(faust.Worker):\n"
        "    pass\n"
    )
    try:
        found = violations(planted, upstream_private_names())
    finally:
        planted.unlink()
    kinds = sorted(v.split(": ", 1)[1] for v in found)
    assert kinds == [
        "getattr(..., '_assignment')",
        "imports faust.transport.drivers",
        "subclasses drv.Consumer",
        "uses _unacked_messages",
    ]
