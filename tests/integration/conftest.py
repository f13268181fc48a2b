"""Integration tests: every test here gets the `integration` mark and may use a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_broker import broker

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A conftest's collection hook sees the whole session's items: mark only ours.
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a live broker: KAFKA_BOOTSTRAP_SERVERS, Docker, or local-kafka.sh."""
    with broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def unique_prefix() -> str:
    """Short unique string per test, for topic names and app ids."""
    return f"cc{uuid.uuid4().hex[:10]}"
