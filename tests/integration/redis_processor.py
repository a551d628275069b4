"""The worker's own BatchProcessor on a Redis URL, without Kafka: what the store's tests drive."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store.connect import connect
from agents.store.redis_store import RedisStore
from config.settings import Settings
from streams.wire.decoding import EventDecoder


async def no_dead_letters(_: object) -> None:
    return None


def redis_processor(url: str, now_ms: int, topics: Sequence[str]) -> BatchProcessor:
    """A worker's processor with its own client (and so its own memory of applied outboxes),
    at a fixed clock."""
    return BatchProcessor(
        RedisStore(connect(url)).batches,
        PolicyBook(Settings()),
        EventDecoder(),
        no_dead_letters,
        WorkerMetrics.create(CollectorRegistry()),
        clock=lambda: now_ms,
        input_topics=topics,
    )
