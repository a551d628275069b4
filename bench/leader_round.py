"""What one leader round costs: 10 agents in 1 shop (the baseline) and 10,000 agents in 1,000
shops, in one run, on the local real Redis. Prints one JSON line.

The state is written as the worker writes it (agents/store/writes.py: same keys, fields and
expiry): every agent has day buckets for the 28 days, minute and second buckets in the last
hour, a few waiting buyers, a first-response histogram and its outbox markers; the shops and
agents indexes hold them all. A round is `Leader.lead` with a sink that keeps the alert events
(what one tick of agents/worker/duties.py does on the leader), timed as a median of ROUNDS
rounds one second apart in simulated time; `read_snapshot` alone, and the `/metrics` text
of the round's snapshot, are timed beside it: from nothing (`metrics_text_ms_*`), and as a
scrape pays it after a churned round, with the last text's lines kept (`metrics_text_churned_*`).

Idle rounds change nothing between rounds; churned rounds first write, untimed, to a share of
the agents as the worker writes (outbox.from_writes and apply_calls: apply_agent.lua moves
their markers, touch_index.lua their index entries): a cohort in today's day, minute and
second buckets, a first-response histogram count, and a wait that starts or ends. The
realistic share is CHURN_PER_S agents a second: 5,000 events/s offered to 10,000 agents, one
agent per event, touch 10,000 x (1 - e^-0.5) = 3,935 distinct agents a second if spread
evenly, and fewer when traffic gathers on busy agents, so it is the upper end; 10% churn is
reported beside it. `lead_round_ms_at_*` is the churned round at that share. The first round
(every agent read) is `cold_round_ms`. One idle and one churned 10k round run under cProfile.
The process uses the garbage collector as a worker does (agents/worker/heap.py).

Run: `.venv/bin/python -m bench.leader_round` (`--agents 10000 --shops 1000` are the default).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from agents.core.alerts import AlertEvent
from agents.core.projection import DAY_HISTOGRAM_FIELDS, SHOP_LEVEL
from agents.core.windows import FINE_RETENTION_MS, MINUTE_RETENTION_MS, WINDOW_DAYS
from agents.exposure.floor import FloorReader
from agents.exposure.floor_exposition import KeptText, floor_exposition
from agents.store import keys, outbox
from agents.store.redis_store import RedisStore
from agents.store.scripts import run_scripts
from agents.store.writes import INDEX_TTL_MS, WriteSet
from agents.worker import heap
from agents.worker.runtime import Runtime
from bench.report import day_fields
from bench.stack import stack_env
from config.calendar import MS_PER_HOUR
from config.settings import settings_from_yaml

ROUNDS = 7
DB = 13  # the benchmark stack's dbs 3-7 belong to the other benchmarks
ACTIVE_MINUTES = 12  # minutes of the last hour with cohorts, per agent
PROFILE_ENTRIES = 12
_SHOP_FIELDS = {"n": 500, "sn": 40, "sy": 900_000}
CHURN_SHARE = 0.3935  # of the agents, touched each second: 5,000 events/s over 10,000 agents
TEN_PERCENT = 0.1
PARTITIONS = 8


def agents_of(shop: str, per_shop: int) -> list[str]:
    return [f"{shop}:a{i:03d}" for i in range(per_shop)]


async def write_agent(
    pipe: aioredis.client.Pipeline, rnd: random.Random, runtime: Runtime, shop: str, agent: str, now_ms: int
) -> None:
    """One agent's buckets, waits, histogram and markers, with the worker's expiries."""
    policy = runtime.policies(shop)
    today = policy.calendar.day(now_ms)
    for day in range(today - WINDOW_DAYS + 1, today + 1):
        key = keys.bucket_key(shop, agent, "d", day)
        fields = _SHOP_FIELDS if agent == SHOP_LEVEL else day_fields(rnd)
        pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
        pipe.pexpireat(key, policy.calendar.day_start_ms(day + policy.retention_days) + MS_PER_HOUR)
    now_minute = now_ms // 60_000
    written: list[int] = []
    for minute in rnd.sample(range(now_minute - 64, now_minute + 1), ACTIVE_MINUTES):
        minute_fields: dict[str, int] = {}
        second_fields: dict[str, int] = {}
        for second in rnd.sample(range(60), rnd.randint(1, 3)):
            if minute * 60_000 + second * 1000 > now_ms:
                continue
            for name in ("c", "r", "fs", "i", "w0") if agent != SHOP_LEVEL else ("n",):
                amount = rnd.randint(1, 20_000) if name == "fs" else 1
                minute_fields[name] = minute_fields.get(name, 0) + amount
                second_fields[f"{name}:{second}"] = amount
        if not minute_fields:
            continue
        minute_end = (minute + 1) * 60_000
        minute_key, second_key = (
            keys.bucket_key(shop, agent, "m", minute),
            keys.bucket_key(shop, agent, "s", minute),
        )
        pipe.hset(minute_key, mapping=minute_fields)  # type: ignore[arg-type]
        pipe.pexpireat(minute_key, minute_end + MINUTE_RETENTION_MS)
        pipe.hset(second_key, mapping=second_fields)  # type: ignore[arg-type]
        pipe.pexpireat(second_key, minute_end + FINE_RETENTION_MS)
        written.append(minute)
    if agent == SHOP_LEVEL:
        return
    waits = {f"tb_{agent}_{i}": now_ms - rnd.randint(0, 20_000) for i in range(rnd.randint(0, 3))}
    if waits:
        pipe.zadd(keys.waiting_key(shop, agent), waits)
        pipe.pexpireat(keys.waiting_key(shop, agent), now_ms + policy.wait_limit_ms + MS_PER_HOUR)
    histogram = {str(b): rnd.randint(0, 50) for b in range(len(DAY_HISTOGRAM_FIELDS))} | {"sum": 10_000_000}
    pipe.hset(keys.histogram_key(shop, agent), mapping=histogram)  # type: ignore[arg-type]
    pipe.pexpire(keys.histogram_key(shop, agent), INDEX_TTL_MS)
    tag = keys.agent_tag(shop, agent)
    pipe.hset(keys.applied_key(tag), mapping={str(p): rnd.randint(1, 10**9) for p in range(3)})
    # The day and minute logs apply_agent.lua keeps beside the buckets: a number per day and
    # minute written, one per call (here: a call a day, the last one writing the minutes too).
    days = range(today - WINDOW_DAYS + 1, today + 1)
    day_log = {"#": WINDOW_DAYS, "m#": WINDOW_DAYS, "@": "0:1"}
    pipe.hset(f"{tag}:dv", mapping=day_log | {str(day): n for n, day in enumerate(days, 1)})  # type: ignore[arg-type]
    pipe.pexpire(f"{tag}:dv", INDEX_TTL_MS)
    if written:
        pipe.zadd(f"{tag}:mv", dict.fromkeys(map(str, written), WINDOW_DAYS))
        pipe.pexpire(f"{tag}:mv", INDEX_TTL_MS)


async def write_state(
    client: aioredis.Redis, runtime: Runtime, shops: int, per_shop: int, now_ms: int
) -> None:
    rnd = random.Random(28)
    for s in range(shops):
        shop = f"s{s:04d}"
        agents = agents_of(shop, per_shop)
        async with client.pipeline(transaction=False) as pipe:
            for agent in [*agents, SHOP_LEVEL]:
                await write_agent(pipe, rnd, runtime, shop, agent, now_ms)
            pipe.zadd(
                keys.agents_index_key(shop),
                {a: now_ms - rnd.randint(0, 600_000) for a in [*agents, SHOP_LEVEL]},
            )
            pipe.zadd(keys.SHOPS_INDEX_KEY, {shop: now_ms})
            await pipe.execute()


class Churn:
    """The worker's writes between two rounds: a share of the agents touched through the outbox."""

    def __init__(self, client: aioredis.Redis, runtime: Runtime, shops: int, per_shop: int) -> None:
        self.client, self.runtime = client, runtime
        self.agents = [(f"s{s:04d}", a) for s in range(shops) for a in agents_of(f"s{s:04d}", per_shop)]
        self.rnd = random.Random(2828)
        self.position = 10**9 + 1  # above the markers write_state wrote
        self.waiting: dict[tuple[str, str], list[str]] = {}
        self.buyer = 0

    async def write(self, share: float, now_ms: int) -> int:
        """Touch `share` of the agents at `now_ms`; how many were touched."""
        touched = self.rnd.sample(self.agents, max(1, round(share * len(self.agents))))
        by_partition: dict[int, WriteSet] = {}
        for shop, agent in touched:
            writes = by_partition.setdefault(zlib.crc32(agent.encode()) % PARTITIONS, WriteSet())
            self._cohort(writes, shop, agent, now_ms)
            self._wait(writes, shop, agent, now_ms)
        self.position += 1
        entries = [outbox.from_writes(p, self.position, w) for p, w in sorted(by_partition.items())]
        await run_scripts(self.client, outbox.apply_calls([e for e in entries if e is not None]))
        return len(touched)

    def _cohort(self, writes: WriteSet, shop: str, agent: str, now_ms: int) -> None:
        policy = self.runtime.policies(shop)
        day = policy.calendar.day(now_ms)
        day_expiry = policy.calendar.day_start_ms(day + policy.retention_days) + MS_PER_HOUR
        minute, second = now_ms // 60_000, now_ms // 1000 % 60
        minute_end = (minute + 1) * 60_000
        for name, amount in (("c", 1), ("r", 1), ("fs", self.rnd.randint(1, 20_000)), ("i", 1)):
            writes.increment(keys.bucket_key(shop, agent, "d", day), name, amount, day_expiry)
            writes.increment(
                keys.bucket_key(shop, agent, "m", minute), name, amount, minute_end + MINUTE_RETENTION_MS
            )
            writes.increment(
                keys.bucket_key(shop, agent, "s", minute),
                f"{name}:{second}",
                amount,
                minute_end + FINE_RETENTION_MS,
            )
        histogram = keys.histogram_key(shop, agent)
        writes.increment(
            histogram, str(self.rnd.randrange(len(DAY_HISTOGRAM_FIELDS))), 1, now_ms + INDEX_TTL_MS
        )
        writes.agents_seen[shop][agent] = now_ms

    def _wait(self, writes: WriteSet, shop: str, agent: str, now_ms: int) -> None:
        """Half the touches start a wait, the other half end the agent's oldest one."""
        key = keys.waiting_key(shop, agent)
        writes.expire_at_ms[key] = now_ms + self.runtime.policies(shop).wait_limit_ms + MS_PER_HOUR
        waits = self.waiting.setdefault((shop, agent), [])
        if waits and self.rnd.random() < 0.5:
            writes.waits_remove[key].add(waits.pop(0))
        else:
            self.buyer += 1
            buyer = f"tb_churn_{self.buyer}"
            waits.append(buyer)
            writes.waits_add[key][buyer] = now_ms - self.rnd.randint(0, 2_000)


