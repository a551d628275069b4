"""What the drill-down lists (明细) cost: Redis bytes per consultation, and the time of a 31-day
list of one agent and of a 200-agent team. Prints one JSON line; the baseline, measured in the
same run on the same Redis, is the raw read of the same hashes (pipelined HGETALLs, no decoding).

Rows are encoded as the worker encodes them (agents/core/details.py), with buyer and order ids
shaped like a platform's: one agent at 200 consultations a day (93 % replied, 30 % of those
ordered, 80 % of orders paid), the team at 40 a day each. Redis runs with the listpack limits
of deploy/local/stack (docs/operations.md). Run: `.venv/bin/python -m bench.details`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import msgspec
import redis

from agents.core.details import ConsultationDetail, Flag, OrderRef
from agents.core.policy import PolicyBook
from agents.core.report_range import day_text
from agents.exposure.details import DetailsQuery, DetailsReader
from agents.store.connect import connect
from agents.store.keys import SHOPS_INDEX_KEY, agents_index_key, details_key
from agents.store.redis_store import RedisStore
from bench.response_batching import redis_url
from config.settings import settings_from_yaml

SHOP, DAYS = "s1", 31
ONE_AGENT_A_DAY, TEAM, TEAM_A_DAY = 200, 200, 40
REPEATS = 7


def _row(rng: random.Random, start: int, day: int, n: int) -> bytes:
    replied = rng.random() < 0.93
    flags = Flag.REPLIED | Flag.INQUIRY if replied else Flag(0)
    orders: list[OrderRef] = []
    if replied and rng.random() < 0.3:
        flags |= Flag.ORDERED
        paid = start + 600_000 if rng.random() < 0.8 else None
        flags |= Flag.PAID if paid else Flag(0)
        orders = [OrderRef(f"{day}{n:05d}{rng.randint(10**8, 10**9)}", start + 300_000, paid, 19_900, 0)]
    sales = sum(o.amount_fen for o in orders if o.paid)
    response = rng.randint(1_000, 60_000) if replied else None
    first_reply = start + response if response is not None else None
    detail = ConsultationDetail(start, first_reply, response, int(flags), None, sales, 0, 0, orders)
    return msgspec.msgpack.encode(detail)


def _fill(client: redis.Redis, policies: PolicyBook, agents: list[str], a_day: int, today: int) -> int:
    rng, calendar, rows = random.Random(1), policies(SHOP).calendar, 0
    for agent in agents:
        for day in range(today - DAYS + 1, today + 1):
            opening = calendar.day_start_ms(day) + 8 * 3_600_000
            hashed = {
                f"tb{rng.randint(10**9, 10**10)}": _row(rng, opening + rng.randint(0, 14 * 3_600_000), day, n)
                for n in range(a_day)
            }
            client.hset(details_key(SHOP, agent, day), mapping=hashed)  # type: ignore[arg-type]
            rows += len(hashed)
    now_ms = int(time.time() * 1000)
    client.zadd(agents_index_key(SHOP), {agent: now_ms for agent in agents})
    client.zadd(SHOPS_INDEX_KEY, {SHOP: now_ms})
    return rows


def _bytes_per_row(client: redis.Redis, agents: list[str], today: int, rows: int) -> tuple[float, str]:
    keys = [details_key(SHOP, a, d) for a in agents for d in range(today - DAYS + 1, today + 1)]
    used = sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)
    encoding = client.object("encoding", keys[0])
    return used / rows, encoding.decode() if isinstance(encoding, bytes) else str(encoding)


async def _median_ms(work: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


async def _measure(url: str, policies: PolicyBook, agents: list[str], today: int) -> dict[str, float]:
    store = RedisStore(connect(url))
    reader = DetailsReader(store, policies)
    now_ms = int(time.time() * 1000)
    first, last = day_text(today - DAYS + 1), day_text(today)
    keys = [details_key(SHOP, a, d) for a in agents for d in range(today - DAYS + 1, today + 1)]
    agent = agents[0] if len(agents) == 1 else None
    query = DetailsQuery(SHOP, "lost", first, last, agent=agent)
    try:
        return {
            "raw_read_ms": await _median_ms(lambda: store.details(keys)),
            "first_page_ms": await _median_ms(lambda: reader.page(query, now_ms)),
            "whole_list_ms": await _median_ms(lambda: reader.everything(query, now_ms)),
        }
    finally:
        await store.close()


def main() -> None:
    url = redis_url()
    client = redis.Redis.from_url(url)
    policies = PolicyBook(settings_from_yaml(""))
    today = policies(SHOP).calendar.day(int(time.time() * 1000))
    figures: dict[str, object] = {}
    for label, agents, a_day in (
        ("one_agent", ["s1:A"], ONE_AGENT_A_DAY),
        ("team", [f"s1:t{n:03d}" for n in range(TEAM)], TEAM_A_DAY),
    ):
        client.flushdb()
        rows = _fill(client, policies, agents, a_day, today)
        per_row, encoding = _bytes_per_row(client, agents, today, rows)
        measured = asyncio.run(_measure(url, policies, agents, today))
        over_raw = measured["whole_list_ms"] / max(measured["raw_read_ms"], 0.1)
        figures[label] = {
            "rows": rows,
            "bytes_per_consultation": round(per_row, 1),
            "hash_encoding": encoding,
            **measured,
            "whole_list_over_raw_read": round(over_raw, 2),
        }
    client.flushdb()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
