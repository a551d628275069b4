"""Realistic simulated shop traffic, in event time, deterministic for a seed.

Buyers arrive in waves (a Poisson process whose rate swings ±50 %), send a burst of
messages, often get an auto-reply, and are answered after a long-tailed delay (some
past 15 s, some never); some are transferred, some come back, some order and pay, some
cancel, a few are refunded. Ad senders, silent orders, duplicate deliveries and malformed records are mixed
in. The generator knows nothing of Kafka: it yields (kind, key, value) records.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

EVENTS_PER_SESSION = 5.2  # measured mean of the model below (past its warm-up), turns a rate into arrivals


@dataclass(frozen=True, slots=True)
class SimRecord:
    ts: int
    kind: str  # "messages" | "orders"
    key: bytes
    value: bytes


@dataclass(frozen=True)
class TrafficShape:
    shops: int = 2
    agents: int = 5
    rate: float = 50.0  # events per second, on average
    duplicate_share: float = 0.01
    bad_share: float = 0.005
    ad_share: float = 0.03
    silent_order_share: float = 0.02
    # Agents answer after a log-normal delay: median and spread (sigma of the log).
    reply_median_s: float = 7.0
    reply_spread: float = 0.8
    unanswered_share: float = 0.06  # buyers left waiting until the queue drops them (24 h)
    # Zipf exponent of how buyers spread over a shop's agents: 0 is even, larger favours agent0.
    agent_skew: float = 0.7
    refund_share: float = 0.08  # of paid orders: half refunded in part, half whole (退款)


class OpenConversations:
    """The buyers whose latest message a simulator sent is still unanswered, and by whom.

    A simulator that stops mid-conversation would leave them waiting for the whole 24-hour wait
    limit, and every later run (the demo's second start) would open on a floor of red agents.
    Stopping answers them instead: the shop closes with every buyer answered.
    """

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def observe(self, record: SimRecord) -> None:
        if record.kind != "messages":
            return
        try:
            event = json.loads(record.value)
        except ValueError:
            return  # the model's deliberately broken records change nothing
        conversation = (event["shop_id"], event["buyer_id"])
        if event["type"] == "transfer":
            if conversation in self._waiting:
                self._waiting[conversation] = event["to_agent"]
        elif event["sender"] == "buyer":
            self._waiting[conversation] = event["agent_id"]
        elif not event.get("auto_reply", False):
            self._waiting.pop(conversation, None)

    def answers(self, ts: int) -> list[SimRecord]:
        """One agent reply at `ts` per waiting buyer; afterwards nobody is waiting."""
        records = [
            SimRecord(
                ts,
                "messages",
                f"{shop}:{buyer}".encode(),
                json.dumps(
                    {
                        "event_id": f"sim-close-{ts}-{n}",
                        "type": "message",
                        "shop_id": shop,
                        "buyer_id": buyer,
                        "agent_id": agent,
                        "sender": "agent",
                        "ts": ts,
                    }
                ).encode(),
            )
            for n, ((shop, buyer), agent) in enumerate(sorted(self._waiting.items()))
        ]
        self._waiting.clear()
        return records


class TrafficModel:
    def __init__(self, shape: TrafficShape, seed: int = 0) -> None:
        self.shape = shape
        self.random = random.Random(seed)
        self._ids = itertools.count()
        self._sequence = itertools.count()
        self._queue: list[tuple[int, int, SimRecord]] = []
        self._agent_weights = [1 / (rank + 1) ** shape.agent_skew for rank in range(shape.agents)]

    def agent_ids(self, shop: int) -> list[str]:
        return [f"shop{shop}:agent{a}" for a in range(self.shape.agents)]

    def records(self, start_ms: int) -> Iterator[SimRecord]:
        """An endless stream in event-time order, starting at `start_ms`."""
        shape = self.shape
        arrivals_per_ms = shape.rate / EVENTS_PER_SESSION / 1000
        clock = float(start_ms)
        while True:
            swing = 1 + 0.5 * math.sin(2 * math.pi * (clock - start_ms) / 120_000)  # a wave every 2 min
            clock += self.random.expovariate(arrivals_per_ms * swing)
            self._schedule_session(int(clock))
            while self._queue and self._queue[0][0] <= clock:
                yield heapq.heappop(self._queue)[2]

    def _push(self, record: SimRecord) -> None:
        heapq.heappush(self._queue, (record.ts, next(self._sequence), record))
        r = self.random.random()
        if r < self.shape.duplicate_share:
            heapq.heappush(self._queue, (record.ts + 1, next(self._sequence), record))  # redelivered
        elif r < self.shape.duplicate_share + self.shape.bad_share:
            broken = SimRecord(record.ts, record.kind, record.key, record.value[: len(record.value) // 2])
            heapq.heappush(self._queue, (record.ts, next(self._sequence), broken))

    def _event(self, kind: str, shop: str, buyer: str, ts: int, **fields: object) -> SimRecord:
        body = {
            "event_id": f"sim-{next(self._ids)}",
            "type": fields.pop("type"),
            "shop_id": shop,
            "buyer_id": buyer,
            "ts": ts,
            **fields,
        }
        return SimRecord(ts, kind, f"{shop}:{buyer}".encode(), json.dumps(body).encode())

    def _schedule_session(self, ts: int) -> None:
        rnd = self.random
        shop_index = rnd.randrange(self.shape.shops)
        shop = f"shop{shop_index}"
        buyer = f"tb_{rnd.getrandbits(40):010x}"
        if rnd.random() < self.shape.silent_order_share:
            self._order(shop, buyer, ts, f"T{next(self._ids)}", rnd.random() < 0.8)
            return
        if rnd.random() < self.shape.ad_share:
            buyer = f"ad_spam_{rnd.getrandbits(24):06x}"
        agents = self.agent_ids(shop_index)
        agent = rnd.choices(agents, weights=self._agent_weights)[0]  # a few agents are busiest
        t = ts
        for _round in range(1 + int(rnd.expovariate(1.0))):
            for _ in range(1 + int(rnd.expovariate(0.8))):
                self._push(
                    self._event("messages", shop, buyer, t, type="message", agent_id=agent, sender="buyer")
                )
                t += int(rnd.uniform(500, 4000))
            if _round == 0 and rnd.random() < 0.3:
                self._push(
                    self._event(
                        "messages",
                        shop,
                        buyer,
                        t + 800,
                        type="message",
                        agent_id=agent,
                        sender="agent",
                        auto_reply=True,
                    )
                )
            if rnd.random() < 0.05:
                target = rnd.choice(agents)
                self._push(
                    self._event(
                        "messages", shop, buyer, t + 2000, type="transfer", from_agent=agent, to_agent=target
                    )
                )
                agent, t = target, t + 2000
            if rnd.random() < self.shape.unanswered_share:
                return  # never answered: the buyer waits until the queue drops it
            # Long-tailed: with the defaults, median 7 s and about one answer in six past 15 s.
            t += int(rnd.lognormvariate(math.log(self.shape.reply_median_s * 1000), self.shape.reply_spread))
            self._push(
                self._event("messages", shop, buyer, t, type="message", agent_id=agent, sender="agent")
            )
            t += int(rnd.uniform(5000, 40_000))
        if rnd.random() < 0.25:
            self._order(
                shop, buyer, t + int(rnd.uniform(10_000, 300_000)), f"T{next(self._ids)}", rnd.random() < 0.75
            )

    def _order(self, shop: str, buyer: str, ts: int, order_id: str, pays: bool) -> None:
        rnd = self.random
        amount = f"{rnd.randrange(990, 99_900) / 100:.2f}"
        self._push(
            self._event(
                "orders", shop, buyer, ts, type="order", order_id=order_id, status="created", amount=amount
            )
        )
        later = ts + int(rnd.uniform(5_000, 120_000))
        status = "paid" if pays else "cancelled"
        self._push(
            self._event(
                "orders", shop, buyer, later, type="order", order_id=order_id, status=status, amount=amount
            )
        )
        if pays and rnd.random() < self.shape.refund_share:
            refund: dict[str, str] = {}
            if rnd.random() < 0.5:  # a partial refund: a part of the amount, in whole yuan
                refund["amount"] = f"{max(1, int(float(amount) * rnd.uniform(0.1, 0.6))):.2f}"
            refunded_at = later + int(rnd.uniform(600_000, 3_600_000))
            self._push(
                self._event(
                    "orders",
                    shop,
                    buyer,
                    refunded_at,
                    type="order",
                    order_id=order_id,
                    status="refunded",
                    **refund,
                )
            )