def new_runtime(client: aioredis.Redis, sent: list[AlertEvent]) -> Runtime:
    async def sink(events: Sequence[AlertEvent]) -> None:
        sent.extend(events)

    settings = settings_from_yaml("processing:\n  max_shops: 5000\n")
    runtime = Runtime.create(settings, sink, sink)  # type: ignore[arg-type]
    asyncio.get_running_loop().create_task(runtime.store.close())  # its default client is never used
    store = RedisStore(client)
    runtime.store = store
    runtime.reader = FloorReader(store, runtime.policies, store)
    return runtime


async def median_ms(
    action: Callable[[int], Awaitable[object]],
    start_ms: int,
    rounds: int = ROUNDS,
    before: Callable[[int], Awaitable[object]] | None = None,
) -> float:
    """The median of `rounds` timed actions one second apart; `before` runs untimed ahead of each."""
    times = []
    for n in range(rounds):
        if before is not None:
            await before(start_ms + n * 1000)
        started = time.perf_counter()
        await action(start_ms + n * 1000)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def top_entries(profile: cProfile.Profile) -> list[str]:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(PROFILE_ENTRIES)
    lines = [line.strip() for line in out.getvalue().splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("ncalls"))
    return [" ".join(line.split()) for line in lines[start + 1 :] if line][:PROFILE_ENTRIES]


