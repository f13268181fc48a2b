"""Fixtures of the contract suites: a fresh store of each kind per test, closed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.contract.stores import CHANGELOGGED, KINDS, PARTITIONED, PERSISTENT, StoreUnderTest


async def _store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    under_test = StoreUnderTest(request.param, tmp_path / "data")
    try:
        yield under_test
    finally:
        await under_test.close()


# One fixture per promise, each over the kinds that make it (see tests/contract/stores.py).
any_store = pytest_asyncio.fixture(params=KINDS, name="any_store")(_store)
partitioned_store = pytest_asyncio.fixture(params=PARTITIONED, name="partitioned_store")(_store)
persistent_store = pytest_asyncio.fixture(params=PERSISTENT, name="persistent_store")(_store)
changelogged_store = pytest_asyncio.fixture(params=CHANGELOGGED, name="changelogged_store")(_store)
