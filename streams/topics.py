"""The four topics of events.md, and creating them idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from config.settings import Settings
from streams.kafka_security import admin_client

INPUT_RETENTION_MS = 30 * 86_400_000  # `rebuild` re-reads input from retention: 28 days + margin


@dataclass(frozen=True, slots=True)
class TopicPlan:
    name: str
    partitions: int
    config: dict[str, str]


def topic_plans(settings: Settings) -> list[TopicPlan]:
    names = settings.kafka.topics
    partitions = settings.kafka.partitions
    retention = {"retention.ms": str(INPUT_RETENTION_MS)}
    return [
        TopicPlan(names.messages, partitions, retention),
        TopicPlan(names.orders, partitions, retention),
        TopicPlan(names.alerts, partitions, {}),
        TopicPlan(names.deadletter, partitions, retention),
    ]


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics; returns topic -> 'created' | 'exists (N partitions)'."""
    admin = admin_client(settings.kafka, "kefu-pulse-admin", timeout_s)
    try:
        present = set(admin.list_topics())
        wanted = [p.name for p in topic_plans(settings) if p.name in present]
        partitions_of = (
            {t["name"]: len(t["partitions"]) for t in admin.describe_topics(wanted)} if wanted else {}
        )
        result: dict[str, str] = {}
        for plan in topic_plans(settings):
            if plan.name in partitions_of:
                result[plan.name] = f"exists ({partitions_of[plan.name]} partitions)"
                continue
            try:
                admin.create_topics(
                    [NewTopic(plan.name, plan.partitions, 1, topic_configs=plan.config)],
                    timeout_ms=int(timeout_s * 1000),
                )
                result[plan.name] = "created"
            except TopicAlreadyExistsError:
                result[plan.name] = "exists"
        return result
    finally:
        admin.close()
