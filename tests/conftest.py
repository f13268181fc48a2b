"""Suite-wide settings."""

from __future__ import annotations

import os
import signal

from hypothesis import settings

# Shared 2-core machines: a per-example deadline measures the neighbours, not the code. Under
# CI the examples are derived from each test's name, so a run is reproducible from its log.
settings.register_profile("caseclock", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("caseclock")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, `kill`) ends the run like Ctrl-C: pytest then runs the fixtures'
    teardown, which stops the brokers and workers the tests started. Python's default for
    SIGTERM ends the process at once and leaves them running."""
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)
