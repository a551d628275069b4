"""The maintenance commands' guard: rebuild and repartition rewrite state that running workers own."""

from __future__ import annotations

from aiokafka import TopicPartition
from kafka.admin import KafkaAdminClient

from config.settings import Settings
from streams.kafka_security import client_kwargs


class WorkersRunning(RuntimeError):
    pass


def input_partitions_of_stopped_group(settings: Settings) -> list[TopicPartition]:
    """Every partition of the two input topics; raises WorkersRunning while the group has members."""
    topics = [settings.kafka.topics.messages, settings.kafka.topics.orders]
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap,
        client_id="kefu-pulse-maintenance",
        **client_kwargs(settings.kafka.security),
    )
    try:
        groups = admin.describe_groups([settings.kafka.group])
        described = admin.describe_topics(topics)
    finally:
        admin.close()
    members = len(groups.get(settings.kafka.group, {}).get("members") or [])
    if members:
        raise WorkersRunning(
            f"{members} worker(s) of group {settings.kafka.group!r} are consuming; stop them first"
        )
    return sorted(TopicPartition(t["name"], p["partition_index"]) for t in described for p in t["partitions"])
