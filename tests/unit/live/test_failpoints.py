"""Failpoints: inert unless armed, armed only by known names, and a kill at the Nth hit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from caseclock.live import failpoints


def test_parse_reads_names_and_hit_counts() -> None:
    assert failpoints.parse("") == {}
    assert failpoints.parse("revoke, changelog-before-send:3") == {
        "revoke": 1,
        "changelog-before-send": 3,
    }


@pytest.mark.parametrize("spec", ["no-such-point", "revoke:0"])
def test_parse_refuses_what_would_never_fire(spec: str) -> None:
    with pytest.raises(ValueError, match="CASECLOCK_FAILPOINTS"):
        failpoints.parse(spec)


def test_unarmed_hits_do_nothing() -> None:
    assert failpoints.armed() == {}  # the test process has no CASECLOCK_FAILPOINTS
    for name in sorted(failpoints.NAMES):
        failpoints.hit(name)


def test_an_armed_point_kills_at_its_nth_hit() -> None:
    code = (
        "from caseclock.live import failpoints\n"
        "for i in range(5):\n"
        "    print(i, flush=True)\n"
        "    failpoints.hit('revoke')\n"
    )
    env = {**os.environ, failpoints.ENV: "revoke:3"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1", "2"]
    assert "failpoint revoke reached" in done.stderr
