"""The maintenance commands' guard: rebuild and repartition rewrite state that running workers own."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError

from config.errors import KefuError
from config.settings import Settings
from streams.wire.security import admin_client

# A broker that has just started has no group coordinator until it created its offsets topic:
# a moment's wait, not an error to show (the demo's first run rebuilds right after start-up).
COORDINATOR_WAIT_S = 30.0


class WorkersRunning(KefuError, RuntimeError):
    pass


def input_partitions_of_stopped_group(settings: Settings, *, agents: bool = False) -> list[TopicPartition]:
    """Every partition of the two buyer topics, and with `agents` of the agent status topic if it
    exists (v3; a v2 setup has none); raises WorkersRunning while the group has members."""
    topics = [settings.kafka.topics.messages, settings.kafka.topics.orders]
    admin = admin_client(settings.kafka, "kefu-pulse-maintenance", timeout_s=30.0)
    try:
        groups = describe_group(admin, settings.kafka.group)
        if agents and settings.kafka.topics.agents in admin.list_topics():
            topics.append(settings.kafka.topics.agents)
        described = admin.describe_topics(topics)
    finally:
        admin.close()
    members = len(groups.get(settings.kafka.group, {}).get("members") or [])
    if members:
        raise WorkersRunning(
            f"{members} worker(s) of group {settings.kafka.group!r} are consuming; stop them first"
        )
    return sorted(TopicPartition(t["name"], p["partition_index"]) for t in described for p in t["partitions"])


def group_state(described: Mapping[str, Any]) -> str:
    """One group of `describe_group`'s answer: the broker's word for its state (Stable,
    PreparingRebalance, Empty...). kafka-python names the field `group_state`, after the protocol."""
    return str(described.get("group_state") or "Empty")


def describe_group(admin: Any, group: str) -> dict[str, Any]:
    """The group as the broker describes it, waiting out a coordinator that a broker which
    has just started has not elected yet (kafka-python raises instead of waiting)."""
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            return dict(admin.describe_groups([group]))
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
