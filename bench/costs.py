"""Per-event costs and Redis memory per active buyer, printed as one JSON line per rule set.

decode_us: EventDecoder.decode per record; core_message_us / core_order_us / core_rating_us: the
pure core (apply_buyer_events) per event of each kind (ratings, v3, rate a consultation already in
the buyer's state, as the simulated buyers' ratings do); redis_bytes_per_buyer: Redis used-memory growth
per distinct buyer after applying simulated traffic through the worker's BatchProcessor.
Measured twice in one run: with the default rules, and with the heaviest v2 rules (service
hours, four response targets, judging at payment, refunds deducted), so the ratio shows what
metrics.md v2 costs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from agents.core.buyer import BuyerState
from agents.core.engine import Horizon, apply_buyer_events
from agents.core.policy import PolicyBook
from agents.exposure.metrics import WorkerMetrics
from agents.processing.batch import BatchProcessor
from agents.store import keys
from agents.store.redis_store import RedisStore
from bench.response_batching import redis_url
from config.settings import Settings, settings_from_yaml
from streams.contract.events import Event, Order, Rating
from streams.simulation.traffic import RATING_SHARE, TrafficModel, TrafficShape
from streams.wire.decoding import EventDecoder, Rejection
from streams.wire.records import Record

# Ratings (v3) in the mix as the demo sends them; agent status is no buyer's event (another path).
SHAPE = TrafficShape(shops=3, agents=20, rate=20, duplicate_share=0, bad_share=0, rating_share=RATING_SHARE)


def simulated(n: int) -> list[tuple[bytes, bytes, str]]:
    start = time.time_ns() // 1_000_000 - 2 * 3_600_000
    # 20 events/s spreads 50k events over ~40 minutes, long enough for refunds to follow payments.
    model = TrafficModel(SHAPE, seed=5)
    return [(r.key, r.value, r.kind) for r in itertools.islice(model.records(start), n)]


KINDS: dict[type, str] = {Order: "order", Rating: "rating"}  # the rest: messages and transfers


def per_event_us(seconds: float, n: int) -> float:
    return round(seconds / max(n, 1) * 1e6, 2)


RULE_SETS = {
    "defaults": "",
    "v2_heaviest": (
        "defaults: {service_hours: '08:00-23:00', response_targets_seconds: [15, 30, 60, 180], "
        "attribution: {judge: paid, deduct_refunds: true}}"
    ),
}


async def main(n: int = 50_000) -> None:
    for name, rules in RULE_SETS.items():
        print(json.dumps({"rules": name} | await measure(n, settings_from_yaml(rules))))


async def measure(n: int, settings: Settings) -> dict[str, float | int]:
    data = simulated(n)
    now = time.time_ns() // 1_000_000
    decoder = EventDecoder()
    started = time.perf_counter()
    events = [decoder.decode(value, key, now) for key, value, _ in data]
    decode_us = per_event_us(time.perf_counter() - started, n)

    policies = PolicyBook(settings)
    by_buyer: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        if isinstance(event, Rejection):  # the simulated traffic here has no bad records
            raise RuntimeError(f"a simulated record was rejected: {event}")
        by_buyer[(event.shop_id, event.buyer_id)].append(event)
    timings = {"message": [0.0, 0], "order": [0.0, 0], "rating": [0.0, 0]}
    for (shop, _), buyer_events in by_buyer.items():
        policy = policies(shop)
        horizon = Horizon.at(policy, now)
        state = BuyerState()
        for event in buyer_events:  # one event per call: the cost of one more event on real state
            kind = KINDS.get(type(event), "message")
            t0 = time.perf_counter()
            apply_buyer_events(state, [event], policy, horizon)
            timings[kind][0] += time.perf_counter() - t0
            timings[kind][1] += 1

    client = aioredis.Redis.from_url(redis_url())
    await client.flushdb()
    before = int((await client.info("memory"))["used_memory"])

    async def no_dead_letters(_: object) -> None:
        return None

    processor = BatchProcessor(
        RedisStore(client).batches,
        policies,
        decoder,
        no_dead_letters,
        WorkerMetrics.create(CollectorRegistry()),
    )
    records = [Record("kefu.messages", 0, i, key, value) for i, (key, value, _) in enumerate(data)]
    for i in range(0, len(records), 2000):
        await processor.process(records[i : i + 2000])
    after = int((await client.info("memory"))["used_memory"])
    buyer_keys = [k async for k in client.scan_iter(keys.BUYER_KEY_PATTERN, count=1000)]
    sample = buyer_keys[:2000]
    usage = [await client.memory_usage(k) or 0 for k in sample]
    await client.aclose()
    return {
        "events": n,
        "buyers": len(by_buyer),
        "decode_us": decode_us,
        "core_message_us": per_event_us(timings["message"][0], int(timings["message"][1])),
        "core_order_us": per_event_us(timings["order"][0], int(timings["order"][1])),
        "core_rating_us": per_event_us(timings["rating"][0], int(timings["rating"][1])),
        "redis_bytes_per_buyer": round((after - before) / len(buyer_keys)),
        "buyer_key_bytes_avg": round(sum(usage) / len(usage)),
    }


if __name__ == "__main__":
    asyncio.run(main())
