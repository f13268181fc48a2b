"""`changed_keys` without a broker to answer: the restart reads the rows instead, never fails.
(Reading a changelog range from a real broker is tests/integration/test_store_recovery.py.)"""

from __future__ import annotations

import logging
import socket

import pytest

from caseclock.live.changelog_keys import changed_keys
from caseclock.live.config import Config


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_broker_that_does_not_answer_leaves_the_ranges_unread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = Config.from_env({"CASECLOCK_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}"})
    with caplog.at_level(logging.WARNING, "caseclock"):
        found = await changed_keys(cfg, "t-changelog", {0: range(5, 9), 1: range(0)}, within=3)
    assert found == {0: None, 1: set()}  # an empty range needs no broker
    assert "changelog of partitions [0]" in caplog.text and "rows are read" in caplog.text
