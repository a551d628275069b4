"""Issue 25, "10,000 agents in one shop" and "10,000 alerts firing at once", at the leader:
its real round (Runtime.lead) on real Redis, over a shop whose every agent has a buyer waiting
past the threshold. Every agent gets exactly one `firing` event per episode, none folded into
`_other`, while /metrics still folds the agents past processing.max_agents_per_shop.

10,000 needs the firing set's script to take that many fields at once (replace_alerts.lua,
fixed separately); 1,500 (three times the label cap) does not. Redis db 13, flushed first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import msgspec
import pytest
import redis

from agents.core.alerts import WAITING, AlertEvent
from agents.worker.runtime import Runtime
from config.settings import Settings
from streams.wire.deadletter import DeadLetter
from streams.wire.records import Record
from tests.integration.harness import Stack
from tests.retry_faults import message

DB = 13
NOW = time.time_ns() // 1_000_000
WAIT_STARTED = NOW - 60_000  # past the default threshold of 15 s
ROUNDS = 2
CAP = Settings().processing.max_agents_per_shop


def agent(index: int) -> str:
    return f"s1:a{index:05d}"


def waiting_buyers(agents: int) -> list[Record]:
    """One buyer waiting on each agent since WAIT_STARTED, spread over four partitions."""
    records = []
    for i in range(agents):
        record = message("c.messages", i % 4, i // 4, f"tb_{i}", WAIT_STARTED)
        event = msgspec.json.decode(record.value or b"") | {"agent_id": agent(i)}
        records.append(
            Record(record.topic, record.partition, record.offset, record.key, msgspec.json.encode(event))
        )
    return records


async def lead_rounds(url: str, agents: int) -> tuple[list[AlertEvent], Runtime, str]:
    sent: list[AlertEvent] = []

    async def alert_sink(events: Sequence[AlertEvent]) -> None:
        sent.extend(events)

    async def no_dead_letters(_: Sequence[DeadLetter]) -> None:
        raise AssertionError("every record here is valid")

    settings = msgspec.structs.replace(Settings(), redis=msgspec.structs.replace(Settings().redis, url=url))
    runtime = Runtime.create(settings, no_dead_letters, alert_sink)
    try:
        runtime.processor.input_topics = ("c.messages", "c.orders")
        runtime.processor.partitioner = None  # the records' partitions are this test's own
        runtime.processor.clock = lambda: NOW
        report = await runtime.processor.process(waiting_buyers(agents))
        assert report.outcomes == {("c.messages", "applied"): agents}
        for second in range(ROUNDS):
            await runtime.lead(NOW + second * 1_000)
        exposition = runtime.exposition().decode()
    finally:
        await runtime.close()
    return sent, runtime, exposition


@pytest.mark.parametrize("agents", [1_500, 10_000])
def test_every_agent_alerts_once_however_many_and_only_metrics_fold(stack: Stack, agents: int) -> None:
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        sent, runtime, exposition = asyncio.run(lead_rounds(url, agents))
        assert not runtime.deposed, "the firing set was refused: the leader deposed itself"
        firing = [e for e in sent if e.alert == WAITING]
        assert all(e.state == "firing" for e in firing)
        assert sorted(e.agent_id for e in firing) == [agent(i) for i in range(agents)]
        assert len({e.alert_id for e in firing}) == agents, "one episode per agent"
        assert runtime.metrics.alerts.labels(WAITING, "firing")._value.get() == agents
        [floor] = runtime.collector.snapshot.floors
        assert len(floor.agents) == CAP and floor.agents[-1].agent == "_other"
        other = agents - (CAP - 1)
        assert f'kefu_waiting_buyers{{agent="_other",shop="s1"}} {other}.0' in exposition
        assert f'agent="{agent(agents - 1)}"' not in exposition
    finally:
        client.flushdb()
        client.close()
