"""The store's exactly-once contract, run alike against one Redis server and the three-master
Redis Cluster: the worker's own BatchProcessor, no Kafka, and the crashes and races that
workers sharing partitions meet, with outboxes applied in line and behind."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
import redis
from kafka.partitioner.default import murmur2
from msgspec.msgpack import encode

from agents.core.alerts import AlertEvent
from agents.core.policy import PolicyBook
from agents.core.projection import SHOP_LEVEL
from agents.core.windows import whole_minutes, window_reads
from agents.exposure.floor import FloorCache, FloorReader
from agents.processing.batch import BatchProcessor, BatchReport
from agents.store import batches as batches_module
from agents.store import keys
from agents.store.apply_behind import ApplyBehind
from agents.store.batches import COMMIT_PARTITION, RedisPartitionStore
from agents.store.connect import connect
from agents.store.errors import StoreBugError
from agents.store.floor_reads import NO_MINUTES_HELD, AgentReads, MinutesHeld, floor_plan
from agents.store.outbox import TOUCH_INDEX, Entry
from agents.store.protocols import PartitionCommit, PartitionStore
from agents.store.redis_store import (
    FLOOR_CHANGES,
    FLOOR_CHANGES_PER_CALL,
    FLOOR_READS_PER_CALL,
    WAITING_RING,
    RedisStore,
)
from agents.store.repartition import move_buyers
from agents.store.scripts import ScriptCall, run_scripts
from agents.store.writes import INDEX_TTL_MS
from config.settings import Settings
from streams.simulation.traffic import TrafficShape
from streams.wire.records import Record
from tests.integration import cluster
from tests.integration.harness import STACK_PREFIX, Stack
from tests.integration.redis_processor import redis_partitions, redis_processor
from tests.kafka_records import simulated
from tests.partition_store_contract import CLAUSES

TOPICS = ("c.messages", "c.orders")
PARTITIONS = 6
NOW = time.time_ns() // 1_000_000
SINGLE_DB = 7


RECORDS = simulated(6000, NOW, PARTITIONS, TOPICS)


def batches(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def processor(url: str) -> BatchProcessor:
    """A worker's processor with its own client (and so its own memory of applied outboxes)."""
    return redis_processor(url, NOW, TOPICS)


async def numbers(url: str) -> dict[str, Any]:
    """Every shop's floor as of NOW: per agent, waiting buyers and the `today` and `28d` windows."""
    store = RedisStore(connect(url))
    reader = FloorReader(store, PolicyBook(Settings()))
    out = {}
    for shop in await reader.shops(NOW):
        floor = await reader.floor(shop, NOW)
        out[shop] = {
            row.agent: (row.waiting_buyers, row.windows["today"], row.windows["28d"]) for row in floor.agents
        } | {"_totals": floor.totals.windows["28d"]}
    await store.client.aclose()
    return out


async def process_all(url: str, size: int = 1000) -> None:
    worker = processor(url)
    for batch in batches(RECORDS, size):
        await worker.process(batch)
    await redis_partitions(worker).client.aclose()


@pytest.fixture(scope="module")
def single_url(stack: Stack) -> str:
    base = stack.redis_url.rsplit("/", 1)[0]
    return f"{base}/{SINGLE_DB}"


@pytest.fixture(scope="module")
def cluster_url() -> str:
    return cluster.cluster_up(STACK_PREFIX)


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest, single_url: str, cluster_url: str) -> Iterator[str]:
    """An empty Redis of each kind."""
    if request.param == "redis":
        client = redis.Redis.from_url(single_url)
        client.flushdb()
        client.close()
        yield single_url
    else:
        client = cluster.sync_client(cluster_url)
        cluster.clear(client)
        client.close()
        yield cluster_url


@pytest.fixture(scope="module")
def reference(single_url: str) -> dict[str, Any]:
    """One worker, one server, batches of 1,000, nothing going wrong."""
    client = redis.Redis.from_url(single_url)
    client.flushdb()
    asyncio.run(process_all(single_url))
    result = asyncio.run(numbers(single_url))
    client.flushdb()
    return result


def test_the_numbers_do_not_depend_on_the_backend_or_the_batching(
    url: str, reference: dict[str, Any]
) -> None:
    asyncio.run(process_all(url, size=333))
    assert asyncio.run(numbers(url)) == reference
    assert sum(row[2].consultations for row in reference["shop0"].values() if isinstance(row, tuple)) > 50


