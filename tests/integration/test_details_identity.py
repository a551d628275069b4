"""The drill-down rows through the real write path: a generated month of traffic, applied live
day by day through the worker's BatchProcessor onto the memory store and onto real Redis.
For every agent and day, each list's row count is the number its day bucket explains
(agents/core/details.py), the two stores hold the same rows, and a retried batch or an outbox
applied again changes no row. Redis db 13 (shared, one test at a time, with
test_redis_outage_on_assignment.py)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kafka.partitioner.default import murmur2
from prometheus_client import CollectorRegistry

from agents.core.details import (
    DetailKind,
    Flag,
    decode_consultation,
    decode_silent_order,
    explained_count,
    matches,
)
from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import FIELD_NAMES, SHOP_LEVEL, Counter, Vector
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store import keys, outbox
from agents.store.connect import connect
from agents.store.memory import MemoryPartitionStore
from agents.store.protocols import PartitionStore
from agents.store.redis_store import RedisStore
from agents.store.scripts import run_scripts
from config.calendar import MS_PER_HOUR
from config.settings import Settings
from streams.wire.decoding import EventDecoder
from streams.wire.records import Record
from tests.integration.harness import Stack, chat_message, order_event
from tests.integration.redis_processor import no_dead_letters

DB = 13
TOPICS = ("c.messages", "c.orders")
PARTITIONS = 4
SHOP = "s1"
AGENTS = ("s1:a", "s1:b", "s1:c")
DAYS = 34  # more than the `28d` window and than details_days (31)
POLICY = PolicyBook(Settings())(SHOP)
# The days of the month generated, up to today: set again when the module starts (begin_day), as a
# session may cross midnight between the import and this module's tests (business_day.py).
TODAY = FIRST_DAY = CROSSING_DAY = 0
KEPT_DAYS = range(0)  # the lists' days still in Redis: older rows have expired


def begin_day(now_ms: int) -> None:
    """The month up to the business day of `now_ms`, and its traffic."""
    global TODAY, FIRST_DAY, CROSSING_DAY, KEPT_DAYS, TRAFFIC
    TODAY = POLICY.calendar.day(now_ms)
    FIRST_DAY = TODAY - DAYS + 1
    CROSSING_DAY = TODAY - 30  # a consultation whose order is refunded 30 days later, today
    KEPT_DAYS = range(TODAY - POLICY.details_days + 1, TODAY + 1)
    TRAFFIC = generated()


pytestmark = pytest.mark.one_business_day(seconds=120)


@pytest.fixture(scope="module", autouse=True)
def business_day() -> None:
    """Today as the module starts (its fixtures' data and its tests' days are that day's)."""
    begin_day(time.time_ns() // 1_000_000)


class Traffic:
    """Kafka records, keyed and partitioned as producers would, each with the day it arrives."""

    def __init__(self) -> None:
        self.records: list[tuple[int, Record]] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.serial = 0

    def add(self, arrives: int, event: dict[str, Any]) -> None:
        self.serial += 1
        event["event_id"] = f"e{self.serial}"
        topic = TOPICS[1] if event["type"] == "order" else TOPICS[0]
        key = f"{event['shop_id']}:{event['buyer_id']}".encode()
        self.records.append((arrives, Record(topic, 0, 0, key, json.dumps(event).encode())))

    def by_day(self) -> Iterator[tuple[int, list[Record]]]:
        """Each day's records in arrival order, with their partitions and offsets."""
        self.records.sort(key=lambda pair: pair[0])  # stable: arrival order within a day kept
        for day in range(FIRST_DAY, TODAY + 1):
            batch = []
            for arrives, record in self.records:
                if arrives != day:
                    continue
                partition = (murmur2(record.key) & 0x7FFFFFFF) % PARTITIONS
                offset = self.offsets[(record.topic, partition)] = (
                    self.offsets.get((record.topic, partition), -1) + 1
                )
                batch.append(Record(record.topic, partition, offset, record.key, record.value))
            yield day, batch


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def generated(seed: int = 29) -> Traffic:
    """A month of consultations: replies fast, slow, late (arriving a day later) or none;
    orders credited, silent, paid before created, refunded in part or whole, some weeks later;
    ratings; a rule-of-thumb mix, not a model of any shop."""
    rng = random.Random(seed)
    traffic = Traffic()
    for day in range(FIRST_DAY, TODAY + 1):
        start_of_day = POLICY.calendar.day_start_ms(day)
        for n in range(rng.randint(4, 9)):
            buyer = f"b{rng.randint(0, 40)}"  # returning buyers: after-sale and repeat orders
            agent = rng.choice(AGENTS)
            start = start_of_day + rng.randint(8 * 3600, 22 * 3600) * 1000 + rng.randint(0, 999)
            traffic.add(day, chat_message("", buyer, "buyer", start, agent=agent))
            reply = rng.choice((None, 3_000, 14_000, 16_000, 170_000, 400_000))
            if reply is not None:  # a late connector delivers some replies the next day
                arrives = day + 1 if rng.random() < 0.2 and day < TODAY else day
                traffic.add(arrives, chat_message("", buyer, "agent", start + reply, agent=agent))
            if rng.random() < 0.15:
                score = rng.randint(1, 5)
                rated = {"type": "rating", "shop_id": SHOP, "buyer_id": buyer, "agent_id": agent}
                traffic.add(day, rated | {"ts": start + 600_000, "score": score})
            if rng.random() < 0.45:
                _order(traffic, rng, buyer, f"T{day}.{n}", day, start + rng.randint(60, 7200) * 1000)
        if rng.random() < 0.5:  # a buyer who orders without writing: a silent order
            _order(traffic, rng, f"q{day}", f"S{day}", day, start_of_day + 15 * MS_PER_HOUR)
    _crossing(traffic)
    return traffic


def _order(traffic: Traffic, rng: random.Random, buyer: str, order_id: str, day: int, created: int) -> None:
    amount = rng.choice((990, 2500, 19900))
    event = order_event("", buyer, order_id, "created", created, yuan(amount))
    shape = rng.choice(("created", "paid", "paid", "paid_first", "refunded", "cancelled"))
    paid = created + rng.randint(1, 3600) * 1000
    if shape == "paid_first":  # the payment arrives first, its creation the next day
        traffic.add(day, order_event("", buyer, order_id, "paid", paid, yuan(amount)))
        traffic.add(min(day + 1, TODAY), event)
        return
    traffic.add(day, event)
    if shape in ("paid", "refunded", "cancelled"):
        traffic.add(day, order_event("", buyer, order_id, "paid", paid, yuan(amount)))
    if shape == "cancelled":
        traffic.add(day, order_event("", buyer, order_id, "cancelled", paid + 1000, yuan(amount)))
    if shape == "refunded":
        later = min(TODAY, day + rng.choice((0, 3, 20)))
        refund = rng.choice((None, amount // 3))
        ts = max(paid + 1000, POLICY.calendar.day_start_ms(later) + 20 * MS_PER_HOUR)
        traffic.add(
            later, order_event("", buyer, order_id, "refunded", ts, None if refund is None else yuan(refund))
        )


def _crossing(traffic: Traffic) -> None:
    """An inquiry credited with a payment, refunded 30 days later: past the `28d` window."""
    start = POLICY.calendar.day_start_ms(CROSSING_DAY) + 9 * MS_PER_HOUR
    traffic.add(CROSSING_DAY, chat_message("", "x1", "buyer", start, agent="s1:a"))
    traffic.add(CROSSING_DAY, chat_message("", "x1", "agent", start + 5_000, agent="s1:a"))
    traffic.add(CROSSING_DAY, order_event("", "x1", "X1", "paid", start + 60_000, "100.00"))
    refunded = POLICY.calendar.day_start_ms(TODAY) + 60_000
    traffic.add(TODAY, order_event("", "x1", "X1", "refunded", refunded, "40.00"))


TRAFFIC = Traffic()  # the month's records: begin_day makes them, as the module starts


def processor(store: PartitionStore, clock: list[int]) -> BatchProcessor:
    return BatchProcessor(
        store,
        PolicyBook(Settings()),
        EventDecoder(),
        no_dead_letters,
        WorkerMetrics.create(CollectorRegistry()),
        clock=lambda: clock[0],
        input_topics=TOPICS,
    )


async def live(store: PartitionStore, retry: bool = False) -> None:
    """Each day's records as that day's batch, at that day's end (so the `28d` window moves);
    with `retry`, every batch is processed a second time by a fresh worker."""
    clock = [0]
    for day, batch in TRAFFIC.by_day():
        clock[0] = min(POLICY.calendar.day_start_ms(day + 1) - 1, time.time_ns() // 1_000_000)
        await processor(store, clock).process(batch)
        if retry:
            await processor(store, clock).process(batch)


def details_keys() -> list[str]:
    return [keys.details_key(SHOP, agent, day) for agent in (*AGENTS, SHOP_LEVEL) for day in KEPT_DAYS]


def day_vector(counters: dict[str, int]) -> Vector:
    return [counters.get(name, 0) for name in FIELD_NAMES]


def check_identity(policy: ShopPolicy, rows: dict[str, dict[str, bytes]], days: dict[str, Vector]) -> int:
    """Every list of every agent and day against its day bucket; how many rows were checked."""
    checked = 0
    for agent in AGENTS:
        for day in KEPT_DAYS:
            key = keys.details_key(SHOP, agent, day)
            vector = days[keys.bucket_key(SHOP, agent, "d", day)]
            found = [decode_consultation(blob) for blob in rows[key].values()]
            where = f"{agent} on day {day}"
            assert len(found) == vector[Counter.CONSULTATIONS], where
            for kind in DetailKind:
                if kind in (DetailKind.SLOW, DetailKind.REFUNDED, DetailKind.SILENT_ORDERS):
                    continue
                count = sum(matches(kind, row, 0) for row in found)
                assert count == explained_count(kind, vector), f"{kind} of {where}"
            for slot, target_ms in enumerate(policy.response_targets_ms):
                slow = sum(matches(DetailKind.SLOW, row, target_ms) for row in found)
                assert slow == explained_count(DetailKind.SLOW, vector, slot), f"slow {slot} of {where}"
            assert sum(row.refund_fen for row in found) == vector[Counter.REFUNDED_FEN], where
            paid_sales = sum(row.sales_fen for row in found if row.has(Flag.PAID))
            assert paid_sales == vector[Counter.SALES_FEN], where
            checked += len(found)
    for day in KEPT_DAYS:
        silent = rows[keys.details_key(SHOP, SHOP_LEVEL, day)]
        vector = days[keys.bucket_key(SHOP, SHOP_LEVEL, "d", day)]
        orders = [decode_silent_order(blob) for blob in silent.values()]
        assert len(orders) == explained_count(DetailKind.SILENT_ORDERS, vector), f"silent orders of {day}"
        checked += len(orders)
    return checked


def bucket_keys() -> list[str]:
    return [keys.bucket_key(SHOP, agent, "d", day) for agent in (*AGENTS, SHOP_LEVEL) for day in KEPT_DAYS]


@pytest.fixture(scope="module")
def memory() -> MemoryPartitionStore:
    store = MemoryPartitionStore()
    asyncio.run(live(store))
    return store


@pytest.fixture
def url(stack: Stack) -> str:
    url = f"{stack.redis_url.rsplit('/', 1)[0]}/{DB}"
    redis.Redis.from_url(url).flushdb()
    return url


async def redis_contents(url: str) -> tuple[dict[str, dict[str, bytes]], dict[str, Vector]]:
    store = RedisStore(connect(url))
    try:
        names = details_keys()
        rows = dict(zip(names, await store.details(names), strict=True))
        async with store.client.pipeline(transaction=False) as pipe:
            for key in bucket_keys():
                pipe.hgetall(key)
            hashes = await pipe.execute()
        days = {
            key: day_vector({k.decode(): int(v) for k, v in h.items()})
            for key, h in zip(bucket_keys(), hashes, strict=True)
        }
        return rows, days
    finally:
        await store.close()


def memory_contents(store: MemoryPartitionStore) -> tuple[dict[str, dict[str, bytes]], dict[str, Vector]]:
    names = details_keys()
    rows = dict(zip(names, asyncio.run(store.details(names)), strict=True))
    return rows, {key: day_vector(store.counters.get(key, {})) for key in bucket_keys()}


def test_every_list_counts_the_number_it_explains_on_the_memory_store(memory: MemoryPartitionStore) -> None:
    rows, days = memory_contents(memory)
    checked = check_identity(POLICY, rows, days)
    assert checked > 150  # a month of rows, not an empty store that agrees with itself
    crossing = decode_consultation(rows[keys.details_key(SHOP, "s1:a", CROSSING_DAY)]["x1"])
    # Refunded past the `28d` window: the day is history, its number and its row both frozen.
    assert crossing.has(Flag.PAID) and crossing.refund_fen == 0
    assert days[keys.bucket_key(SHOP, "s1:a", "d", CROSSING_DAY)][Counter.REFUNDED_FEN] == sum(
        decode_consultation(b).refund_fen for b in rows[keys.details_key(SHOP, "s1:a", CROSSING_DAY)].values()
    )
    kinds = {kind: 0 for kind in DetailKind}
    shop_level = {keys.details_key(SHOP, SHOP_LEVEL, day) for day in KEPT_DAYS}
    for key, hash_ in rows.items():
        if key in shop_level:
            kinds[DetailKind.SILENT_ORDERS] += len(hash_)
            continue
        for blob in hash_.values():
            row = decode_consultation(blob)
            for kind in DetailKind:
                kinds[kind] += not kind.shop_level and matches(kind, row, 15_000)
    assert all(kinds.values()), f"every kind has rows to check: {kinds}"


def test_redis_holds_the_memory_stores_rows_and_counters_and_a_retry_changes_none(
    memory: MemoryPartitionStore, url: str
) -> None:
    asyncio.run(live_on_redis(url, retry=True))
    rows, days = asyncio.run(redis_contents(url))
    assert (rows, days) == memory_contents(memory)
    assert check_identity(POLICY, rows, days) > 150
    ttl = redis.Redis.from_url(url).pexpiretime(keys.details_key(SHOP, "s1:a", CROSSING_DAY))
    assert ttl == POLICY.calendar.day_start_ms(CROSSING_DAY + POLICY.details_days) + MS_PER_HOUR


async def live_on_redis(url: str, retry: bool = False) -> None:
    store = RedisStore(connect(url))
    try:
        await live(store.batches, retry)
    finally:
        await store.close()


def test_an_old_outbox_applied_again_after_a_newer_one_changes_no_row(url: str) -> None:
    """A row is a value, not an increment: an old entry written again would put an old row
    back. The agent's marker refuses it, as it refuses its counters."""
    day = TODAY - 1
    start = POLICY.calendar.day_start_ms(day) + 10 * MS_PER_HOUR
    ask = Record(TOPICS[0], 0, 0, b"s1:b1", json.dumps(chat_message("m1", "b1", "buyer", start)).encode())
    answer = Record(
        TOPICS[0], 0, 1, b"s1:b1", json.dumps(chat_message("m2", "b1", "agent", start + 9_000)).encode()
    )
    clock = [POLICY.calendar.day_start_ms(day + 1) - 1]
    client = redis.Redis.from_url(url)

    async def run() -> None:
        store = RedisStore(connect(url))
        try:
            await processor(store.batches, clock).process([ask])
            first = outbox.decode(client.get(keys.outbox_key(0)))  # type: ignore[arg-type]
            await processor(store.batches, clock).process([answer])
            await run_scripts(store.client, outbox.apply_calls([first]))
        finally:
            await store.close()

    asyncio.run(run())
    row = decode_consultation(client.hget(keys.details_key(SHOP, "s1:a", day), "b1"))  # type: ignore[arg-type]
    assert row.has(Flag.REPLIED) and row.first_reply == start + 9_000


def test_an_outbox_written_before_rows_existed_still_decodes_and_applies(url: str) -> None:
    """An entry of the old layout (agent shares of counters and waiting only) may be pending at
    an upgrade: it decodes with no rows, and the script applies it."""
    import msgspec

    key = keys.bucket_key(SHOP, "s1:a", "d", TODAY)
    old = [0, 7, {keys.agent_tag(SHOP, "s1:a"): [[[key, 2 * 10**13, {"c": 1}]], []]}, []]
    entry = outbox.decode(msgspec.msgpack.encode(old))
    assert entry.agents[keys.agent_tag(SHOP, "s1:a")].details == []

    async def run() -> None:
        store = RedisStore(connect(url))
        try:
            await run_scripts(store.client, outbox.apply_calls([entry]))
        finally:
            await store.close()

    asyncio.run(run())
    assert redis.Redis.from_url(url).hget(key, "c") == b"1"
