from __future__ import annotations

import asyncio
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


class StillClock:
    """notify's clock where time moves only when the test moves it: a channel held through quiet
    hours or a retry's backoff stays held until the test says the time has come."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    async def sleep_until(self, ms: int) -> None:
        while self.now < ms:
            await asyncio.sleep(0.0005)
