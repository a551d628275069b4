"""`kefu-pulse simulate` on real Kafka: agent status goes to the agents topic when it exists, and a
missing one (topics made before v3) costs one warning line, never a crash or an auto-created topic."""

from __future__ import annotations

import asyncio
import io
import json

import msgspec
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from rich.console import Console

from config.settings import Settings, settings_from_yaml
from streams.contract.events import AgentStatus
from streams.simulation.simulate import produce_history
from streams.simulation.traffic import TrafficShape
from streams.wire.topics import create_topics
from tests.integration.harness import Deployment

SHAPE = TrafficShape(shops=1, agents=3, rate=0.5, rating_share=0.35, agent_shifts=True)
HOURS = 3_600_000


def settings_of(deployment: Deployment, agents_topic: str) -> Settings:
    settings = settings_from_yaml(deployment.config.read_text())
    topics = msgspec.structs.replace(settings.kafka.topics, agents=agents_topic)
    kafka = msgspec.structs.replace(settings.kafka, bootstrap=deployment.stack.bootstrap, topics=topics)
    return msgspec.structs.replace(settings, kafka=kafka)


def history(settings: Settings) -> tuple[int, str]:
    out = io.StringIO()
    start = 1_764_000_000_000
    sent = asyncio.run(produce_history(settings, SHAPE, start, start + 10 * HOURS, 5, Console(file=out)))
    return sent, out.getvalue()


def admin(deployment: Deployment) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=deployment.stack.bootstrap, **deployment.kafka_client_kwargs())


def test_a_missing_agents_topic_is_one_warning_and_stays_missing(deployment: Deployment) -> None:
    deployment.create_topics()
    missing = deployment.topics["agents"] + "-missing"
    sent, said = history(settings_of(deployment, missing))
    assert sent > 1000
    warnings = [line for line in said.splitlines() if "does not exist" in line]
    assert len(warnings) == 1 and missing in warnings[0], said
    client = admin(deployment)
    try:
        assert missing not in client.list_topics()  # not auto-created with the broker's defaults
    finally:
        client.close()
    # All of the rest went out, and the closing answers to buyers left waiting after it.
    messages = deployment.read_topic("messages", 1)
    assert len(messages) + len(deployment.read_topic("orders", sent - len(messages))) >= sent


def test_status_changes_go_to_the_agents_topic_keyed_by_agent(deployment: Deployment) -> None:
    deployment.create_topics()
    topic = deployment.topics["agents"]
    client = admin(deployment)
    try:
        if topic not in client.list_topics():  # `topics create` may not make it yet
            client.create_topics([NewTopic(topic, 2, 1)])
    finally:
        client.close()
    _, said = history(settings_of(deployment, topic))
    assert "does not exist" not in said
    records = deployment.read_topic("agents", 3 * 3)  # each agent: online, away…, offline
    latest: dict[str, AgentStatus] = {}
    for record in records:
        event = msgspec.json.decode(record.value, type=AgentStatus)
        assert record.key == f"{event.shop_id}:{event.agent_id}".encode()
        assert record.timestamp == event.ts  # history carries its event time
        latest[event.agent_id] = max(latest.get(event.agent_id, event), event, key=lambda e: e.ts)
    assert sorted(latest) == [f"shop0:agent{a}" for a in range(3)]
    assert {e.status for e in latest.values()} == {"offline"}  # the shift ended, or stopping logged them out
    assert {json.loads(r.value)["status"] for r in records} >= {"online", "away", "offline"}


def test_topics_just_created_are_listed_when_create_topics_returns(deployment: Deployment) -> None:
    """The demo's first run creates the topics and asks at once whether `kefu.agents` exists: the
    broker's answer to the creation came before its metadata spread, and the demo said the topic
    did not exist (seen on a fresh clone)."""
    settings = settings_of(deployment, f"{deployment.topics['agents']}.fresh")
    result = create_topics(settings)
    created = [name for name, done in result.items() if done.startswith("created")]
    assert settings.kafka.topics.agents in created
    client = admin(deployment)
    try:
        assert set(created) <= set(client.list_topics())
    finally:
        client.close()
