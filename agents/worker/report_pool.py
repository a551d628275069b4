"""Reports, a few at a time, their arithmetic and rendering in processes of their own.

A report is read from Redis on the event loop (I/O), then assembled and rendered (JSON, the
page with its charts) in one of `processes` worker processes: `processes` turns at once,
`queue` more requests waiting, and past that the request is answered 503 "busy" straight
away. So the memory of reports in flight is bounded, and rendering, which is seconds of pure
Python at 200 agents × 31 days, never holds the worker's GIL: `/metrics`, `/healthz`, the
floor streams and the batches keep their turn (threads in one process took turns with it,
and a scrape's p99 went from 5 ms to 350 ms while 50 pages rendered).

The processes start at the first report (spawned: the worker has threads, a fork could copy
a held lock), ignore Ctrl-C (their worker stops them), and leave when their worker is gone,
even after a SIGKILL.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from config.errors import KefuError

T = TypeVar("T")
# A request waits this long for its turn at most: by then its client has likely given up.
TURN_WAIT_SECONDS = 30.0
PARENT_CHECK_SECONDS = 1.0


class Busy(KefuError):
    """No turn for this request now; the client may retry."""


def _leave_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _start_render_process(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_leave_with_parent, args=(parent,), name="kefu-parent-watch", daemon=True).start()


class ReportPool:
    def __init__(self, processes: int, queue: int, turn_wait_seconds: float = TURN_WAIT_SECONDS) -> None:
        self._processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._turns = asyncio.Semaphore(processes)
        self._queue = queue
        self._turn_wait_seconds = turn_wait_seconds
        self.waiting = 0
        self.running = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One report's turn; Busy when the queue is full or the turn does not come in time."""
        # Counted, not asked of the semaphore: a burst's acquires have not run yet when the
        # next request of the burst arrives, so the semaphore looks free to every one of them.
        if self.running + self.waiting >= self._processes + self._queue:
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

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a render process (inside a turn, so one is free). `work` and its
        arguments travel by pickle: a module-level function and plain values."""
        executor = self._executor or self._start()
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, work, *args)
        except BrokenProcessPool:
            # A render process died (the OOM killer, a signal): this report is lost, the next
            # one gets fresh processes.
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            raise Busy from None

    def _start(self) -> ProcessPoolExecutor:
        self._executor = ProcessPoolExecutor(
            self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_render_process,
            initargs=(os.getpid(),),
        )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