@pytest.mark.parametrize("takeover", ["next batch", "assignment"])
def test_a_worker_dying_between_commit_and_apply_is_healed_by_the_next_owner(
    url: str, reference: dict[str, Any], takeover: str
) -> None:
    """Worker A commits a batch (buyer states, offsets, outbox) and dies before the agents have
    it. Worker B applies that outbox: before its own next commit on those partitions, or as
    the partitions are assigned to it (a partition with no more records needs that)."""

    async def scenario() -> None:
        parts = batches(RECORDS, 1000)
        a, b = processor(url), processor(url)
        for batch in parts[:2]:
            await a.process(batch)

        async def die(*_: object) -> None:
            raise ConnectionError("worker A was SIGKILLed")

        redis_partitions(a)._apply = die  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await a.process(parts[2])  # committed; its outboxes not applied
        assert await numbers(url) != reference
        if takeover == "assignment":
            assert await b.store.drain(range(PARTITIONS)) > 0
            rest = parts[3:]  # Kafka's committed offset is past the batch
        else:
            rest = parts[2:]  # the batch is redelivered: B skips it by the offsets
        for batch in rest:
            await b.process(batch)
        await redis_partitions(a).client.aclose()
        await redis_partitions(b).client.aclose()

    asyncio.run(scenario())
    assert asyncio.run(numbers(url)) == reference


def test_two_workers_racing_for_the_same_records_apply_them_once(url: str, reference: dict[str, Any]) -> None:
    """A rebalance hands B the partitions while A still holds a batch of them: both compute
    from the same state, A commits first, B's commit finds the fence moved and recomputes."""

    async def scenario() -> tuple[BatchReport, BatchReport]:
        a, b = processor(url), processor(url)
        a_done = asyncio.Event()
        commit = b.store.commit

        async def commit_after_a(commits: list[PartitionCommit]) -> set[int]:
            await a_done.wait()
            return await commit(commits)

        b.store.commit = commit_after_a  # type: ignore[method-assign]

        async def run_a() -> BatchReport:
            report = await a.process(RECORDS)
            a_done.set()
            return report

        reports = await asyncio.gather(run_a(), b.process(RECORDS))
        await redis_partitions(a).client.aclose()
        await redis_partitions(b).client.aclose()
        return reports

    report_a, report_b = asyncio.run(scenario())
    assert report_b.attempts == 2, "B's first commit should have met A's"
    assert report_b.skipped_already_applied == len(RECORDS) and not report_b.outcomes
    assert sum(report_a.outcomes.values()) == len(RECORDS)
    assert asyncio.run(numbers(url)) == reference


def test_applying_every_outbox_again_changes_nothing(url: str, reference: dict[str, Any]) -> None:
    asyncio.run(process_all(url))

    async def reapply() -> int:
        fresh = RedisStore(connect(url))  # no memory of what was applied
        found = await fresh.batches.drain(range(PARTITIONS))
        await fresh.client.aclose()
        return found

    assert asyncio.run(reapply()) == PARTITIONS
    assert asyncio.run(numbers(url)) == reference


def test_firing_alerts_are_replaced_as_a_whole(url: str) -> None:
    async def roundtrip() -> list[dict[tuple[str, str, str], int]]:
        store = RedisStore(connect(url))
        epoch = await store.take_leadership()
        seen = []
        for firing in ({("BuyerWaitingTooLong", "s1", "a}{"): 5}, {("FirstResponseSlow", "s1", "b"): 6}, {}):
            assert await store.store_firing_alerts(epoch, firing)
            current, stored = await store.firing_alerts()
            assert current == epoch
            seen.append(stored)
        await store.client.aclose()
        return seen

    assert asyncio.run(roundtrip()) == [
        {("BuyerWaitingTooLong", "s1", "a}{"): 5},
        {("FirstResponseSlow", "s1", "b"): 6},
        {},
    ]


def test_unsent_alert_events_stay_with_the_set_until_a_store_without_them(url: str) -> None:
    """The leader stores a change of the set with its events before sending them, then stores
    the set again without them once sent: by its difference (the hash holds one field more
    than the set then) or whole; a set read in between is the set alone."""
    key = ("BuyerWaitingTooLong", "s1", "a")
    event = AlertEvent(
        "BuyerWaitingTooLong", "firing", "s1", "a", 16.5, 15.0, 5, "BuyerWaitingTooLong/s1/a/5"
    )

    async def roundtrip() -> tuple[int, list[object]]:
        store = RedisStore(connect(url))
        epoch = await store.take_leadership()
        seen: list[object] = []
        assert await store.store_firing_alerts(epoch, {key: 5}, {}, [event])
        seen += [await store.firing_alerts(), await store.unsent_alerts()]
        assert await store.change_firing_alerts(epoch, {key: 5}, {key: 5}) is True
        seen += [await store.firing_alerts(), await store.unsent_alerts()]
        assert await store.store_firing_alerts(epoch, {}, None, [event])
        assert await store.store_firing_alerts(epoch, {})
        seen += [await store.firing_alerts(), await store.unsent_alerts()]
        await store.client.aclose()
        return epoch, seen

    epoch, seen = asyncio.run(roundtrip())
    assert seen == [(epoch, {key: 5}), [event], (epoch, {key: 5}), [], (epoch, {}), []]


