"""Fixtures of the fault suite: each scenario's figures, written when it ends (pass or fail)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.faults.figures import Figures, report_path

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def figures(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Figures]:
    """The scenario's figures (named after its module), merged into the fault report."""
    scenario = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    figs = Figures(scenario, report_path(tmp_path_factory.getbasetemp()))
    yield figs
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is None or call.skipped:
        return
    if call.passed:
        figs.write("passed")
    else:
        crash = getattr(call.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(call.longrepr)
        figs.write("failed: " + message.splitlines()[0][:300])
    print(f"\nfigures of {scenario} written to {figs.path}")
