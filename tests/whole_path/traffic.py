"""Random traffic for the simulated days, built on the edges of metrics.md.

Each buyer's conversation arrives in its own order (events.md: one key, one partition), later
than it happened by a delay of its own; orders arrive on their own topic with other delays, so
many arrive before the messages that came first. Mixed in: duplicates (redelivered records),
transfers, auto-replies, ratings (v3: some of no consultation, some at the edge of
`rating_days`), waits past the 24 h limit, refunds (partial, whole, more than the order, and
some more than 28 days after the payment), and late events (older than the `28d` window, or
than the orders' look-back, when they arrive).
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import msgspec

from streams.contract.events import Event, Message, Order, Rating, Transfer
from streams.wire.partitioning import home_partition
from streams.wire.records import Record
from tests.reference import DAY_MS, local_day, local_midnight
from tests.whole_path.shops import MESSAGES_TOPIC, ORDERS_TOPIC, PARTITIONS, ShopPlan

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
# Gaps between one buyer's conversation events: first-response and target edges, the alert
# threshold, the histogram bounds, and plain random ones (see `_gap`).
EDGE_GAPS = (0, 1, 999, 1000, 1001, 14_999, 15_000, 15_001, 29_999, 30_000, 60_000, 180_000, 180_001)
# An order's moment relative to a moment of its buyer's conversation: the judging moment
# against the reply, the 24h and 3d windows, the next business day.
ORDER_DELTAS = (-1, 0, 1, 30_000, 2 * HOUR_MS, 24 * HOUR_MS - 1, 24 * HOUR_MS, 24 * HOUR_MS + 1)
ORDER_STEPS = (
    ("created",),
    ("paid",),
    ("created", "paid"),
    ("created", "paid"),
    ("created", "cancelled"),
    ("paid", "cancelled"),
    ("created", "paid", "refunded"),
    ("paid", "refunded", "refunded"),
    ("created", "refunded", "paid"),
)
AMOUNTS_FEN = (100, 2500, 19900, 12345, 99999)
# How long after the payment some refunds come: around the 28-day cutoff of the credited cohort.
# At 27 days, the day of an inquiry credited the evening before the payment has left `28d`
# while the payment's day is still in it (the younger inquiry a refund must not find).
LATE_REFUND_DAYS_MS = (
    27 * DAY_MS,
    27 * DAY_MS + 20 * HOUR_MS,
    28 * DAY_MS - 1,
    28 * DAY_MS,
    28 * DAY_MS + 1,
    33 * DAY_MS,
)
# Some conversations end with the buyer's rating (v3), this long after its last event: at once,
# later that day, and 3 days on (the default `rating_days` counts business days from the
# consultation's day: these land inside it, and the edges below on both sides of its end).
RATING_SHARE = 0.3
RATING_GAPS = (0, 1, 10 * MINUTE_MS, 3 * DAY_MS - 20 * MINUTE_MS, 3 * DAY_MS, 3 * DAY_MS + 1)
# Or at the end of the default `rating_days`, counted from the last event's business day: its
# last ms and the next day's midnight.
RATING_EDGES = (-1, 0)
SCORES = (5, 5, 5, 4, 4, 3, 2, 1)
# A buyer who orders and pays the next day, asking another agent in between (催付).
NEXT_DAY_PAYMENT_MS = (12 * HOUR_MS, 20 * HOUR_MS, 26 * HOUR_MS)


@dataclass(frozen=True)
class Delivery:
    """One record as Kafka will hand it over: when it arrives, and what it holds."""

    arrival: int
    serial: int
    topic: str
    key: bytes
    value: bytes
    event: Event

    def record(self, offset: int) -> Record:
        return Record(self.topic, home_partition(self.key, PARTITIONS), offset, self.key, self.value)


def wire(event: Event) -> bytes:
    """The JSON a producer writes (events.md); amounts in yuan with two decimals."""
    if isinstance(event, Order):
        body: dict[str, object] = {
            "event_id": event.event_id,
            "type": "order",
            "shop_id": event.shop_id,
            "buyer_id": event.buyer_id,
            "order_id": event.order_id,
            "status": event.status,
            "ts": event.ts,
        }
        if event.amount_fen is not None:
            body["amount"] = f"{event.amount_fen // 100}.{event.amount_fen % 100:02d}"
        return json.dumps(body).encode()
    return msgspec.json.encode(event)


@dataclass
class _Buyer:
    shop: ShopPlan
    buyer_id: str
    free_from: int = 0  # the next conversation starts after the last one's events
    last_arrival: int = 0  # conversation records arrive in order


@dataclass
class TrafficGenerator:
    plans: tuple[ShopPlan, ...]
    rng: random.Random
    pending: list[tuple[int, int, Delivery]] = field(default_factory=list)  # a heap by arrival
    serial: int = 0
    buyers: dict[tuple[str, str], _Buyer] = field(default_factory=dict)
    recent_starts: list[int] = field(default_factory=list)  # buyer messages of the last day made

    def day(self, day_start: int) -> None:
        """Queue the traffic of the 24 hours from `day_start` (and what follows from it later)."""
        self.recent_starts = []
        for plan in self.plans:
            pool = [f"{plan.shop}-b{i}" for i in range(4 * plan.buyers_per_day)]
            count = self.rng.randint(plan.buyers_per_day // 2, plan.buyers_per_day * 3 // 2)
            for buyer_id in self.rng.sample(pool, count):
                buyer = self.buyers.setdefault((plan.shop, buyer_id), _Buyer(plan, buyer_id))
                self._conversation(buyer, self._start(plan, day_start))
            if self.rng.random() < 0.5:
                self._late(plan, day_start + self.rng.randrange(DAY_MS))

    def due(self, until: int) -> Iterator[Delivery]:
        """The deliveries that arrived by `until`, in arrival order."""
        while self.pending and self.pending[0][0] <= until:
            yield heapq.heappop(self.pending)[2]

    def _push(self, event: Event, arrival: int) -> None:
        self.serial += 1
        topic = ORDERS_TOPIC if isinstance(event, Order) else MESSAGES_TOPIC
        key = f"{event.shop_id}:{event.buyer_id}".encode()
        delivery = Delivery(arrival, self.serial, topic, key, wire(event), event)
        heapq.heappush(self.pending, (arrival, self.serial, delivery))

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _start(self, plan: ShopPlan, day_start: int) -> int:
        """Mostly random; often on an edge: the shop's midnight, its opening and closing,
        a second's first or last millisecond."""
        zone = plan.rules.zone
        midnight = local_midnight(local_day(day_start + DAY_MS, zone), zone)
        edges = [midnight + d for d in (-1000, -1, 0, 1, 999)]
        if plan.rules.service_hours:
            opening, closing = plan.rules.service_hours.split("-")
            for text in (opening, closing):
                hour, minute = (int(part) for part in text.split(":"))
                local = local_midnight(local_day(day_start + HOUR_MS * 12, zone), zone)
                edges += [local + (hour * 60 + minute) * MINUTE_MS + d for d in (-15_001, -1, 0, 1)]
        choice = self.rng.random()
        if choice < 0.25:
            return self.rng.choice(edges)
        moment = day_start + self.rng.randrange(DAY_MS)
        if choice < 0.4:
            return moment - moment % 1000 + self.rng.choice((0, 999))
        return moment

    def _gap(self) -> int:
        roll = self.rng.random()
        if roll < 0.55:
            return self.rng.choice(EDGE_GAPS)
        if roll < 0.97:
            return self.rng.randrange(20 * MINUTE_MS)
        return self.rng.choice((24 * HOUR_MS, 24 * HOUR_MS + 1, self.rng.randrange(30 * HOUR_MS)))

    def _conversation(self, buyer: _Buyer, start: int, follow_up: bool = True) -> None:
        plan, rng = buyer.shop, self.rng
        shop, buyer_id = plan.shop, buyer.buyer_id
        ts = max(start, buyer.free_from + 1)
        delay = rng.choice((0, 0, 50, 2000, 90_000, 10 * MINUTE_MS))
        agent = rng.choice(plan.everyone if rng.random() < 0.15 else plan.agents)
        talk: list[Event] = []
        moments: list[int] = []
        for step in range(rng.randint(1, 9)):
            kind = (
                "buyer" if step == 0 else rng.choice(("buyer", "agent", "agent", "auto", "transfer", "dup"))
            )
            ts += 0 if step == 0 else self._gap()
            if kind == "dup" and talk:
                # After everything of the buyer's sent so far: a redelivery never overtakes them.
                self._push(rng.choice(talk), max(ts + delay, buyer.last_arrival) + rng.randrange(HOUR_MS))
                continue
            if kind == "transfer":
                target = rng.choice(plan.everyone)
                event: Event = Transfer(self._id("t"), shop, buyer_id, ts, agent, target)
                agent = target
            else:
                sender = "buyer" if kind in ("buyer", "dup") else "agent"
                event = Message(self._id("m"), shop, buyer_id, ts, agent, sender, kind == "auto")  # type: ignore[arg-type]
            talk.append(event)
            moments.append(ts)
            if sender_is_buyer(event):
                self.recent_starts.append(ts)
            arrival = max(ts + delay, buyer.last_arrival)
            buyer.last_arrival = arrival
            self._push(event, arrival)
        buyer.free_from = ts
        if rng.random() < RATING_SHARE:
            # The buyer's events stay in time order: nothing before the rating follows it.
            if rng.random() < 0.25:
                zone = plan.rules.zone
                edge = local_midnight(local_day(ts, zone) + timedelta(days=4), zone)
                ts = max(ts, edge + rng.choice(RATING_EDGES))
            else:
                ts += rng.choice(RATING_GAPS)
            rated = agent if rng.random() < 0.9 else rng.choice(plan.everyone)  # else often unmatched
            rating = Rating(self._id("r"), shop, buyer_id, ts, rated, rng.choice(SCORES))
            buyer.last_arrival = max(ts + delay, buyer.last_arrival)
            self._push(rating, buyer.last_arrival)
            buyer.free_from = ts
        for number in range(rng.choice((0, 0, 1, 1, 2))):
            order_id = f"{buyer_id}-{self._id('T')}-{number}"
            self._order(buyer, order_id, rng.choice(moments), follow_up and rng.random() < 0.3)

    def _order(self, buyer: _Buyer, order_id: str, anchor: int, pay_next_day: bool) -> None:
        rng, plan, buyer_id = self.rng, buyer.shop, buyer.buyer_id
        moment = anchor + rng.choice((*ORDER_DELTAS, rng.randrange(3 * DAY_MS + 2)))
        amount = rng.choice(AMOUNTS_FEN)
        paid_at: int | None = None
        for status in rng.choice(ORDER_STEPS):
            value: int | None = amount
            if status == "refunded":  # whole, partial, or more than the rest of the order
                value = rng.choice((None, 50, amount // 2 + 1, amount * 2))
                if paid_at is not None and rng.random() < 0.35:
                    moment = paid_at + rng.choice(LATE_REFUND_DAYS_MS)
            event = Order(self._id("o"), plan.shop, buyer_id, moment, order_id, status, value)  # type: ignore[arg-type]
            paid_at = moment if status == "paid" else paid_at
            arrival = moment + rng.choice((0, 0, 1, 1000, 5 * MINUTE_MS))
            self._push(event, arrival)
            if rng.random() < 0.1:  # a producer's retry: the same event once more, a bit later
                self._push(event, arrival + rng.randrange(MINUTE_MS))
            if pay_next_day and status == "created":
                moment += rng.choice(NEXT_DAY_PAYMENT_MS)
                self._conversation(buyer, moment - 2 * HOUR_MS, follow_up=False)
            else:
                moment += rng.choice((0, 1, MINUTE_MS, 2 * HOUR_MS))

    def _late(self, plan: ShopPlan, arrival: int) -> None:
        """A message older than the `28d` window on arrival, and an order at the edge of the
        orders' look-back (one millisecond inside or outside it)."""
        rules = plan.rules
        cutoff = local_midnight(local_day(arrival, rules.zone) - timedelta(days=27), rules.zone)
        buyer_id = f"{plan.shop}-late{self.serial}"
        old = cutoff - self.rng.choice((1, 1000, DAY_MS))
        self._push(Message(self._id("m"), plan.shop, buyer_id, old, plan.agents[0], "buyer"), arrival)
        look_back = cutoff - rules.after_sale_days * DAY_MS
        order_ts = look_back + self.rng.choice((-1, 0, 1))  # judged at the batch's clock, a bit later
        order = Order(self._id("o"), plan.shop, buyer_id, order_ts, f"{buyer_id}-old", "paid", 777)
        self._push(order, arrival)


def sender_is_buyer(event: Event) -> bool:
    return (isinstance(event, Message) and event.sender == "buyer") or isinstance(event, Transfer)