def test_rebuild_deletes_what_the_replay_makes_again_and_keeps_the_alerts_and_notify_ledger(url: str) -> None:
    """The firing set and notify's ledger come from no input topic: deleted by a rebuild, an
    alert firing before it fired again under a new id after it (and the first never resolved),
    and a digest claimed that day went twice."""
    key = ("BuyerWaitingTooLong", "s1", "s1:a")

    async def rebuild_start() -> tuple[int, dict[tuple[str, str, str], int], bytes | None, int]:
        store = RedisStore(connect(url))
        client = store.client
        epoch = await store.take_leadership()
        assert await store.store_firing_alerts(epoch, {key: 5})
        await client.set("kp:notify:sent:BuyerWaitingTooLong/s1/s1:a/5", b"sent")
        await client.set(keys.buyer_key(0, "s1", "b1"), b"state")
        await store.delete_state()
        kept = await store.firing_alerts()
        ledger = await client.get("kp:notify:sent:BuyerWaitingTooLong/s1/s1:a/5")
        buyers = await client.exists(keys.buyer_key(0, "s1", "b1"))
        await client.delete(keys.ALERTS_KEY, "kp:notify:sent:BuyerWaitingTooLong/s1/s1:a/5")
        await client.aclose()
        return kept[0], kept[1], ledger, buyers

    epoch, firing, ledger, buyers = asyncio.run(rebuild_start())
    assert epoch > 0 and firing == {key: 5} and ledger == b"sent" and buyers == 0


def test_unsent_events_that_cannot_be_read_are_dropped_not_raised(url: str) -> None:
    """An infinite threshold is JSON null: a set stored with such an event failed every round
    after it (the leader's timer task raised, and its worker stopped)."""

    async def read() -> list[AlertEvent]:
        store = RedisStore(connect(url))
        epoch = await store.take_leadership()
        assert await store.store_firing_alerts(epoch, {})
        await store.client.hset(keys.ALERTS_KEY, "unsent", b'[{"alert":"x","threshold":null}]')
        unsent = await store.unsent_alerts()
        await store.client.hdel(keys.ALERTS_KEY, "unsent")
        await store.client.aclose()
        return unsent

    assert asyncio.run(read()) == []


def test_a_stale_leaders_firing_set_is_refused(url: str) -> None:
    """A leader that froze while another took a newer epoch cannot overwrite the newer one's set."""

    async def race() -> tuple[bool, int, dict[tuple[str, str, str], int]]:
        old, new = RedisStore(connect(url)), RedisStore(connect(url))
        stale = await old.take_leadership()
        current = await new.take_leadership()
        assert current == stale + 1
        assert await new.store_firing_alerts(current, {("BuyerWaitingTooLong", "s1", "a"): 7})
        refused = await old.store_firing_alerts(stale, {})
        epoch, firing = await old.firing_alerts()
        await old.client.aclose()
        await new.client.aclose()
        return refused, epoch, firing

    refused, epoch, firing = asyncio.run(race())
    assert refused is False and epoch == 2 and firing == {("BuyerWaitingTooLong", "s1", "a"): 7}


def test_the_cluster_has_three_masters_and_the_state_spreads_over_them(cluster_url: str) -> None:
    client = cluster.sync_client(cluster_url)
    cluster.clear(client)
    try:
        assert len(client.get_primaries()) == 3
        assert client.cluster_info()["cluster_state"] == "ok"
        asyncio.run(process_all(cluster_url))
        buyers_per_master = cluster.keys_per_master(client, keys.BUYER_KEY_PATTERN)
        assert all(n > 0 for n in buyers_per_master), buyers_per_master
        assert all(n > 0 for n in cluster.keys_per_master(client, "kp:{[0-9]*")), "agent keys on every master"
        assert len(cluster.slots_used(client, keys.BUYER_KEY_PATTERN)) == PARTITIONS  # one slot a partition
        assert len(cluster.slots_used(client, "kp:{[0-9]*")) > 10  # agents: a slot each
    finally:
        cluster.clear(client)
        client.close()


def _event(topic: str, partition: int, offset: int, **event: object) -> Record:
    value = {"shop_id": "s1", "agent_id": "s1:a", **event}
    key = f"s1:{value['buyer_id']}".encode()
    return Record(topic, partition, offset, key, json.dumps(value).encode())


