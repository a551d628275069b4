from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.secret import forget_secrets
from tests.robots import RobotServer, running

SECRETS = {
    "dingtalk": "SECdingtalk0123456789abcdef",
    "feishu": "feishu-secret-0123456789",
    "webhook": "hook-secret-9876543210",
}


@pytest.fixture
def robots() -> Iterator[RobotServer]:
    yield from running(SECRETS)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_remembered_secrets() -> Iterator[None]:
    # The resolver remembers secrets process-wide; each test starts and ends with none.
    forget_secrets()
    yield
    forget_secrets()
