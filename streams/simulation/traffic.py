"""Realistic simulated shop traffic, in event time, deterministic for a seed.

Buyers arrive in waves (a Poisson process whose rate swings ±50 %), send a burst of
messages, often get an auto-reply, and are answered after a long-tailed delay (some
past 15 s, some never); some are transferred, some come back, some order and pay, some
cancel, a few are refunded. Ad senders, silent orders, duplicate deliveries and malformed records are mixed
in. The generator knows nothing of Kafka: it yields (kind, key, value) records.

Two v3 additions are off unless a shape asks for them (`rating_share`, `agent_shifts`), so every
replay and benchmark of the older mix stays record for record what it was: buyers rate some
answered consultations (评价), and agents log in, take breaks (挂起) and log out on `kefu.agents`.
Each draws from its own random stream: turning one on leaves the buyers, agents and events of
the rest as they were (their times stretch a little, so that the total rate stays the one asked).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from config.calendar import MS_PER_DAY, MS_PER_HOUR

EVENTS_PER_SESSION = 5.2  # measured mean of the model below (past its warm-up), turns a rate into arrivals
RATING_SHARE = 0.35  # the share of answered buyers who rate, for traffic that asks for ratings (demo)

# Scores (5 很满意 … 1 很不满意) and their weights: most buyers are content; a buyer whose first
# answer came after the 15 s patience line is unhappy far more often.
SCORES = (5, 4, 3, 2, 1)
CONTENT_WEIGHTS = (76, 16, 4, 2, 2)
KEPT_WAITING_WEIGHTS = (40, 22, 14, 10, 14)
PATIENCE_MS = 15_000
RERATED_SHARE = 0.04  # buyers who change their rating later (a later rating replaces it)

# Agents' shifts, in event time from the traffic's start: everyone logs in within the first
# seconds (a demo opens on a staffed floor), works `SHIFT_MS`, with a break (挂起) after a few
# minutes to an hour of work, and logs in again a day after the last login.
LOGIN_SPREAD_MS = 10_000
SHIFT_MS = 9 * MS_PER_HOUR
WORK_MEAN_MS, WORK_MIN_MS = 40 * 60_000, 3 * 60_000
BREAK_MS = (3 * 60_000, 15 * 60_000)


@dataclass(frozen=True, slots=True)
class SimRecord:
    ts: int
    kind: str  # "messages" | "orders" | "agents" (the topics' keys in settings.kafka.topics)
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
    # v3: of the answered buyers (ads never rate), the share who rate the agent afterwards.
    rating_share: float = 0.0
    # v3: agents log in, take breaks and log out (`agents` records, keyed "{shop_id}:{agent_id}").
    agent_shifts: bool = False


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
        elif event["type"] != "message":
            return  # a rating neither starts a wait nor ends one
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


def status_record(ts: int, shop: str, agent: str, status: str, event_id: str) -> SimRecord:
    """An agent status event (events.md v3) on the `agents` topic, keyed by agent."""
    body = {
        "event_id": event_id,
        "type": "agent_status",
        "shop_id": shop,
        "agent_id": agent,
        "status": status,
    }
    return SimRecord(ts, "agents", f"{shop}:{agent}".encode(), json.dumps({**body, "ts": ts}).encode())


class SignedInAgents:
    """The agents whose latest status a simulator sent is online or away.

    Like a buyer left waiting, an agent left online by a stopped simulator would stay online,
    its online time growing, until the next run; stopping logs them out instead.
    """

    def __init__(self) -> None:
        self._signed_in: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self._signed_in)

    def observe(self, record: SimRecord) -> None:
        if record.kind != "agents":
            return
        event = json.loads(record.value)
        agent = (event["shop_id"], event["agent_id"])
        if event["status"] == "offline":
            self._signed_in.discard(agent)
        else:
            self._signed_in.add(agent)

    def logouts(self, ts: int) -> list[SimRecord]:
        """One `offline` event at `ts` per agent still signed in; afterwards nobody is."""
        records = [
            status_record(ts, shop, agent, "offline", f"sim-close-st-{ts}-{n}")
            for n, (shop, agent) in enumerate(sorted(self._signed_in))
        ]
        self._signed_in.clear()
        return records


def shift_changes(start_ms: int, rnd: random.Random) -> Iterator[tuple[int, str]]:
    """One agent's endless (ts, status) changes: a login in the first seconds, breaks, a logout
    after `SHIFT_MS`, and the same again a day after each login."""
    login = start_ms + int(rnd.uniform(0, LOGIN_SPREAD_MS))
    while True:
        yield login, "online"
        t, end = login, login + SHIFT_MS
        while True:
            t += max(WORK_MIN_MS, int(rnd.expovariate(1 / WORK_MEAN_MS)))
            if t >= end:
                break
            yield t, "away"
            t = min(t + int(rnd.uniform(*BREAK_MS)), end)
            if t >= end:
                break
            yield t, "online"
        yield end, "offline"
        login += MS_PER_DAY


# An agent's next status change: (ts, the agent's place in the heap's ties, status, shop, agent,
# the changes after it).
PendingChange = tuple[int, int, str, str, str, Iterator[tuple[int, str]]]


class TrafficModel:
    def __init__(self, shape: TrafficShape, seed: int = 0, id_prefix: str = "") -> None:
        """`id_prefix` starts every event and order id: models that feed one topic need their own,
        as event ids are unique per event (events.md) and order ids per shop."""
        self.shape = shape
        self.id_prefix = id_prefix
        self.random = random.Random(seed)
        # The v3 additions draw from streams of their own: the older mix stays what it was.
        self._rating_random = random.Random(f"{seed}:ratings")
        self._shift_random = random.Random(f"{seed}:shifts")
        self._ids = itertools.count()
        self._extra_ids = itertools.count()
        self._sequence = itertools.count()
        self._queue: list[tuple[int, int, SimRecord]] = []
        self._agent_weights = [1 / (rank + 1) ** shape.agent_skew for rank in range(shape.agents)]

    def agent_ids(self, shop: int) -> list[str]:
        return [f"shop{shop}:agent{a}" for a in range(self.shape.agents)]

    def events_per_session(self) -> float:
        """The mean records per buyer session, ratings included: what turns a rate into arrivals.
        (Status changes, a few per agent and hour, are left out: they are no buyer's traffic.)"""
        shape = self.shape
        # Only a conversation answered in every one of its 1 + ⌊Exp(1)⌋ rounds is rated.
        answered, more = 1 - shape.unanswered_share, math.exp(-1)
        every_round = answered * (1 - more) / (1 - answered * more)
        rating_buyers = (1 - shape.silent_order_share) * (1 - shape.ad_share) * every_round
        return EVENTS_PER_SESSION + shape.rating_share * rating_buyers * (1 + RERATED_SHARE)

    def records(self, start_ms: int) -> Iterator[SimRecord]:
        """An endless stream in event-time order, starting at `start_ms`."""
        shape = self.shape
        arrivals_per_ms = shape.rate / self.events_per_session() / 1000
        shifts: list[PendingChange] = self._shifts(start_ms) if shape.agent_shifts else []
        clock = float(start_ms)
        while True:
            swing = 1 + 0.5 * math.sin(2 * math.pi * (clock - start_ms) / 120_000)  # a wave every 2 min
            clock += self.random.expovariate(arrivals_per_ms * swing)
            self._schedule_session(int(clock))
            self._schedule_status_changes(shifts, clock)
            while self._queue and self._queue[0][0] <= clock:
                yield heapq.heappop(self._queue)[2]

    def _shifts(self, start_ms: int) -> list[PendingChange]:
        """A heap of every agent's next status change."""
        heap: list[PendingChange] = []
        for shop_index in range(self.shape.shops):
            for agent in self.agent_ids(shop_index):
                changes = shift_changes(start_ms, self._shift_random)
                ts, status = next(changes)
                heap.append((ts, len(heap), status, f"shop{shop_index}", agent, changes))
        heapq.heapify(heap)
        return heap

    def _schedule_status_changes(self, shifts: list[PendingChange], clock: float) -> None:
        while shifts and shifts[0][0] <= clock:
            ts, order, status, shop, agent, changes = heapq.heappop(shifts)
            self._enqueue(
                status_record(ts, shop, agent, status, f"{self.id_prefix}sim-st-{next(self._extra_ids)}")
            )
            upcoming, then = next(changes)
            heapq.heappush(shifts, (upcoming, order, then, shop, agent, changes))

    def _enqueue(self, record: SimRecord) -> None:
        heapq.heappush(self._queue, (record.ts, next(self._sequence), record))

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
            "event_id": f"{self.id_prefix}sim-{next(self._ids)}",
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
            self._order(shop, buyer, ts, f"{self.id_prefix}T{next(self._ids)}", rnd.random() < 0.8)
            return
        if rnd.random() < self.shape.ad_share:
            buyer = f"ad_spam_{rnd.getrandbits(24):06x}"
        agents = self.agent_ids(shop_index)
        agent = rnd.choices(agents, weights=self._agent_weights)[0]  # a few agents are busiest
        answered = self._conversation(shop, buyer, agents, agent, ts)
        if answered is None:
            return  # never answered: the buyer waits until the queue drops it
        agent, ended, first_wait_ms = answered
        if not buyer.startswith("ad_spam_"):
            self._maybe_rate(shop, buyer, agent, ended, first_wait_ms)
        if rnd.random() < 0.25:
            ordered_at = ended + int(rnd.uniform(10_000, 300_000))
            self._order(shop, buyer, ordered_at, f"{self.id_prefix}T{next(self._ids)}", rnd.random() < 0.75)

    def _conversation(
        self, shop: str, buyer: str, agents: list[str], agent: str, ts: int
    ) -> tuple[str, int, int] | None:
        """The buyer's rounds of messages, each answered (after an auto-reply now and then, and
        perhaps a transfer). Returns the last agent, when the conversation ended and the first
        answer's wait; None when a round is never answered."""
        rnd = self.random
        t = ts
        first_wait_ms = 0
        for round_index in range(1 + int(rnd.expovariate(1.0))):
            for _ in range(1 + int(rnd.expovariate(0.8))):
                self._push(self._message(shop, buyer, t, agent, "buyer"))
                t += int(rnd.uniform(500, 4000))
            if round_index == 0 and rnd.random() < 0.3:
                self._push(self._message(shop, buyer, t + 800, agent, "agent", auto_reply=True))
            if rnd.random() < 0.05:
                target = rnd.choice(agents)
                self._push(
                    self._event(
                        "messages", shop, buyer, t + 2000, type="transfer", from_agent=agent, to_agent=target
                    )
                )
                agent, t = target, t + 2000
            if rnd.random() < self.shape.unanswered_share:
                return None
            # Long-tailed: with the defaults, median 7 s and about one answer in six past 15 s.
            t += int(rnd.lognormvariate(math.log(self.shape.reply_median_s * 1000), self.shape.reply_spread))
            first_wait_ms = first_wait_ms or t - ts
            self._push(self._message(shop, buyer, t, agent, "agent"))
            t += int(rnd.uniform(5000, 40_000))
        return agent, t, first_wait_ms

    def _message(self, shop: str, buyer: str, ts: int, agent: str, sender: str, **extra: object) -> SimRecord:
        return self._event(
            "messages", shop, buyer, ts, type="message", agent_id=agent, sender=sender, **extra
        )

    def _maybe_rate(self, shop: str, buyer: str, agent: str, ended: int, first_wait_ms: int) -> None:
        """After an answered conversation, perhaps a rating of its last agent (客服评价), minutes
        later; now and then a changed one later still."""
        rnd = self._rating_random
        if rnd.random() >= self.shape.rating_share:
            return
        weights = KEPT_WAITING_WEIGHTS if first_wait_ms > PATIENCE_MS else CONTENT_WEIGHTS
        rated_at = ended + int(rnd.uniform(30_000, 1_800_000))
        self._enqueue(self._rating(shop, buyer, agent, rated_at, rnd.choices(SCORES, weights)[0]))
        if rnd.random() < RERATED_SHARE:
            changed_at = rated_at + int(rnd.uniform(600_000, MS_PER_DAY))
            self._enqueue(self._rating(shop, buyer, agent, changed_at, rnd.choice(SCORES)))

    def _rating(self, shop: str, buyer: str, agent: str, ts: int, score: int) -> SimRecord:
        body: dict[str, object] = {
            "event_id": f"{self.id_prefix}sim-r-{next(self._extra_ids)}",
            "type": "rating",
        }
        body |= {"shop_id": shop, "buyer_id": buyer, "agent_id": agent, "score": score, "ts": ts}
        return SimRecord(ts, "messages", f"{shop}:{buyer}".encode(), json.dumps(body).encode())

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
