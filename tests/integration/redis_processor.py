"""The worker's own BatchProcessor on a Redis URL, without Kafka: what the store's tests drive."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.apply_behind import ApplyBehind
from agents.store.batches import RedisPartitionStore
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from agents.store.state_cache import CachedPartitionStore
from config.settings import Settings
from streams.wire.decoding import EventDecoder


async def no_dead_letters(_: object) -> None:
    return None


def redis_processor(
    url: str, now_ms: int, topics: Sequence[str], behind: ApplyBehind | None = None
) -> BatchProcessor:
    """A worker's processor with its own client (and so its own memory of applied outboxes and
    its own buyer-state cache, sized as the worker's), at a fixed clock; `behind`, it applies
    each batch's outboxes while the next is computed, as the worker does."""
    cache = Settings().processing.state_cache_buyers
    return BatchProcessor(
        RedisStore(connect(url), state_cache_buyers=cache, behind=behind).batches,
        PolicyBook(Settings()),
        EventDecoder(),
        no_dead_letters,
        WorkerMetrics.create(CollectorRegistry()),
        clock=lambda: now_ms,
        input_topics=topics,
    )


def redis_partitions(worker: BatchProcessor) -> RedisPartitionStore:
    """The Redis store behind the worker's state cache: its client, its outbox apply."""
    store = worker.store
    assert isinstance(store, CachedPartitionStore) and isinstance(store.inner, RedisPartitionStore)
    return store.inner
