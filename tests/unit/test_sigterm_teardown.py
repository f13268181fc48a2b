"""A terminated test run still stops what it started (tests/conftest.py's SIGTERM handler)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import time
from pathlib import Path

import pytest

import tests.conftest  # noqa: F401 - installs the handler, as pytest does for the suite


@pytest.fixture
def broker():
    yield
    Path({done!r}).write_text("stopped")


def test_long(broker):
    Path({ready!r}).write_text("running")
    time.sleep(60)
"""


def test_sigterm_runs_the_fixtures_teardown(tmp_path: Path) -> None:
    ready, done = tmp_path / "ready", tmp_path / "done"
    test_file = tmp_path / "test_child.py"
    test_file.write_text(CHILD.format(ready=str(ready), done=str(done)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "the child test never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.read_text() == "stopped"
