"""Suite-wide settings."""

from __future__ import annotations

import os

from hypothesis import settings

# Shared 2-core machines: a per-example deadline measures the neighbours, not the code. Under
# CI the examples are derived from each test's name, so a run is reproducible from its log.
settings.register_profile("caseclock", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("caseclock")