@pytest.mark.parametrize("moved_first", [(), (":dv",)], ids=["nothing-moved-yet", "day-log-moved-first"])
def test_a_reshard_under_a_batch_applies_each_share_of_an_agent_whole_or_not_at_all(
    cluster_url: str, moved_first: tuple[str, ...]
) -> None:
    """`redis-cli --cluster reshard` marks the agent's slot MIGRATING and moves its keys one by
    one, while workers run. Redis then refuses, mid-script, a command on a key not on the node
    at that moment. A review's batch applied one share (a paid order on partition 0, its marker
    written), then failed on the waiting set the next share (partition 1) had just emptied,
    before the summed counters: the retry skipped the marked share, and the 100 yuan were gone.
    Here the batch applies during the migration, or fails before its first write and applies
    once the slot has moved."""
    client = cluster.sync_client(cluster_url)
    cluster.clear(client)
    messages, orders = TOPICS
    tag = keys.agent_tag("s1", "s1:a")
    slot = client.keyslot(tag)
    masters = cluster.masters(client)
    ids = {
        m.connection_pool.connection_kwargs["port"]: m.execute_command("CLUSTER", "MYID").decode()
        for m in masters
    }
    owner = next(m for m in masters if slot in _slots_of(m))
    target = next(m for m in masters if m is not owner)
    port = lambda m: m.connection_pool.connection_kwargs["port"]  # noqa: E731
    now = NOW - NOW % 60_000 + 40_000  # one minute: batch 2 writes buckets batch 1 made
    first = [
        _event(messages, 0, 0, type="message", event_id="m0", buyer_id="b1", sender="buyer", ts=now - 30_000),
        _event(messages, 0, 1, type="message", event_id="m1", buyer_id="b1", sender="agent", ts=now - 25_000),
        _event(messages, 1, 0, type="message", event_id="m2", buyer_id="b2", sender="buyer", ts=now - 20_000),
    ]
    second = [
        _event(
            orders,
            0,
            0,
            type="order",
            event_id="o1",
            buyer_id="b1",
            order_id="T1",
            status="paid",
            amount="100.00",
            ts=now - 5_000,
        ),
        _event(messages, 1, 1, type="message", event_id="m3", buyer_id="b2", sender="agent", ts=now - 4_000),
    ]

    async def process(records: list[Record]) -> None:
        worker = redis_processor(cluster_url, now, TOPICS)
        try:
            await worker.process(records)
        finally:
            await redis_partitions(worker).client.aclose()

    def day_bucket() -> dict[str, int]:
        found = {}
        for key in client.scan_iter(f"{tag}:d:*"):
            found = {
                k.decode(): int(v) for k, v in client.hgetall(key).items() if k in (b"c", b"r", b"p", b"y")
            }
        return found

    try:
        asyncio.run(process(first))
        markers = client.hgetall(keys.applied_key(tag))
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[port(owner)])
        owner.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[port(target)])
        for suffix in moved_first:
            owner.execute_command("MIGRATE", "127.0.0.1", port(target), f"{tag}{suffix}", 0, 5000)
        try:
            asyncio.run(process(second))
            failed = False
        except StoreBugError:
            raise
        except redis.RedisError:  # transient: the worker retries the batch
            failed = True
            assert owner.hgetall(keys.applied_key(tag)) == markers, "a failed call wrote nothing"
        # The reshard ends: every key of the slot on the target, which owns it.
        while moving := owner.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
            owner.execute_command("MIGRATE", "127.0.0.1", port(target), "", 0, 5000, "KEYS", *moving)
        for master in masters:
            master.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[port(target)])
        if failed:
            asyncio.run(process(second))
        assert day_bucket() == {"c": 2, "r": 2, "p": 1, "y": 10_000}
    finally:
        for master in masters:
            master.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            master.close()
        cluster.clear(client)
        client.close()


def _slots_of(node: redis.Redis) -> set[int]:
    myself = node.execute_command("CLUSTER", "MYID").decode()
    owned: set[int] = set()
    for first, last, *holders in node.execute_command("CLUSTER", "SLOTS"):
        if holders and holders[0][2].decode() == myself:
            owned.update(range(first, last + 1))
    return owned


def repartitioned(records: list[Record], before: int, after: int, switch_at: int) -> list[Record]:
    """`records` as Kafka holds them when partitions go from `before` to `after` at `switch_at`:
    keys map to murmur2 mod the count of the moment; existing partitions keep their offsets."""
    next_offset: dict[tuple[str, int], int] = {}
    out = []
    for n, record in enumerate(records):
        assert record.key is not None
        partition = (murmur2(record.key) & 0x7FFFFFFF) % (before if n < switch_at else after)
        offset = next_offset[(record.topic, partition)] = next_offset.get((record.topic, partition), -1) + 1
        out.append(Record(record.topic, partition, offset, record.key, record.value))
    return out


@pytest.mark.parametrize("migrate", [True, False], ids=["repartition", "accept"])
def test_adding_partitions_then_moving_the_buyers_keeps_the_numbers(
    url: str, reference: dict[str, Any], migrate: bool
) -> None:
    """4 → 6 partitions halfway, with the workers stopped and drained in between. Moving the
    buyer states gives the numbers of a run without the change; not moving them does not
    (moved buyers start over on their new partition)."""
    switch_at = len(RECORDS) // 2
    records = repartitioned(RECORDS, 4, 6, switch_at)

    async def run_workers(part: list[Record]) -> None:
        worker = processor(url)
        for batch in batches(part, 1000):
            await worker.process(batch)
        await redis_partitions(worker).client.aclose()

    async def scenario() -> int:
        await run_workers(records[:switch_at])
        client = connect(url)
        moved = (await move_buyers(client, 6)).moved if migrate else 0
        await client.aclose()
        await run_workers(records[switch_at:])
        return moved

    moved = asyncio.run(scenario())
    if migrate:
        assert moved > 100
        assert asyncio.run(numbers(url)) == reference
    else:
        assert asyncio.run(numbers(url)) != reference


