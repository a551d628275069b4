"""Scale edges of the Redis scripts, on real Redis (db 13), each ending in exact numbers.

Lua's unpack() holds ~8,000 values, and Redis keeps whatever a script wrote before it failed:
a script that unpacked a whole argument list failed past ~4,000 buyers, shops or alerts,
after some of its writes (counters inflated on every retry, an index never filled, the
leader's epoch deleted). Here: far past that edge, in one batch, one catch-up, one alert set;
and a script given bad input writes nothing and raises the bug class, not a transient error.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

import msgspec
import pytest
import redis

from agents.core.policy import PolicyBook
from agents.core.windows import cohort_buckets
from agents.processing.batch import BatchProcessor
from agents.store import keys, outbox
from agents.store.batches import COMMIT_PARTITION
from agents.store.connect import connect
from agents.store.errors import STORE_ERRORS, StoreBugError
from agents.store.redis_store import (
    CHANGE_ALERTS,
    RECORD_WAITING,
    REPLACE_ALERTS,
    TAKE_LEADERSHIP,
    RedisStore,
)
from agents.store.scripts import CHUNK_VALUES, PRELUDE, ScriptCall, run_scripts
from config.settings import Settings
from streams.wire.records import Record
from tests.integration.harness import Stack, empty_db
from tests.integration.redis_processor import redis_partitions, redis_processor

DB = 13
TOPICS = ("c.messages", "c.orders")
# Fixed for the module, near the real time: buckets are written with absolute expiries.
NOW = time.time_ns() // 1_000_000
TS = NOW - 60_000
SHOP, AGENT = "s1", "s1:a"
# Far past the old edge (~4,000 items: 8,000 unpacked values) and many CHUNK_VALUES deep.
MANY_WAITS = 20_000
MANY_SHOPS = 5_000
MANY_ALERTS = 10_000


@pytest.fixture
def url(stack: Stack) -> Iterator[str]:
    """An empty db 13."""
    with empty_db(stack, DB) as url:
        yield url


def buyer_message(shop: str, buyer: str, agent: str, partition: int, offset: int) -> Record:
    """A buyer's first message to `agent`: one consultation, one buyer waiting."""
    event = {
        "type": "message",
        "event_id": f"m{shop}.{buyer}",
        "shop_id": shop,
        "buyer_id": buyer,
        "agent_id": agent,
        "sender": "buyer",
        "ts": TS,
    }
    return Record(TOPICS[0], partition, offset, f"{shop}:{buyer}".encode(), json.dumps(event).encode())


def processor(url: str) -> BatchProcessor:
    """A worker's processor, on its own client, at a fixed clock."""
    return redis_processor(url, NOW, TOPICS)


def run(url: str, work: Callable[[BatchProcessor], Awaitable[Any]]) -> Any:
    """`work` done by a fresh worker (one that knows of no outbox applied)."""

    async def scenario() -> Any:
        worker = processor(url)
        try:
            return await work(worker)
        finally:
            await redis_partitions(worker).client.aclose()

    return asyncio.run(scenario())


def run_on_store(url: str, work: Callable[[RedisStore], Awaitable[Any]]) -> Any:
    async def scenario() -> Any:
        store = RedisStore(connect(url))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(scenario())


CHANGE_LOG = re.compile(rb"^kp:agents:\{.*\}:(chg|ver)$")


def contents(client: redis.Redis) -> dict[bytes, Any]:
    """Every key's value, by type. Aside: TTLs (a re-apply refreshes the markers' TTL), and the
    agents indexes' change logs, which count touches: a re-applied outbox touches its agents
    again, and the leader reads them once more (a signal, no number)."""
    names = [name for name in client.scan_iter(count=10_000) if not CHANGE_LOG.match(name)]
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.type(name)
        kinds = pipe.execute()
        for name, kind in zip(names, kinds, strict=True):
            if kind == b"hash":
                pipe.hgetall(name)
            elif kind == b"zset":
                pipe.zrange(name, 0, -1, withscores=True)
            elif kind == b"list":  # a partition's commit log
                pipe.lrange(name, 0, -1)
            else:
                pipe.get(name)
        return dict(zip(names, pipe.execute(), strict=True))


