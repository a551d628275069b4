"""Reports, a few at a time, their arithmetic and rendering off the event loop.

A report is read from Redis, assembled and rendered (JSON, the page with its charts) inside a
turn: `threads` turns at once, `queue` more requests waiting, and past that the request is
answered 503 "busy" straight away. So the memory of reports in flight is bounded, and the
loop, which also applies batches and answers `/metrics` and `/healthz`, only waits for I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")
# A request waits this long for its turn at most: by then its client has likely given up.
TURN_WAIT_SECONDS = 30.0


class Busy(Exception):
    """No turn for this request now; the client may retry."""


class ReportPool:
    def __init__(self, threads: int, queue: int, turn_wait_seconds: float = TURN_WAIT_SECONDS) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="kefu-report")
        self._turns = asyncio.Semaphore(threads)
        self._queue = queue
        self._turn_wait_seconds = turn_wait_seconds
        self.waiting = 0
        self.running = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One report's turn; Busy when the queue is full or the turn does not come in time."""
        if self._turns.locked() and self.waiting >= self._queue:
            raise Busy
        self.waiting += 1
        try:
            await asyncio.wait_for(self._turns.acquire(), self._turn_wait_seconds)
        except TimeoutError:
            raise Busy from None
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._turns.release()

    async def run(self, work: Callable[[], T]) -> T:
        """`work` on one of the pool's threads (inside a turn, so one is free)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)
