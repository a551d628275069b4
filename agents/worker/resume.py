"""Resume every input partition from Redis, not from Kafka's committed offsets.

Faust seeks newly assigned partitions to their committed offsets (`perform_seek` →
`seek_to_committed`). Its commits can run ahead of Redis: a batch is acked when its loop
iteration ends, also when it ends by cancellation at shutdown. Redis holds the offsets that
were really applied, so we seek to the last applied offset + 1 there; a partition Redis
knows nothing of (fresh deployment, or state lost) is read from the beginning of retention.

A new rebalance can land while this runs: aiokafka then raises IllegalStateError for a
partition that is no longer assigned (faust-streaming#44/#54, still reachable from the recovery's
seek). The worker must not crash there: the seek is tried again on the assignment as it is
now, and if the group is still moving, the recovery that the next assignment starts seeks again
before any record of it is fetched.

A partition's last commit may also have left an outbox that its previous owner died before
applying to the agents; it is applied here, as the partition arrives, because a partition
that receives no more records would otherwise never apply it (agents/store/batches.py).

Redis can be down while partitions arrive. Like every outage, that is waited out with backoff
(each failure counts in `kefu_redis_errors_total`); a configuration error (a refused login,
a missing permission, an untrusted certificate) stops the worker. Faust gives the seek
`broker_request_timeout` and then abandons the whole recovery, so the wait ends before that:
the partitions are then read from the beginning of retention, which is safe (the processor
skips every record Redis already holds, once Redis answers) though slower to catch up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from prometheus_client import Counter

from agents.store.errors import STORE_ERRORS, raise_if_fatal
from agents.store.redis_store import RedisStore

log = logging.getLogger(__name__)

SEEK_ATTEMPTS = 3
SEEK_RETRY_SECONDS = 0.2
FIRST_OUTAGE_DELAY_S = 0.1
MAX_OUTAGE_DELAY_S = 5.0
# The share of Faust's seek timeout (broker_request_timeout) spent waiting for Redis.
OUTAGE_SHARE_OF_TIMEOUT = 0.75
FROM_RETENTION_START = -1  # an applied offset that makes the seek read from the beginning


def resume_from_redis(
    app: faust.App, store: RedisStore, input_topics: set[str], redis_errors: Counter
) -> None:
    """Install the seek policy; safe to call on every assignment (installs once)."""
    consumer: Any = app.consumer
    if getattr(consumer, "_kefu_resume_installed", False):
        return
    outage_limit_s = float(app.conf.broker_request_timeout) * OUTAGE_SHARE_OF_TIMEOUT
    resume = _Resume(consumer, consumer.seek_to_committed, store, input_topics, redis_errors, outage_limit_s)
    consumer.seek_to_committed = resume.seek_to_applied
    consumer._kefu_resume_installed = True


@dataclass
class _Resume:
    """What replaces the consumer's `seek_to_committed`: each input partition resumes from Redis."""

    consumer: Any
    faust_seek: Callable[[], Awaitable[Mapping[Any, int]]]
    store: RedisStore
    input_topics: set[str]
    redis_errors: Counter
    outage_limit_s: float

    async def seek_to_applied(self) -> Mapping[Any, int]:
        deadline = time.monotonic() + self.outage_limit_s  # one for the whole seek, rebalances too
        for attempt in range(1, SEEK_ATTEMPTS + 1):
            try:
                return await self._through_outages(deadline)
            except IllegalStateError as exc:
                log.info("the assignment changed while resuming (attempt %d): %s", attempt, exc)
                await asyncio.sleep(SEEK_RETRY_SECONDS)
        log.warning(
            "the consumer group is still rebalancing; the next assignment resumes these partitions from Redis"
        )
        return {}

    async def _through_outages(self, deadline: float) -> Mapping[Any, int]:
        delay = FIRST_OUTAGE_DELAY_S
        while True:
            try:
                return await self._once(from_redis=True)
            except STORE_ERRORS as exc:
                raise_if_fatal(exc)
                self.redis_errors.inc()
                if time.monotonic() + delay >= deadline:
                    log.warning(
                        "Redis is still unreachable after %.0f s of resuming (%s): reading these partitions "
                        "from the beginning of retention; records Redis holds are skipped once it answers",
                        self.outage_limit_s,
                        exc,
                    )
                    return await self._once(from_redis=False)
                log.warning("resuming from Redis failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_OUTAGE_DELAY_S)

    async def _once(self, from_redis: bool) -> Mapping[Any, int]:
        positions = dict(await self.faust_seek())
        partitions = sorted(
            (tp for tp in self.consumer.assignment() if tp.topic in self.input_topics), key=str
        )
        if not from_redis:
            # Redis could not say what these partitions hold, and drain (which drops what this
            # worker kept of them) cannot run: the buyer-state cache is emptied instead.
            self.store.batches.forget()
            starts = [FROM_RETENTION_START] * len(partitions)
            return await self._seek_all(positions, partitions, starts, "the beginning of retention")
        applied = await self.store.applied_offsets([(tp.topic, tp.partition) for tp in partitions])
        drained = await self.store.batches.drain({tp.partition for tp in partitions})
        if drained:
            log.info("applied %d outbox(es) left by the previous owners of these partitions", drained)
        return await self._seek_all(positions, partitions, applied, "Redis")

    async def _seek_all(
        self, positions: dict[Any, int], partitions: list[Any], applied: list[int], source: str
    ) -> Mapping[Any, int]:
        for tp, offset in zip(partitions, applied, strict=True):
            position = offset + 1
            if positions.get(tp) != position:
                log.info(
                    "resuming %s[%d] at %d (%s), Kafka had %s",
                    tp.topic,
                    tp.partition,
                    position,
                    source,
                    positions.get(tp),
                )
            await self.consumer.seek(tp, position)
            positions[tp] = position
        return positions
