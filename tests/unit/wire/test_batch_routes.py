"""kefu.agents beside the buyer topics: one fetch, a batch per handler, the same guarantees
(tests/unit/streams/test_batch_consumer.py holds the single-route ones)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from faust.types import TP

from streams.wire.batch_consumer import BatchRoute
from streams.wire.records import Record
from tests.unit.wire.test_batch_consumer import LEADER, MESSAGES, ORDERS, StandIn, fetched

AGENTS = TP("kefu.agents", 2)


def routes(buyers: list[list[tuple[str, int]]], statuses: list[list[tuple[str, int]]]) -> BatchRoute:
    async def buyer_handler(records: Sequence[Record]) -> None:
        buyers.append([(r.topic, r.offset) for r in records])

    async def status_handler(records: Sequence[Record]) -> None:
        statuses.append([(r.topic, r.offset) for r in records])

    route = BatchRoute(frozenset({MESSAGES.topic, ORDERS.topic}), buyer_handler)
    route.add(frozenset({AGENTS.topic}), status_handler)
    return route


def test_each_handler_gets_its_topics_of_one_fetch_as_one_batch() -> None:
    buyers: list[list[tuple[str, int]]] = []
    statuses: list[list[tuple[str, int]]] = []
    route = routes(buyers, statuses)
    consumer = StandIn().bind()
    records = {
        MESSAGES: fetched(MESSAGES, 5),
        AGENTS: fetched(AGENTS, 3, 4),
        ORDERS: fetched(ORDERS, 9),
        LEADER: fetched(LEADER, 1),
    }
    asyncio.run(consumer._deliver(route, records, None))
    assert buyers == [[("kefu.messages", 5), ("kefu.orders", 9)]]
    assert statuses == [[("kefu.agents", 3), ("kefu.agents", 4)]]
    assert consumer.per_record == [1]
    assert route.applied == {MESSAGES: 6, ORDERS: 10, AGENTS: 5}
    assert set(consumer.inbound) == {MESSAGES, ORDERS, AGENTS}


def test_a_fetch_of_buyer_topics_only_never_calls_the_status_handler() -> None:
    buyers: list[list[tuple[str, int]]] = []
    statuses: list[list[tuple[str, int]]] = []
    asyncio.run(StandIn().bind()._deliver(routes(buyers, statuses), {MESSAGES: fetched(MESSAGES, 1)}, None))
    assert buyers == [[("kefu.messages", 1)]] and statuses == []


def test_a_failing_status_batch_crashes_the_consumer_and_commits_nothing_of_the_fetch() -> None:
    stand_in = StandIn()
    consumer = stand_in.bind()

    async def fine(records: Sequence[Record]) -> None:
        return None

    async def broken(records: Sequence[Record]) -> None:
        raise ValueError("a bug in status processing")

    route = BatchRoute(frozenset({MESSAGES.topic}), fine)
    route.add(frozenset({AGENTS.topic}), broken)
    with pytest.raises(ValueError, match="a bug in status processing"):
        asyncio.run(
            consumer._deliver(route, {MESSAGES: fetched(MESSAGES, 1), AGENTS: fetched(AGENTS, 1)}, None)
        )
    assert [str(e) for e in stand_in.crashed] == ["a bug in status processing"]
    assert route.applied == {} and stand_in._batch_idle.is_set()


def test_records_fetched_before_a_rebalance_reach_no_handler() -> None:
    buyers: list[list[tuple[str, int]]] = []
    statuses: list[list[tuple[str, int]]] = []
    stand_in = StandIn(flow_active=False)
    asyncio.run(stand_in.bind()._deliver(routes(buyers, statuses), {AGENTS: fetched(AGENTS, 1)}, None))
    assert buyers == statuses == [] and stand_in.seeks == 1
