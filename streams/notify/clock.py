"""The clock `notify` waits on: the system's, or a test's (tests/unit/notify)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep_until(self, ms: int) -> None: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, ms: int) -> None:
        await asyncio.sleep(max(0.0, (ms - self.now_ms()) / 1000))
