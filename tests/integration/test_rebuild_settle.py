"""`rebuild` applies behind (agents/store/apply_behind.py): each batch's apply lands while the
next one is read, so the last one is still in flight when the input ends. Replay settles it
before it returns, so the count it reports and the state it leaves are the whole input's.

On real Kafka; the apply here lands a batch only when the next one comes or at the settle, as
the store applying behind does, so a replay that returned unsettled would miss its last batch
for certain (with the real store it would be a race: the closing command cancels the apply)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
from aiokafka import TopicPartition

from config.settings import Settings, settings_from_yaml
from streams.commands.rebuild_replay import replay
from streams.wire.records import KafkaRecord
from tests.integration.harness import Deployment

RECORDS = 1_200


class Counted:
    def begin(self, total: int) -> None:
        self.total = total

    def advance(self, records: int) -> None:
        pass


class AppliedBehind:
    """What reached Redis, and the batch still in flight."""

    def __init__(self) -> None:
        self.landed: list[int] = []
        self.in_flight: list[int] = []
        self.calls: list[str] = []

    async def apply(self, batch: Sequence[KafkaRecord]) -> None:
        self.landed += self.in_flight  # a commit waits for the apply before it
        self.in_flight = [record.offset for record in batch]
        self.calls.append("apply")

    async def settle(self) -> None:
        self.landed += self.in_flight
        self.in_flight = []
        self.calls.append("settle")


def settings_of(deployment: Deployment) -> Settings:
    settings = settings_from_yaml(deployment.config.read_text())
    kafka = msgspec.structs.replace(settings.kafka, bootstrap=deployment.stack.bootstrap)
    return msgspec.structs.replace(settings, kafka=kafka)


def test_replay_settles_its_last_batch_before_it_returns(deployment: Deployment) -> None:
    deployment.create_topics()
    deployment.produce([("messages", f"k{i}".encode(), b"{}") for i in range(RECORDS)])
    topic = deployment.topics["messages"]
    partitions = [TopicPartition(topic, p) for p in range(deployment.partitions)]
    behind, tally = AppliedBehind(), Counted()

    rebuilt, _ = asyncio.run(replay(settings_of(deployment), partitions, behind.apply, behind.settle, tally))

    assert tally.total == rebuilt.applied == RECORDS
    assert len(behind.landed) == RECORDS and behind.in_flight == []
    assert behind.calls[-1] == "settle" and behind.calls.count("settle") == 1
