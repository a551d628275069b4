from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.calendar import calendar_for
from streams.simulation.traffic import SimRecord
from tests.integration.business_day import DEFAULT_ZONE
from tests.integration.business_day import pytest_runtest_protocol as pytest_runtest_protocol
from tests.integration.differential import REFERENCE_DB, assert_not_empty, dataset, run
from tests.integration.harness import STACK_PREFIX, Deployment, Stack, stack_up

# Tests that run two deployments at once pin dbs 5, 6 and 8-15; fixture deployments (one at a
# time) cycle through the rest, so the two never share a database whatever the test order.
_dbs = itertools.cycle((1, 2, 3, 4, 7))


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The real local stack (Kafka KRaft + redis-server), started once, reused if running."""
    return stack_up(STACK_PREFIX)


@pytest.fixture(scope="session")
def records() -> list[SimRecord]:
    return dataset()


@pytest.fixture(scope="session")
def references() -> dict[int, dict[str, Any]]:
    """The differential tests' reference runs, by the business day they ran in: at most one kept."""
    return {}


@pytest.fixture
def reference(
    references: dict[int, dict[str, Any]],
    stack: Stack,
    records: list[SimRecord],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """One uninterrupted worker's numbers, run once a session and business day: its `today` is the
    day of the test that compares with it (a session can cross midnight: business_day.py)."""
    calendar = calendar_for(DEFAULT_ZONE)
    day = calendar.day(time.time_ns() // 1_000_000)
    if day not in references:
        references.clear()
        deployment = Deployment(stack, tmp_path_factory.mktemp("reference"), redis_db=REFERENCE_DB)
        try:
            numbers = run(deployment, records)
        finally:
            deployment.close()
        assert_not_empty(numbers)
        references[day] = numbers
    return references[day]


@pytest.fixture
def deployment(stack: Stack, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(stack, tmp_path, redis_db=next(_dbs))
    try:
        yield deployment
    finally:
        deployment.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