def test_a_state_that_expires_while_it_is_moved_is_not_made_permanent(url: str) -> None:
    """Its GET found it and its PTTL then -2 (gone): copied with no expiry, the buyer's state
    would have outlived every window."""

    async def scenario() -> tuple[int, list[bytes]]:
        client = connect(url)
        key = keys.buyer_key(0, "s1", "b-moving")
        await client.set(key, b"state", px=60_000)

        async def gone(name: str) -> int:
            return -2  # expired just after the GET

        client.pttl = gone  # type: ignore[method-assign]
        moved = (await move_buyers(client, 7)).moved
        left = [k async for k in client.scan_iter(match="kp:*:b:*")]
        await client.aclose()
        return moved, left

    moved, left = asyncio.run(scenario())
    assert moved == 0 and len(left) == 1  # left where it was, to expire there


@pytest.mark.parametrize("clause", CLAUSES, ids=[c.__name__ for c in CLAUSES])
def test_the_redis_partition_store_keeps_the_contract(
    url: str, clause: Callable[[PartitionStore], Awaitable[None]]
) -> None:
    """The clauses the in-memory store keeps too (tests/unit/store/test_memory_store.py)."""

    async def check() -> None:
        store = RedisPartitionStore(connect(url))
        try:
            await clause(store)
        finally:
            await store.client.aclose()

    asyncio.run(check())


def test_the_leaders_one_call_read_equals_the_floor_read_on_both_backends(url: str) -> None:
    """floor_reads.lua names the agent's bucket keys from the tag of the one key it is given: on a
    cluster they must be in that key's slot. Cold (every day read) and warm (the closed days
    kept), the leader's floor equals the plain floor read with every window's sums."""
    asyncio.run(process_all(url))

    async def compare() -> int:
        store = RedisStore(connect(url))
        reader = FloorReader(store, PolicyBook(Settings()))
        cache, compared = FloorCache(), 0
        try:
            for _ in ("cold", "warm"):
                shops = await reader.shops(NOW)
                for led, _histograms in await reader.leader_floors(shops, NOW, cache):
                    assert led == await reader.floor(led.shop, NOW, with_sums=True), led.shop
                    compared += len(led.agents)
            assert all(state.version > 0 for state in cache.shops.values()), "no change log was read"
        finally:
            await store.client.aclose()
        return compared

    assert asyncio.run(compare()) > 20


def test_the_leaders_waiting_samples_land_in_each_shops_ring_on_both_backends(url: str) -> None:
    """record_waiting.lua writes FLOOR_CHANGES_PER_CALL shops a call on one server and one on a
    cluster: every shop's sample is read back for its minute, a later minute keeps the earlier
    one, and each ring lives WAITING_RING minutes from its last sample."""
    shops = {f"w{i:03d}": i % 5 for i in range(FLOOR_CHANGES_PER_CALL * 2 + 3)}
    minute = NOW // 60_000

    async def record() -> tuple[list[list[int | None]], list[int]]:
        store = RedisStore(connect(url))
        try:
            await store.record_waiting(shops, NOW)
            await store.record_waiting({"w001": 9}, NOW + 60_000)
            samples = [await store.waiting_samples(shop, [minute, minute + 1]) for shop in shops]
            ttls = [await store.client.pttl(keys.waiting_trend_key(shop)) for shop in shops]
        finally:
            await store.client.aclose()
        return samples, ttls

    samples, ttls = asyncio.run(record())
    expected = [[count, 9 if shop == "w001" else None] for shop, count in shops.items()]
    assert samples == expected
    assert all(WAITING_RING * 60_000 - 60_000 < ttl <= WAITING_RING * 60_000 for ttl in ttls), ttls


def assert_same_reads(together: list[AgentReads], alone: list[AgentReads]) -> None:
    """Equal, but for a validity taken from a key's TTL (floor_reads.lua: the plan's now plus
    the PTTL), which may be a second apart: the TTL runs down on the wall clock between the two
    reads, and a second boundary can fall between them."""
    assert len(together) == len(alone)
    for mine, its in zip(together, alone, strict=True):
        if mine.valid_until_s is not None and its.valid_until_s is not None:
            assert abs(mine.valid_until_s - its.valid_until_s) <= 1, (mine, its)
            its = dataclasses.replace(its, valid_until_s=mine.valid_until_s)
        assert mine == its