def day_bucket(shop: str, agent: str) -> str:
    day, _, _ = cohort_buckets(TS, PolicyBook(Settings())(shop).calendar, NOW)
    return keys.bucket_key(shop, agent, "d", day)


def test_twenty_thousand_waits_for_one_agent_in_one_batch(url: str) -> None:
    records = [buyer_message(SHOP, f"b{i}", AGENT, 0, i) for i in range(MANY_WAITS)]
    run(url, lambda worker: worker.process(records))

    client = redis.Redis.from_url(url)
    marker = keys.applied_key(keys.agent_tag(SHOP, AGENT))
    assert client.hget(day_bucket(SHOP, AGENT), "c") == str(MANY_WAITS).encode()
    assert client.zcard(keys.waiting_key(SHOP, AGENT)) == MANY_WAITS
    assert client.hgetall(marker) == {
        b"0": str(outbox.position({TOPICS[0]: MANY_WAITS - 1, TOPICS[1]: -1})).encode()
    }

    before = contents(client)
    drained = run(url, lambda worker: worker.store.drain([0]))  # the outbox, applied again by a new owner
    assert drained == 1 and contents(client) == before
    client.close()


def assert_indexes_complete(client: redis.Redis, shops: list[str]) -> None:
    members = cast(list[bytes], client.zrange(keys.SHOPS_INDEX_KEY, 0, -1))
    assert sorted(m.decode() for m in members) == sorted(shops)
    with client.pipeline(transaction=False) as pipe:
        for shop in shops:
            pipe.zrange(keys.agents_index_key(shop), 0, -1)
            pipe.hget(day_bucket(shop, f"{shop}:a"), "c")
        found = pipe.execute()
    assert found[0::2] == [[f"{shop}:a".encode()] for shop in shops]
    assert found[1::2] == [b"1"] * len(shops)


def test_five_thousand_shops_in_one_batch(url: str) -> None:
    shops = [f"s{i}" for i in range(MANY_SHOPS)]
    records = [buyer_message(shop, "b", f"{shop}:a", 0, i) for i, shop in enumerate(shops)]
    run(url, lambda worker: worker.process(records))
    client = redis.Redis.from_url(url)
    assert_indexes_complete(client, shops)
    client.close()


