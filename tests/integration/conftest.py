from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import STACK_PREFIX, Deployment, Stack, stack_up

# Tests that run two deployments at once pin dbs 5, 6 and 8-15; fixture deployments (one at a
# time) cycle through the rest, so the two never share a database whatever the test order.
_dbs = itertools.cycle((1, 2, 3, 4, 7))


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The real local stack (Kafka KRaft + redis-server), started once, reused if running."""
    return stack_up(STACK_PREFIX)


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
