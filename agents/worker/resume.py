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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from aiokafka.errors import IllegalStateError

from agents.store.redis_store import RedisStore

log = logging.getLogger(__name__)

SEEK_ATTEMPTS = 3
SEEK_RETRY_SECONDS = 0.2


def resume_from_redis(app: faust.App, store: RedisStore, input_topics: set[str]) -> None:
    """Install the seek policy; safe to call on every assignment (installs once)."""
    consumer: Any = app.consumer
    if getattr(consumer, "_kefu_resume_installed", False):
        return
    faust_seek: Callable[[], Awaitable[Mapping[Any, int]]] = consumer.seek_to_committed

    async def seek_to_applied() -> Mapping[Any, int]:
        for attempt in range(1, SEEK_ATTEMPTS + 1):
            try:
                return await seek_once()
            except IllegalStateError as exc:
                log.info("the assignment changed while resuming (attempt %d): %s", attempt, exc)
                await asyncio.sleep(SEEK_RETRY_SECONDS)
        log.warning(
            "the consumer group is still rebalancing; the next assignment resumes these partitions from Redis"
        )
        return {}

    async def seek_once() -> Mapping[Any, int]:
        positions = dict(await faust_seek())
        partitions = sorted((tp for tp in consumer.assignment() if tp.topic in input_topics), key=str)
        applied = await store.applied_offsets([(tp.topic, tp.partition) for tp in partitions])
        drained = await store.batches.drain({tp.partition for tp in partitions})
        if drained:
            log.info("applied %d outbox(es) left by the previous owners of these partitions", drained)
        for tp, offset in zip(partitions, applied, strict=True):
            position = offset + 1
            if positions.get(tp) != position:
                log.info(
                    "resuming %s[%d] at %d (Redis), Kafka had %s",
                    tp.topic,
                    tp.partition,
                    position,
                    positions.get(tp),
                )
            await consumer.seek(tp, position)
            positions[tp] = position
        return positions

    consumer.seek_to_committed = seek_to_applied
    consumer._kefu_resume_installed = True