def test_five_thousand_shops_in_one_catch_up(url: str) -> None:
    """A worker commits five partitions of 1,000 shops each and dies before applying them; the
    new owner applies the five outboxes at once, one index touch of 5,000 shops."""
    partitions = 5
    shops = [f"s{i}" for i in range(MANY_SHOPS)]
    records = [
        buyer_message(shop, "b", f"{shop}:a", i % partitions, i // partitions) for i, shop in enumerate(shops)
    ]

    async def commit_then_die(worker: BatchProcessor) -> None:
        async def die(*_: object) -> None:
            raise ConnectionError("the worker was SIGKILLed between commit and apply")

        redis_partitions(worker)._apply = die  # type: ignore[method-assign, assignment]
        with pytest.raises(ConnectionError):
            await worker.process(records)

    run(url, commit_then_die)
    client = redis.Redis.from_url(url)
    assert client.zcard(keys.SHOPS_INDEX_KEY) == 0  # committed, not applied

    assert run(url, lambda worker: worker.store.drain(range(partitions))) == partitions
    assert_indexes_complete(client, shops)
    client.close()


def test_ten_thousand_firing_alerts_keep_the_epoch_and_every_episode_start(url: str) -> None:
    firing = {("no_reply", f"s{i}", f"s{i}:a"): NOW + i for i in range(MANY_ALERTS)}
    # The next second's set: every other one still firing, as many new ones.
    following = {("no_reply", f"s{i}", f"s{i}:a"): NOW + i for i in range(0, MANY_ALERTS, 2)}
    following |= {("slow_first_response", f"s{i}", f"s{i}:a"): NOW - i for i in range(MANY_ALERTS)}

    async def lead(store: RedisStore) -> list[Any]:
        epoch = await store.take_leadership()
        first = [await store.store_firing_alerts(epoch, firing), await store.firing_alerts()]
        return [epoch, *first, await store.store_firing_alerts(epoch, following), await store.firing_alerts()]

    epoch, first_written, first, next_written, after = run_on_store(url, lead)
    assert epoch == 1 and first_written and next_written
    assert first == (1, firing)
    assert after == (1, following)


def test_ten_thousand_firing_alerts_change_by_their_difference(url: str) -> None:
    """The round's store: 5,000 fields removed and 10,000 added (many chunks each way), from the
    set as read, give exactly the next set."""
    firing = {("no_reply", f"s{i}", f"s{i}:a"): NOW + i for i in range(MANY_ALERTS)}
    following = {("no_reply", f"s{i}", f"s{i}:a"): NOW + i for i in range(0, MANY_ALERTS, 2)}
    following |= {("slow_first_response", f"s{i}", f"s{i}:a"): NOW - i for i in range(MANY_ALERTS)}

    async def lead(store: RedisStore) -> list[Any]:
        epoch = await store.take_leadership()
        await store.store_firing_alerts(epoch, firing)
        _, read = await store.firing_alerts()
        return [await store.change_firing_alerts(epoch, read, following), await store.firing_alerts()]

    changed, after = run_on_store(url, lead)
    assert changed is True
    assert after == (1, following)


Alerts = dict[tuple[str, str, str], int]


def alert_sets(seed: int) -> list[tuple[str, Alerts, Alerts]]:
    """(case, before, after): the edges, then random sets of one pool, each change past a chunk
    (CHUNK_VALUES values: 500 HSET items, 1,000 HDEL fields) somewhere."""
    rng = random.Random(seed)
    pool = [(alert, f"s{i % 37}", f"s{i % 37}:a{i}") for i in range(3_000) for alert in ("no_reply", "slow")]

    def some(n: int) -> Alerts:
        return {key: NOW - rng.randrange(1_000_000) for key in rng.sample(pool, n)}

    big = some(2_500)
    restarted = {key: start + 1 if rng.random() < 0.5 else start for key, start in big.items()}
    cases = [
        ("empty to empty", {}, {}),
        ("all new", {}, big),
        ("all removed", big, {}),
        ("only starts changed", big, restarted),
        ("one field each way", {pool[0]: 1}, {pool[1]: 2}),
        ("the same set", big, dict(big)),
    ]
    for n in range(4):
        before = some(rng.randrange(1, 3_000))
        kept = dict(rng.sample(sorted(before.items()), rng.randrange(len(before) + 1)))
        changed = {key: start - 7 for key, start in kept.items() if rng.random() < 0.1}
        cases.append((f"random {n}", before, kept | changed | some(rng.randrange(1_500))))
    return cases


def test_firing_alerts_stored_by_their_difference_equal_a_whole_replace(url: str) -> None:
    """From each `before` as stored, the difference leaves the very hash a whole replace of `after`
    writes (raw bytes, epoch field included), with the TTL set."""

    async def both_ways(before: Alerts, after: Alerts) -> tuple[bool | None, Any, int, Any]:
        store = RedisStore(connect(url))
        epoch = await store.take_leadership()
        assert await store.store_firing_alerts(epoch, before)
        current, read = await store.firing_alerts()
        assert (current, read) == (epoch, before)
        await store.client.pexpire(keys.ALERTS_KEY, 1_000)  # the change must refresh it
        changed = await store.change_firing_alerts(epoch, read, after)
        by_difference = await store.client.hgetall(keys.ALERTS_KEY)
        ttl = await store.client.pttl(keys.ALERTS_KEY)
        assert await store.store_firing_alerts(epoch, after)
        by_replace = await store.client.hgetall(keys.ALERTS_KEY)
        await store.client.delete(keys.ALERTS_KEY)
        await store.client.aclose()
        return changed, by_difference, ttl, by_replace

    for case, before, after in alert_sets(seed=28):
        changed, by_difference, ttl, by_replace = asyncio.run(both_ways(before, after))
        fields = {"\x1f".join(key).encode(): str(start).encode() for key, start in after.items()}
        expected = {b"epoch": b"1"} | fields
        assert changed is True, case
        assert by_difference == by_replace == expected, case
        assert ttl > 1_000, case


def test_a_stale_leaders_difference_is_refused_and_writes_nothing(url: str) -> None:
    new_set = {("no_reply", "s1", "a"): 7, ("slow", "s1", "b"): 8}

    async def race() -> tuple[bool | None, bool, Any, Any]:
        old, new = RedisStore(connect(url)), RedisStore(connect(url))
        stale = await old.take_leadership()
        current = await new.take_leadership()
        assert await new.store_firing_alerts(current, new_set)
        held = await new.client.hgetall(keys.ALERTS_KEY)
        # The stale leader even knows the set as it is now: the fence alone refuses it.
        refused = await old.change_firing_alerts(stale, new_set, {("slow", "s2", "c"): 9})
        stored = await old.store_firing_alerts(stale, {}, new_set)
        after = await new.client.hgetall(keys.ALERTS_KEY)
        await old.client.aclose()
        await new.client.aclose()
        return refused, stored, held, after

    refused, stored, held, after = asyncio.run(race())
    assert refused is False and stored is False
    assert after == held and after[b"epoch"] == b"2"


def test_a_difference_from_a_set_the_hash_does_not_hold_writes_nothing_and_stores_whole(url: str) -> None:
    """A `before` with a field the hash lacks: its difference would leave that field's absence
    unnoticed. The script refuses it unwritten, and store_firing_alerts replaces the set."""
    held = {("no_reply", "s1", "a"): 7}
    after = {("no_reply", "s1", "b"): 9}

    wrong = held | {("slow", "s1", "c"): 8}

    async def attempt() -> tuple[bool | None, Any, Any, bool, Alerts]:
        store = RedisStore(connect(url))
        epoch = await store.take_leadership()
        await store.store_firing_alerts(epoch, held)
        untouched = await store.client.hgetall(keys.ALERTS_KEY)
        refused = await store.change_firing_alerts(epoch, wrong, after)
        unchanged = await store.client.hgetall(keys.ALERTS_KEY)
        stored = await store.store_firing_alerts(epoch, after, wrong)
        _, firing = await store.firing_alerts()
        await store.client.aclose()
        return refused, untouched, unchanged, stored, firing

    refused, untouched, unchanged, stored, firing = asyncio.run(attempt())
    assert refused is None and unchanged == untouched
    assert stored is True and firing == after


# Item counts around a chunk's edge (2 values an item for ZADD and HSET, 1 for ZREM).
AROUND_A_CHUNK = (CHUNK_VALUES // 2 - 1, CHUNK_VALUES // 2, CHUNK_VALUES // 2 + 1, CHUNK_VALUES + 1)


@pytest.mark.parametrize("n", AROUND_A_CHUNK)
def test_items_around_a_chunk_edge_are_neither_lost_nor_split(url: str, n: int) -> None:
    later = NOW + 3_600_000
    members = {f"m{i}": NOW - i for i in range(n)}
    waiting = keys.waiting_key(SHOP, AGENT)
    added = outbox.Outbox(
        0,
        1,
        {keys.agent_tag(SHOP, AGENT): outbox.AgentShare([], [outbox.Waiting(waiting, later, [], members)])},
        [],
    )
    removed = outbox.Outbox(  # all but the last, one value each
        0,
        2,
        {
            keys.agent_tag(SHOP, AGENT): outbox.AgentShare(
                [], [outbox.Waiting(waiting, later, list(members)[:-1], {})]
            )
        },
        [],
    )
    firing = {("no_reply", SHOP, name): start for name, start in members.items()}

    async def write(store: RedisStore) -> tuple[Any, ...]:
        await run_scripts(store.client, outbox.apply_calls([added]))
        added_back = await store.client.zrange(waiting, 0, -1, withscores=True)
        await run_scripts(store.client, outbox.apply_calls([removed]))
        await run_scripts(
            store.client,
            outbox.apply_calls([outbox.Outbox(1, 1, {}, [outbox.IndexTouch(keys.SHOPS_INDEX_KEY, members)])]),
        )
        await store.store_firing_alerts(await store.take_leadership(), firing)
        return (
            added_back,
            await store.client.zrange(waiting, 0, -1),
            await store.client.zrange(keys.SHOPS_INDEX_KEY, 0, -1, withscores=True),
            await store.firing_alerts(),
        )

    added_back, left, index, alerts = run_on_store(url, write)
    expected = sorted((name.encode(), float(start)) for name, start in members.items())
    assert sorted(added_back) == expected and sorted(index) == expected
    assert left == [list(members)[-1].encode()]
    assert alerts == (1, firing)


@pytest.mark.parametrize("n", (CHUNK_VALUES - 1, CHUNK_VALUES, CHUNK_VALUES + 1, 2 * CHUNK_VALUES + 1))
def test_hmget_chunked_reads_every_field_in_order_across_chunks(url: str, n: int) -> None:
    """The prelude's reader (floor_reads.lua's closed-day log): absent fields read as false (nil)."""
    client = redis.Redis.from_url(url)
    present = {f"f{i}": i for i in range(0, n, 2)}
    client.hset("log", mapping=present)  # type: ignore[arg-type]
    fields = [f"f{i}" for i in range(n)]
    values = client.eval(PRELUDE + "return hmget_chunked(KEYS[1], ARGV)", 1, "log", *fields)
    client.close()
    assert len(values) == n
    assert values == [str(present[f]).encode() if f in present else None for f in fields]


def test_one_call_of_an_agents_shares_writes_what_a_call_per_share_writes(url: str) -> None:
    """apply_agent.lua sums an agent's applied shares per key and field and writes each once:
    the same counters, expiries (the last share's), markers and skipped shares as one call per
    share, a field summed to 0 kept, and the day log's birth and growing number, which the
    minute log scores the minute with (and 'm#' counts alike: every call kept the minute log)."""
    agent = keys.agent_tag(SHOP, AGENT)
    day, minute = day_bucket(SHOP, AGENT), keys.bucket_key(SHOP, AGENT, "m", TS // 60_000)
    later = NOW + 3_600_000

    def entry(partition: int, position: int, amounts: dict[str, int]) -> outbox.Outbox:
        counters = [
            outbox.Counters(day, later, amounts),
            outbox.Counters(minute, later + partition, {"c": 1}),
        ]
        return outbox.Outbox(partition, position, {agent: outbox.AgentShare(counters, [])}, [])

    entries = [  # (0, 5) was applied already: skipped by both
        entry(0, 5, {"c": 100}),
        entry(0, 7, {"c": 8, "r": 1}),
        entry(1, 3, {"c": 2, "r": -1}),
        entry(2, 9, {"c": 4}),
    ]
    client = redis.Redis.from_url(url)

    async def apply(store: RedisStore, calls: list[list[outbox.Outbox]]) -> None:
        for entries_of_call in calls:
            await run_scripts(store.client, outbox.apply_calls(entries_of_call))

    def state_after(
        calls: list[list[outbox.Outbox]],
    ) -> tuple[dict[bytes, Any], list[int], dict[Any, Any], list[tuple[bytes, float]]]:
        client.flushdb()
        client.hset(keys.applied_key(agent), "0", "5")
        run_on_store(url, lambda store: apply(store, calls))
        day_log = client.hgetall(f"{agent}:dv")
        minute_log = cast(list[tuple[bytes, float]], client.zrange(f"{agent}:mv", 0, -1, withscores=True))
        written = {k: v for k, v in contents(client).items() if not k.endswith((b":dv", b":mv"))}
        return written, [client.pexpiretime(day), client.pexpiretime(minute)], day_log, minute_log

    merged, merged_expiries, merged_log, merged_minutes = state_after([entries])
    apart, apart_expiries, apart_log, apart_minutes = state_after([[e] for e in entries])
    client.close()
    assert merged == apart
    assert merged[day.encode()] == {b"c": b"14", b"r": b"0"}
    assert merged_expiries == apart_expiries == [later, later + 2]
    # The first applied share, and the time (a rebuild's log is not the one it replaced).
    assert merged_log[b"@"].startswith(b"0:7:") and apart_log[b"@"].startswith(b"0:7:")
    day_field = day.rsplit(":", 1)[1].encode()
    assert merged_log[day_field] == merged_log[b"#"] == b"1"  # one call, one number
    assert apart_log[day_field] == apart_log[b"#"] == b"3"  # three applied shares, three
    assert merged_log[b"m#"] == b"1" and apart_log[b"m#"] == b"3"
    minute_field = minute.rsplit(":", 1)[1].encode()
    assert merged_minutes == [(minute_field, 1.0)] and apart_minutes == [(minute_field, 3.0)]


def test_the_day_log_lets_go_of_days_no_window_reads(url: str) -> None:
    """apply_agent.lua's day log got a field per day written and kept it for as long as the agent
    wrote: it now keeps the days within 40 of the newest one a call writes."""
    agent = keys.agent_tag(SHOP, AGENT)
    today = int(day_bucket(SHOP, AGENT).rsplit(":", 1)[1])
    later = NOW + 3_600_000

    def entry(position: int, day: int) -> outbox.Outbox:
        counters = [outbox.Counters(keys.bucket_key(SHOP, AGENT, "d", day), later, {"c": 1})]
        return outbox.Outbox(0, position, {agent: outbox.AgentShare(counters, [])}, [])

    client = redis.Redis.from_url(url)
    client.flushdb()
    old_days = [today - 300 + n for n in range(30)]  # a late event a call, into days long gone
    calls = [[entry(n + 1, day)] for n, day in enumerate(old_days)]
    calls += [[entry(len(calls) + n + 1, today - n % 3)] for n in range(34)]  # then recent days

    async def apply(store: RedisStore) -> None:
        for entries in calls:
            await run_scripts(store.client, outbox.apply_calls(entries))

    run_on_store(url, apply)
    day_log = {k.decode(): v for k, v in client.hgetall(f"{agent}:dv").items()}
    client.close()
    assert day_log["#"] == str(len(calls)).encode()
    assert sorted(int(d) for d in day_log if d.isdigit()) == [today - 2, today - 1, today]


def bad_calls() -> dict[str, tuple[ScriptCall, dict[bytes, Any]]]:
    """Per script, a call whose input is wrong late in its arguments (after valid items an
    unchecked script would already have written), and the state it starts from."""
    agent = keys.agent_tag(SHOP, AGENT)
    counters = keys.bucket_key(SHOP, AGENT, "d", 1)
    later = NOW + 3_600_000  # expiries: a partial write would stay to be seen
    valid_share = [0, 5, [[2, later, "c", 1]], [[3, later, [], [1, "b1"]]]]
    odd_share = [1, 5, [], [[3, later, [], [1, "b2", 2]]]]  # a score with no member
    alerts = {b"epoch": b"1", b"no_reply\x1fs1\x1fs1:a": b"7"}
    many_fields = [x for i in range(CHUNK_VALUES) for x in (f"no_reply\x1fs{i}\x1fa", NOW)]
    # KEYS: outbox, offset, b1, b2; ARGV: header, outbox, b1's state, and no ARGV[9] for b2.
    state_past_argv = [1, [-1], [0], 60_000, [[3, 3, 60_000], [4, 9, 60_000]]]
    return {
        "apply_agent.lua": (
            ScriptCall(
                outbox.APPLY_AGENT,
                [keys.applied_key(agent), counters, keys.waiting_key(SHOP, AGENT)],
                [msgspec.msgpack.encode([valid_share, odd_share]), 60_000],
            ),
            {},
        ),
        "touch_index.lua": (
            ScriptCall(
                outbox.TOUCH_INDEX, [keys.SHOPS_INDEX_KEY], [60_000, NOW, "s1", NOW, "s2", "soon", "s3"]
            ),
            {},
        ),
        "replace_alerts.lua": (
            ScriptCall(
                REPLACE_ALERTS, [keys.ALERTS_KEY], [1, 60_000, "", *many_fields, "no_reply\x1fs9\x1fa"]
            ),
            {keys.ALERTS_KEY.encode(): alerts},
        ),
        "change_alerts.lua": (  # the held field removed, many set, and the last start no number
            ScriptCall(
                CHANGE_ALERTS,
                [keys.ALERTS_KEY],
                [1, 60_000, "", 1, 1, "no_reply\x1fs1\x1fs1:a", *many_fields, "no_reply\x1fs9\x1fa", "soon"],
            ),
            {keys.ALERTS_KEY.encode(): alerts},
        ),
        "commit_partition.lua": (
            ScriptCall(
                COMMIT_PARTITION,
                [
                    keys.outbox_key(0),
                    keys.offset_key(TOPICS[0], 0),
                    keys.buyer_key(0, SHOP, "b1"),
                    keys.buyer_key(0, SHOP, "b2"),
                ],
                [msgspec.msgpack.encode(state_past_argv), b"entry", b"state of b1"],
            ),
            {},
        ),
        "take_leadership.lua": (
            ScriptCall(TAKE_LEADERSHIP, [keys.ALERTS_KEY], ["a day"]),
            {keys.ALERTS_KEY.encode(): alerts},
        ),
        "record_waiting.lua": (  # two shops' rings, the second shop's count no number
            ScriptCall(
                RECORD_WAITING,
                [keys.waiting_trend_key("s1"), keys.waiting_trend_key("s2")],
                [7, NOW // 60_000, 60_000, 3, "many"],
            ),
            {keys.waiting_trend_key("s1").encode(): {b"6": b"1:2"}},
        ),
    }


@pytest.mark.parametrize("script", sorted(bad_calls()))
def test_a_script_given_bad_input_writes_nothing_and_raises_the_bug_class(url: str, script: str) -> None:
    call, state = bad_calls()[script]
    client = redis.Redis.from_url(url)
    for key, fields in state.items():
        client.hset(key, mapping=fields)

    async def attempt(store: RedisStore) -> BaseException:
        with pytest.raises(StoreBugError) as failure:
            await run_scripts(store.client, [call])
        return failure.value

    error = run_on_store(url, attempt)
    assert contents(client) == state
    assert script in str(error) and "BADINPUT" in str(error)
    assert not isinstance(error, STORE_ERRORS)  # not retried as an outage
    client.close()


def test_a_batch_meeting_foreign_data_writes_no_counter_and_stops(url: str) -> None:
    """The agent's waiting set holds something else: the apply stops before any counter moves."""
    client = redis.Redis.from_url(url)
    client.set(keys.waiting_key(SHOP, AGENT), "not a sorted set")
    records = [buyer_message(SHOP, f"b{i}", AGENT, 0, i) for i in range(3)]

    async def attempt(worker: BatchProcessor) -> BaseException:
        with pytest.raises(StoreBugError) as failure:
            await worker.process(records)
        return failure.value

    error = run(url, attempt)
    assert "apply_agent.lua" in str(error)
    assert client.exists(day_bucket(SHOP, AGENT), keys.applied_key(keys.agent_tag(SHOP, AGENT))) == 0
    client.close()


def test_the_first_record_of_a_partition_alone_in_a_batch_is_applied_once(url: str) -> None:
    """Offset 0 is an offset like any other: committed alone, a redelivery of it is skipped."""
    first = buyer_message(SHOP, "b0", AGENT, 0, 0)
    run(url, lambda worker: worker.process([first]))
    run(url, lambda worker: worker.process([first]))  # redelivered after a restart

    client = redis.Redis.from_url(url)
    assert client.get(keys.offset_key(TOPICS[0], 0)) == b"0"
    assert client.hget(day_bucket(SHOP, AGENT), "c") == b"1"
    client.close()