async def measure(client: aioredis.Redis, shops: int, per_shop: int, profile: bool) -> dict[str, object]:
    await client.flushdb()
    now_ms = time.time_ns() // 1_000_000
    sent: list[AlertEvent] = []
    runtime = new_runtime(client, sent)
    started = time.perf_counter()
    await write_state(client, runtime, shops, per_shop, now_ms)
    written_s = time.perf_counter() - started
    heap.settle()  # as a worker's first batch does, before its first round (agents/worker/heap.py)
    leader = runtime.leader
    started = time.perf_counter()
    await leader.lead(now_ms)  # the first round: the leader's epoch, and every agent read
    cold_ms = (time.perf_counter() - started) * 1000
    agents = sum(len(f.agents) for f in runtime.collector.snapshot.floors)
    assert agents >= shops * per_shop, f"the round saw {agents} agents"
    churn = Churn(client, runtime, shops, per_shop)
    at = now_ms + 1000

    def churned(share: float) -> Callable[[int], Awaitable[object]]:
        return lambda moment: churn.write(share, moment - 1)

    figures: dict[str, object] = {"cold_round_ms": round(cold_ms, 1)}
    for name, share in (
        ("idle", None),
        ("churn", CHURN_SHARE),
        ("churn10", TEN_PERCENT),
        ("idle_after", None),
    ):
        before = churned(share) if share is not None else None
        figures[f"{name}_round_ms"] = await median_ms(leader.lead, at, before=before)
        at += ROUNDS * 1000
    figures["read_snapshot_ms"] = await median_ms(leader.read_snapshot, at, before=churned(CHURN_SHARE))
    at += ROUNDS * 1000
    figures["exposition_ms"] = await median_ms(
        lambda _: asyncio.to_thread(floor_exposition, runtime.collector.snapshot), at, rounds=3
    )
    # What a scrape costs after a churned round: the text of the last snapshot kept, as FloorText
    # keeps it, and a round's changes written again.
    kept = KeptText()
    floor_exposition(runtime.collector.snapshot, kept)

    async def churned_round(moment: int) -> None:
        await churn.write(CHURN_SHARE, moment - 2)
        await leader.lead(moment - 1)

    figures["exposition_churned_ms"] = await median_ms(
        lambda _: asyncio.to_thread(floor_exposition, runtime.collector.snapshot, kept),
        at,
        rounds=5,
        before=churned_round,
    )
    at += 5 * 1000
    figures["churned_agents_per_round"] = max(1, round(CHURN_SHARE * shops * per_shop))
    figures["state_written_s"] = round(written_s, 1)
    figures["alert_events"] = len(sent)
    if profile:  # an idle round, then a churned one
        for name, share in (("profile_idle", None), ("profile", CHURN_SHARE)):
            if share is not None:
                await churn.write(share, at - 1)
            profiler = cProfile.Profile()
            profiler.enable()
            await leader.lead(at)
            profiler.disable()
            figures[name] = top_entries(profiler)
            at += 1000
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=1_000)
    args = parser.parse_args()
    heap.configure()  # the worker's collector thresholds (streams/commands/main.py)
    url = (
        stack_env(os.environ.get("KEFU_BENCH_STACK", "bench"))["KEFU_REDIS_URL"].rsplit("/", 1)[0] + f"/{DB}"
    )
    client = aioredis.Redis.from_url(url)
    small = await measure(client, 1, 10, profile=False)
    large = await measure(client, args.shops, args.agents // args.shops, profile=True)
    await client.flushdb()
    await client.aclose()
    print(json.dumps(lead_round_figures(small, large, args.agents)))


def lead_round_figures(small: dict[str, object], large: dict[str, object], agents: int) -> dict[str, object]:
    """The JSON line: `lead_round_ms_at_*` are churned rounds at CHURN_SHARE (what a busy floor
    costs); the idle, 10%-churn and cold rounds beside them."""
    at_10, at_n = float(small["churn_round_ms"]), float(large["churn_round_ms"])  # type: ignore[arg-type]
    suffix = "10k" if agents == 10_000 else str(agents)
    figures: dict[str, object] = {
        "lead_round_ms_at_10_agents": at_10,
        f"lead_round_ms_at_{suffix}_agents": at_n,
        "ratio": round(at_n / at_10, 1),
        "churned_agents_per_round": large["churned_agents_per_round"],
    }
    for name in ("idle", "churn10", "idle_after", "cold"):
        figures[f"lead_round_{name}_ms_at_10_agents"] = small[f"{name}_round_ms"]
        figures[f"lead_round_{name}_ms_at_{suffix}_agents"] = large[f"{name}_round_ms"]
    return figures | {
        f"read_snapshot_ms_at_{suffix}_agents": large["read_snapshot_ms"],
        f"metrics_text_ms_at_{suffix}_agents": large["exposition_ms"],
        "metrics_text_ms_at_10_agents": small["exposition_ms"],
        f"metrics_text_churned_ms_at_{suffix}_agents": large["exposition_churned_ms"],
        "state_written_s": large["state_written_s"],
        "profile": large.get("profile", []),
        "profile_idle": large.get("profile_idle", []),
    }


if __name__ == "__main__":
    asyncio.run(main())