def test_the_leaders_reads_of_many_agents_a_call_equal_one_agent_a_call(url: str) -> None:
    """On one server floor_reads.lua reads FLOOR_READS_PER_CALL agents a call, one plan each
    call: what each agent gets must be what it gets alone, whole and then from held tokens,
    with more pairs of one plan than a call takes, then two plans alternating."""
    asyncio.run(process_all(url))

    async def compare() -> int:
        store = RedisStore(connect(url))
        reader = FloorReader(store, PolicyBook(Settings()))
        try:
            shops = await reader.shops(NOW)
            pairs = [
                (shop, agent) for shop in shops for agent in [*await reader.agents(shop, NOW), SHOP_LEVEL]
            ]
            pairs *= 3  # the same agent in several calls, and in one call more than once
            calendar = PolicyBook(Settings())(shops[0]).calendar
            plans = [
                floor_plan(window_reads(NOW, calendar), calendar.day(NOW), NOW - limit_ms, NOW, since, prune)
                for limit_ms, since, prune in ((60_000, None, False), (3_600_000, NOW - 86_400_000, True))
            ]
            # A run longer than a call, then runs of five: a call ends at its size or a new plan.
            each = [plans[0] if i < 40 else plans[(i // 5) % 2] for i in range(len(pairs))]
            tokens, held = [""] * len(pairs), [NO_MINUTES_HELD] * len(pairs)
            for _ in ("whole", "from held tokens"):
                together = list(await store.floor_reads(pairs, each, tokens, held))
                alone = [
                    next(await store.floor_reads([pair], plan, [token], [minutes]))
                    for pair, plan, token, minutes in zip(pairs, each, tokens, held, strict=True)
                ]
                assert_same_reads(together, alone)
                # Every other agent holds its tokens (closed days skipped, minutes since), the
                # rest hold none (read whole): an agent given another's arguments reads otherwise.
                first, last = min(whole_minutes(NOW).values())[0], max(whole_minutes(NOW).values())[1]
                tokens = [read.closed_token if i % 2 else "" for i, read in enumerate(together)]
                held = [
                    MinutesHeld(read.minute_token, first, last) if i % 2 else NO_MINUTES_HELD
                    for i, read in enumerate(together)
                ]
        finally:
            await store.client.aclose()
        return len(pairs)

    assert asyncio.run(compare()) > FLOOR_READS_PER_CALL


def test_the_leaders_look_at_many_shops_change_logs_a_call_equals_one_shop_a_call(url: str) -> None:
    """On one server floor_changes.lua looks at FLOOR_CHANGES_PER_CALL shops a call: each shop
    must get what it gets alone, with logs never looked at, touched since, born again, unchanged,
    and touched by members that have left the index mixed in one call, in more shops than a call
    takes. Shops differ in size, so a shop given its neighbour's arguments or reply reads otherwise."""
    looked_at = ("touched", "born again", "unchanged", "members left")
    kinds = [
        "never looked" if i % (FLOOR_CHANGES_PER_CALL + 5) == 7 else looked_at[i % len(looked_at)]
        for i in range(2 * FLOOR_CHANGES_PER_CALL + 3)
    ]
    shops = [f"chg-{i}" for i in range(len(kinds))]

    async def compare() -> list[str]:
        store = RedisStore(connect(url))

        async def touch(shop: str, agents: list[str], score: int) -> None:
            flat = [x for agent in agents for x in (score, agent)]
            await run_scripts(
                store.client, [ScriptCall(TOUCH_INDEX, [keys.agents_index_key(shop)], [INDEX_TTL_MS, *flat])]
            )

        try:
            for i, shop in enumerate(shops):
                for round_ in range(1 + i % 3):  # logs at different counters
                    await touch(shop, [f"a{j}" for j in range(1 + i % 7)], NOW - 1000 + round_)
            first = await store.floor_changes(shops, [(-1, "")] * len(shops))
            known = [(look.version, look.birth) for look in first]
            for i, shop in enumerate(shops):
                kind, index = kinds[i], keys.agents_index_key(shop)
                if kind == "never looked":
                    known[i] = (-1, "")
                elif kind == "touched":
                    await touch(shop, ["a0", f"new{i}"], NOW)
                elif kind == "born again":  # expired, then counted past the old counter again
                    await store.client.delete(f"{index}:chg", f"{index}:ver")
                    for round_ in range(known[i][0] + 1):
                        await touch(shop, [f"again{round_}"], NOW)
                elif kind == "members left":
                    await touch(shop, ["a0", f"gone{i}"], NOW)
                    await store.client.zrem(index, f"gone{i}")
            together = await store.floor_changes(shops, known)
            alone = [
                (await store.floor_changes([shop], [k]))[0] for shop, k in zip(shops, known, strict=True)
            ]
            assert together == alone
            # Each kind of look gives what it should, so the comparison above compares those.
            seen = []
            for i, look in enumerate(alone):
                kind = kinds[i]
                if kind in ("never looked", "born again"):
                    assert look.whole and look.members, (kind, look)
                elif kind == "unchanged":
                    assert not look.whole and look.members == {} and look.version == known[i][0], look
                elif kind == "touched":
                    assert not look.whole and look.members == {"a0": NOW, f"new{i}": NOW}, look
                else:
                    assert not look.whole and look.members == {"a0": NOW, f"gone{i}": None}, look
                seen.append(kind)
        finally:
            await store.client.aclose()
        return seen

    seen = asyncio.run(compare())
    assert set(seen) == set(kinds) and len(seen) > 2 * FLOOR_CHANGES_PER_CALL
    # Runs of shops looked at before longer than a call (a shop never looked at has a call of its own).
    assert kinds[8 : 9 + FLOOR_CHANGES_PER_CALL].count("never looked") == 0


def test_a_bad_index_key_fails_the_leaders_look_naming_it(single_url: str) -> None:
    """A call of many shops still checks each shop's index key (change_keys in prelude.lua): one
    without a hash tag among good ones fails the call, naming that key."""

    async def look() -> None:
        client = connect(single_url)
        good = [keys.agents_index_key(f"chg-{i}") for i in range(3)]
        try:
            await run_scripts(
                client,
                [
                    ScriptCall(
                        FLOOR_CHANGES, [good[0], "kp:agents:untagged", *good[1:]], [encode([(-1, "")] * 4)]
                    )
                ],
            )
        finally:
            await client.aclose()

    with pytest.raises(StoreBugError, match="kp:agents:untagged has no hash tag"):
        asyncio.run(look())


# Outboxes applied behind (agents/store/apply_behind.py), as the worker applies them: the same
# numbers as in line, through a kill, an outage and a fatal error while an apply is in flight.


def behind_processor(url: str, retries: list[BaseException] | None = None) -> BatchProcessor:
    seen = retries if retries is not None else []
    return redis_processor(url, NOW, TOPICS, ApplyBehind(lambda exc, _: seen.append(exc)))


def partitions_of(worker: BatchProcessor) -> RedisPartitionStore:
    partitions = redis_partitions(worker)
    assert partitions.behind is not None
    return partitions


def failing_first(partitions: RedisPartitionStore, failures: Sequence[BaseException]) -> list[int]:
    """The store's apply raises `failures`, one a call, then applies; returns the calls made."""
    apply, left, calls = partitions._apply, list(failures), []

    async def flaky(entries: Sequence[Entry]) -> None:
        calls.append(len(entries))
        if left:
            raise left.pop(0)
        await apply(entries)

    partitions._apply = flaky  # type: ignore[method-assign]
    return calls


def test_applied_behind_the_numbers_equal_those_applied_in_line(url: str, reference: dict[str, Any]) -> None:
    async def scenario() -> None:
        worker = behind_processor(url)
        partitions = partitions_of(worker)
        for batch in batches(RECORDS, 333):
            await worker.process(batch)
            assert partitions.behind is not None and partitions.behind.in_flight, "applied in line"
        await partitions.settle()
        await partitions.client.aclose()

    asyncio.run(scenario())
    assert asyncio.run(numbers(url)) == reference


@functools.cache
def wide_records() -> list[Record]:
    """A thousand agents in 50 shops, about a minute of them: most agents in every batch of
    4,000. Made on first use (half a second), not by every process that collects this file."""
    return simulated(20_000, NOW, PARTITIONS, TOPICS, TrafficShape(shops=50, agents=20, rate=400))


async def process_wide(url: str, behind: bool) -> dict[str, Any]:
    worker = behind_processor(url) if behind else processor(url)
    partitions = redis_partitions(worker)
    for batch in batches(wide_records(), 4000):
        await worker.process(batch)
        assert not behind or (partitions.behind is not None and partitions.behind.in_flight), "in line"
    await partitions.settle()
    await partitions.client.aclose()
    return await numbers(url)


@pytest.fixture(scope="module")
def wide_reference(single_url: str) -> dict[str, Any]:
    """wide_records() applied in line, on one server."""
    client = redis.Redis.from_url(single_url)
    client.flushdb()
    result = asyncio.run(process_wide(single_url, behind=False))
    client.flushdb()
    client.close()
    return result


def test_applied_behind_at_a_thousand_agents_the_numbers_equal_those_applied_in_line(
    url: str, wide_reference: dict[str, Any]
) -> None:
    """As above, with each batch's apply reaching most of ~1,000 agents (a script call each on
    a cluster, a few agents a call on one server)."""
    assert sum(len(agents) - 1 for agents in wide_reference.values()) >= 950  # less `_totals`
    assert asyncio.run(process_wide(url, behind=True)) == wide_reference


def test_a_commit_waits_for_the_apply_in_flight(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next commit replaces a partition's outbox: it must not be sent before the last one
    is applied, however slow that apply is."""
    events: list[str] = []
    run_scripts = batches_module.run_scripts

    async def noting_commits(client: Any, calls: Sequence[ScriptCall], *args: Any) -> list[Any]:
        if any(call.script is COMMIT_PARTITION for call in calls):
            events.append("commit sent")
        return await run_scripts(client, calls, *args)

    monkeypatch.setattr(batches_module, "run_scripts", noting_commits)

    async def scenario() -> None:
        worker = behind_processor(url)
        partitions = partitions_of(worker)
        apply = partitions._apply

        async def slow_apply(entries: Sequence[Entry]) -> None:
            events.append("apply starts")
            await asyncio.sleep(0.3)
            await apply(entries)
            events.append("apply done")

        partitions._apply = slow_apply  # type: ignore[method-assign]
        first, second = batches(RECORDS, 1000)[:2]
        await worker.process(first)
        events.append("first batch returned")
        await worker.process(second)
        events.append("second batch returned")
        await partitions.settle()
        await partitions.client.aclose()

    asyncio.run(scenario())
    assert events == [
        "commit sent",
        "first batch returned",
        "apply starts",
        "apply done",
        "commit sent",
        "second batch returned",
        "apply starts",
        "apply done",
    ]


@pytest.mark.parametrize("takeover", ["next batch", "assignment"])
def test_a_worker_killed_with_an_apply_in_flight_is_healed_by_the_next_owner(
    url: str, reference: dict[str, Any], takeover: str
) -> None:
    """Worker A's batch is committed and its handler has returned (Kafka may commit past it);
    A dies before its apply ran. B applies the outboxes: as the partitions are assigned to it,
    or before its own next commit on them when the batch is redelivered."""

    async def scenario() -> None:
        parts = batches(RECORDS, 1000)
        a, b = behind_processor(url), behind_processor(url)
        for batch in parts[:3]:
            await a.process(batch)
        partitions = partitions_of(a)
        assert partitions.behind is not None and partitions.behind.in_flight
        partitions.behind.close()  # killed: the apply never ran
        await partitions.client.aclose()
        assert await numbers(url) != reference
        if takeover == "assignment":
            assert await b.store.drain(range(PARTITIONS)) > 0
            rest = parts[3:]
        else:
            rest = parts[2:]  # redelivered: B skips it by the offsets, and applies its outboxes
        for batch in rest:
            await b.process(batch)
        await partitions_of(b).settle()
        await partitions_of(b).client.aclose()

    asyncio.run(scenario())
    assert asyncio.run(numbers(url)) == reference


def test_an_apply_that_meets_an_outage_retries_by_itself(url: str, reference: dict[str, Any]) -> None:
    """The last batch before a quiet spell: no next batch comes to retry its apply, so the apply
    retries itself, each failure told (the worker counts it in kefu_redis_errors_total)."""

    async def scenario() -> tuple[list[BaseException], list[int]]:
        retries: list[BaseException] = []
        worker = behind_processor(url, retries)
        partitions = partitions_of(worker)
        parts = batches(RECORDS, 1000)
        for batch in parts[:-1]:
            await worker.process(batch)
        await partitions.settle()
        outage = [ConnectionError("Redis restarting"), TimeoutError("no answer")]
        calls = failing_first(partitions, outage)
        await worker.process(parts[-1])
        for _ in range(200):  # no further batch, no settle: the same apply, tried three times
            if len(calls) == 3 and await numbers(url) == reference:
                break
            await asyncio.sleep(0.05)
        await partitions.settle()
        await partitions.client.aclose()
        return retries, calls

    retries, calls = asyncio.run(scenario())
    assert [type(e) for e in retries] == [ConnectionError, TimeoutError]
    assert len(calls) == 3 and len(set(calls)) == 1
    assert asyncio.run(numbers(url)) == reference


def test_a_fatal_error_in_the_apply_stops_the_next_commit_and_loses_nothing(
    url: str, reference: dict[str, Any]
) -> None:
    """A script Redis rejects is never retried: the next batch raises it before its commit (the
    worker stops there). What it had not applied stays in Redis; any later run applies it."""

    async def scenario() -> None:
        retries: list[BaseException] = []
        worker = behind_processor(url, retries)
        partitions = partitions_of(worker)
        parts = batches(RECORDS, 1000)
        await worker.process(parts[0])
        await partitions.settle()
        failing_first(partitions, [StoreBugError("apply_agent.lua rejected a share")])
        await worker.process(parts[1])
        with pytest.raises(StoreBugError):
            await worker.process(parts[2])
        assert not retries
        for batch in parts[2:]:
            await worker.process(batch)
        await partitions.settle()
        await partitions.client.aclose()

    asyncio.run(scenario())
    assert asyncio.run(numbers(url)) == reference


def test_a_drain_on_assignment_does_not_wait_for_the_apply_in_flight(
    url: str, reference: dict[str, Any]
) -> None:
    """A rebalance's seek drains the assigned partitions' outboxes under Faust's deadline: an
    apply behind stuck in an outage must not hold it. Markers let both land once, either order."""

    async def scenario() -> tuple[bool, bool]:
        worker = behind_processor(url)
        partitions = partitions_of(worker)
        parts = batches(RECORDS, 1000)
        for batch in parts[:-1]:
            await worker.process(batch)
        await partitions.settle()
        stuck, calls, apply = asyncio.Event(), [], partitions._apply

        async def first_stuck(entries: Sequence[Entry]) -> None:
            calls.append(len(entries))
            if len(calls) == 1:
                await stuck.wait()
            await apply(entries)

        partitions._apply = first_stuck  # type: ignore[method-assign]
        await worker.process(parts[-1])
        assert await asyncio.wait_for(worker.store.drain(range(PARTITIONS)), 30) > 0
        drained_all = await numbers(url) == reference
        stuck.set()
        await partitions.settle()  # the stuck apply lands too, and changes nothing
        unchanged = await numbers(url) == reference
        await partitions.client.aclose()
        return drained_all, unchanged

    assert asyncio.run(scenario()) == (True, True)
