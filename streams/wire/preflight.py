"""What a worker checks on Kafka before it starts, each failure as one sentence naming the fix.

A running worker retries through an outage; one that cannot start should say why at once,
instead of ending in a library's traceback. Kafka-side only: the Redis check is the store's
(agents/store/errors.py), and streams/commands/main.py runs both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.client import AIOKafkaClient

from config.errors import DeploymentError
from config.secret import mask_secrets
from config.settings import Settings
from streams.wire.security import KafkaAccessError, KafkaUnreachable, check_access, client_kwargs

OPERATIONS_DOC = 'docs/operations.md, "Adding partitions later"'


class StartupError(DeploymentError, RuntimeError):
    """One sentence: what is wrong and what to do; printed at start-up, so never a secret."""

    def __init__(self, message: str) -> None:
        super().__init__(mask_secrets(message))


@dataclass(frozen=True, slots=True)
class TopicFacts:
    partitions: dict[str, int | None]  # topic -> partition count, None when the topic is missing


async def require_kafka(settings: Settings, timeout_s: float = 10.0) -> None:
    try:
        await check_access(settings.kafka, timeout_s)
    except KafkaUnreachable as exc:
        raise StartupError(
            f"Kafka is unreachable at {settings.kafka.bootstrap} ({exc.reasons}); "
            "set KEFU_KAFKA_BOOTSTRAP or kafka.bootstrap to your brokers"
        ) from exc
    except KafkaAccessError as exc:
        raise StartupError(str(exc)) from exc


async def topic_facts(settings: Settings, topics: list[str], timeout_s: float = 10.0) -> TopicFacts:
    """Partition counts from one metadata request (aiokafka's client: no warnings on stderr)."""
    client = AIOKafkaClient(
        bootstrap_servers=settings.kafka.bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **client_kwargs(settings.kafka.security),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout_s)
    finally:
        await client.close()
    present = metadata.topics()
    return TopicFacts(
        {t: len(metadata.partitions_for_topic(t) or ()) if t in present else None for t in topics}
    )


def input_topic_problem(settings: Settings, facts: TopicFacts) -> str | None:
    """Missing input topics, or counts that break co-partitioning (events.md); None when fine."""
    names = settings.kafka.topics
    counts = {t: facts.partitions.get(t) for t in (names.messages, names.orders)}
    missing = [t for t, n in counts.items() if n is None]
    if missing:
        what = (
            f"input topic {missing[0]} does"
            if len(missing) == 1
            else f"input topics {' and '.join(missing)} do"
        )
        return (
            f"{what} not exist; run `kefu-pulse topics create` "
            f"(it creates all four with kafka.partitions = {settings.kafka.partitions})"
        )
    wanted = settings.kafka.partitions
    if set(counts.values()) != {wanted}:
        found = ", ".join(f"{t} has {n}" for t, n in counts.items())
        return (
            f"the input topics are not co-partitioned: {found} partitions and kafka.partitions is "
            f"{wanted}; one buyer's messages and orders must share a partition, so give both topics "
            f"the same count and set kafka.partitions to it ({OPERATIONS_DOC})"
        )
    return None


async def require_input_topics(settings: Settings) -> None:
    names = settings.kafka.topics
    problem = input_topic_problem(settings, await topic_facts(settings, [names.messages, names.orders]))
    if problem is not None:
        raise StartupError(problem)
