"""The topics of events.md (four, and v3's `kefu.agents`), and creating them idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from config.calendar import MS_PER_DAY
from config.errors import KefuError
from config.retention import input_retention_ms
from config.settings import Settings
from streams.wire.security import admin_client


@dataclass(frozen=True, slots=True)
class TopicPlan:
    name: str
    partitions: int
    config: dict[str, str]


def topic_plans(settings: Settings) -> list[TopicPlan]:
    names = settings.kafka.topics
    partitions = settings.kafka.partitions
    retention = {"retention.ms": str(input_retention_ms(settings))}
    return [
        TopicPlan(names.messages, partitions, retention),
        TopicPlan(names.orders, partitions, retention),
        TopicPlan(names.alerts, partitions, {}),
        TopicPlan(names.deadletter, partitions, retention),
        # v3 agent status: keyed by agent, so any count works; kafka.partitions spreads it over
        # as many workers as the buyer topics. Its history is kept as long as the reports'.
        TopicPlan(names.agents, partitions, retention),
    ]


def _retention_text(config: dict[str, str]) -> str:
    retention = config.get("retention.ms")
    return f", retention {int(retention) // MS_PER_DAY} days" if retention else ""


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics, and lengthen a shorter input retention to what reports need;
    returns topic -> what was done, with the retention it has now."""
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
                outcome = f"exists ({partitions_of[plan.name]} partitions)"
                result[plan.name] = outcome + _lengthen_retention(admin, plan)
                continue
            try:
                admin.create_topics(
                    [NewTopic(plan.name, plan.partitions, 1, topic_configs=plan.config)],
                    timeout_ms=int(timeout_s * 1000),
                )
                result[plan.name] = "created" + _retention_text(plan.config)
            except TopicAlreadyExistsError:
                result[plan.name] = "exists"
        _wait_until_listed(
            admin, [name for name, done in result.items() if done.startswith("created")], timeout_s
        )
        return result
    finally:
        admin.close()


def _wait_until_listed(admin: Any, topics: list[str], timeout_s: float) -> None:
    """Until the broker lists every topic just created: it answers the creation before its
    metadata has spread, and the demo's simulator, asking at once, found no `kefu.agents`."""
    deadline = time.monotonic() + timeout_s
    while topics and not set(topics) <= set(admin.list_topics()) and time.monotonic() < deadline:
        time.sleep(0.1)


def _lengthen_retention(admin: Any, plan: TopicPlan) -> str:
    """Raise a topic's retention to the plan's, never lower it (a longer one only costs disk)."""
    wanted = plan.config.get("retention.ms")
    if wanted is None:
        return ""
    resource = ConfigResource(ConfigResourceType.TOPIC, plan.name, configs=["retention.ms"])
    found = admin.describe_configs([resource], config_filter="all")
    value = found.get("topic", {}).get(plan.name, {}).get("retention.ms", {}).get("value")
    if value is None:  # kafka-python answers a refused describe with nothing, not an error
        raise RetentionNotSet(f"{plan.name}: could not read its retention.ms (not allowed to describe it?)")
    current = int(value)
    if current < 0 or current >= int(wanted):  # -1 keeps everything
        kept = "unlimited" if current < 0 else f"{current // MS_PER_DAY} days"
        return f", retention {kept}"
    change = ConfigResource(ConfigResourceType.TOPIC, plan.name, configs={"retention.ms": wanted})
    outcome = admin.alter_configs([change]).get("topic", {}).get(plan.name)
    if outcome != "OK":  # errors come back as the answer, not raised
        raise RetentionNotSet(f"{plan.name}: retention.ms could not be set to {wanted}: {outcome}")
    return f", retention set to {int(wanted) // MS_PER_DAY} days (was {current / MS_PER_DAY:g})"


class RetentionNotSet(KefuError, RuntimeError):
    """The broker refused to show or change an input topic's retention."""
