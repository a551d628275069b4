"""A commit's outboxes applied while the worker works on its next batch.

Until a commit's outboxes are applied, readers do not see its batch, but nothing of it can be
lost: the outboxes are in Redis, committed with the offsets, and a worker that dies before
applying them leaves them to the partition's next owner, which applies them when it is
assigned (`RedisPartitionStore.drain`). So the worker need not wait for them. In line, it did:
on one server, applying costs Redis about a quarter of a batch's time, and the worker sat idle
through it. Behind, Redis applies batch N on one core while the worker fetches, decodes and
folds batch N+1 on the other.

Two rules keep every number exactly once:
1. **A partition's next commit replaces its outbox**, so every commit first waits for the apply
   in flight (`settle`). Only one apply is ever in flight. A drain on assignment does not wait:
   the apply in flight may be of the same outboxes, and the agents' markers let both land once
   in either order, while waiting could hold a rebalance's seek through an outage.
2. **The apply retries through an outage by itself**, with the same backoff as a batch: a
   partition that goes quiet must not keep its last batch out of the floor until its next
   record. A fatal error (a script Redis rejects, a refused login) is logged at once and
   raised by the next `settle`, which stops the worker as the same error in line would have.

A reader sees a batch one apply later than in line: a few milliseconds when the worker keeps
up. On revocation and shutdown the worker gives the apply in flight a few seconds (`finish`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agents.store.errors import STORE_ERRORS, RetryHook, until_done

log = logging.getLogger(__name__)

Apply = Callable[[], Awaitable[None]]
NEXT_OWNER = "they stay in Redis, and the partitions' next owner applies them"


def log_retry(exc: BaseException, delay: float) -> None:
    log.warning("applying a committed batch's outboxes failed (%s); retrying in %.1fs", exc, delay)


class ApplyBehind:
    """At most one apply in flight, awaited before anything that could replace its outboxes."""

    def __init__(self, on_retry: RetryHook = log_retry) -> None:
        self.on_retry = on_retry
        self._task: asyncio.Task[None] | None = None

    def start(self, apply: Apply) -> None:
        """Run `apply` until it is done, from now on; `settle` must have been awaited first."""
        if self._task is not None:
            raise RuntimeError("an apply is still in flight: settle() it before starting another")
        self._task = asyncio.get_running_loop().create_task(until_done(apply, STORE_ERRORS, self.on_retry))
        self._task.add_done_callback(_say_if_failed)

    @property
    def in_flight(self) -> bool:
        return self._task is not None

    async def settle(self) -> None:
        """Wait until the apply in flight is done; raise the fatal error that ended it, if any.

        Shielded: a batch cancelled while it waits here (a revocation, a shutdown) leaves the
        apply running, and the next `settle` waits for the same one."""
        task = self._task
        if task is None:
            return
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._task is task:
                self._task = None

    async def finish(self, timeout_s: float) -> None:
        """Revocation and shutdown: give the apply in flight up to `timeout_s` to land, so that a
        stopped worker leaves its numbers complete; never cancels it, never raises."""
        task = self._task
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                log.warning(
                    "still applying the last batch's outboxes after %.0fs: if stopped, %s",
                    timeout_s,
                    NEXT_OWNER,
                )

    def close(self) -> None:
        """Cancel the apply in flight, if any (a process that applies settles before it closes)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            log.warning("stopping before the last batch's outboxes were applied: %s", NEXT_OWNER)


def _say_if_failed(task: asyncio.Task[None]) -> None:
    """At once, not at the next batch: a quiet worker would otherwise hide it."""
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "applying a committed batch's outboxes failed for good (%r): the worker stops at its next "
            "batch; %s",
            task.exception(),
            NEXT_OWNER,
        )
