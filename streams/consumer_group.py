"""The maintenance commands' guard: rebuild and repartition rewrite state that running workers own."""

from __future__ import annotations

from aiokafka import TopicPartition

from config.settings import Settings
from streams.kafka_security import admin_client


class WorkersRunning(RuntimeError):
    pass


def input_partitions_of_stopped_group(settings: Settings) -> list[TopicPartition]:
    """Every partition of the two input topics; raises WorkersRunning while the group has members."""
    topics = [settings.kafka.topics.messages, settings.kafka.topics.orders]
    admin = admin_client(settings.kafka, "kefu-pulse-maintenance", timeout_s=30.0)
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
