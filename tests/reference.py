"""A plain, slow reference model of metrics.md, written from the text and nothing else.

It shares no code with `agents/`: its own day function (zoneinfo), its own notion of lateness,
crediting by scanning every order against every inquiry, no projections, diffs or batches. The
property tests compare the core with it over random scenarios.

It follows metrics.md v3: after-sale by payment only, the service clock, replied-within targets,
the judging moment, assists and refunds (v2), and ratings (v3: a rating rates the buyer's latest
consultation with the agent started at or before it, within `rating_days`, the later one wins).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from streams.contract.events import Event, Message, Order, Rating, Transfer

DAY_MS = 86_400_000
HISTOGRAM_BOUNDS_S = (1, 3, 6, 10, 15, 30, 60, 120, 300)
FIELDS = (
    "c",
    "r",
    "fs",
    "wn",
    "ws",
    "i",
    "o",
    "p",
    "y",
    "n",
    "sn",
    "sy",
    "rf",
    "a",
    "ay",
    "w0",
    "w1",
    "w2",
    "w3",
    "rt",
    "st",
    "dt",
    "sc",
)


@dataclass(frozen=True)
class Rules:
    zone: str = "Asia/Shanghai"
    after_sale_days: int = 7
    window: str = "same_day"  # same_day | next_day | a duration such as 24h or 3d
    rule: str = "last"  # last | first | all
    aftersale_agents: frozenset[str] = frozenset()
    blocked_buyers: frozenset[str] = frozenset()
    wait_limit_ms: int = 24 * 3_600_000
    judge: str = "created"  # created | paid | created_first
    deduct_refunds: bool = False
    service_hours: str | None = None  # "HH:MM-HH:MM"
    targets: tuple[int, ...] = (15, 180)
    rating_days: int = 3

    def yaml(self) -> str:
        """The same rules as kefu-pulse configuration."""
        agents = ", ".join(f"'{a}': {{group: aftersale}}" for a in sorted(self.aftersale_agents))
        block = ", ".join(f"'{b}'" for b in sorted(self.blocked_buyers))
        hours = f"'{self.service_hours}'" if self.service_hours else "null"
        return (
            f"defaults: {{timezone: '{self.zone}', after_sale_days: {self.after_sale_days}, "
            f"service_hours: {hours}, response_targets_seconds: {list(self.targets)}, "
            f"rating_days: {self.rating_days}, "
            f"attribution: {{window: '{self.window}', rule: {self.rule}, judge: {self.judge}, "
            f"deduct_refunds: {str(self.deduct_refunds).lower()}}}}}\n"
            f"shops: {{s1: {{agents: {{{agents}}}, block: [{block}]}}}}\n"
        )


def local_day(ts: int, zone: str) -> date:
    moment = datetime.fromtimestamp(ts // 1000, ZoneInfo(zone)) + timedelta(milliseconds=ts % 1000)
    return moment.date()


def local_midnight(day: date, zone: str) -> int:
    return int(datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).timestamp()) * 1000


def service_ms(start: int, end: int, rules: Rules) -> int:
    """How much of [start, end] lies inside the shop's service hours, day by local day."""
    if end <= start:
        return 0
    if rules.service_hours is None:
        return end - start
    opening, closing = rules.service_hours.split("-")
    total = 0
    day = local_day(start, rules.zone)
    while day <= local_day(end, rules.zone):
        hours = []
        for text in (opening, closing):
            hour, minute = (int(part) for part in text.split(":"))
            if hour == 24:
                hours.append(local_midnight(day + timedelta(days=1), rules.zone))
            else:
                moment = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(rules.zone))
                hours.append(int(moment.timestamp()) * 1000)
        total += max(0, min(end, hours[1]) - max(start, hours[0]))
        day += timedelta(days=1)
    return total


@dataclass
class _Consultation:
    agent: str
    day: date
    start: int
    reply: int | None = None
    score: int | None = None
    rated_at: int = -1


@dataclass
class _Order:
    created: int | None = None
    paid: int | None = None
    cancelled: int | None = None
    amount: int = 0
    refunds: list[int | None] = field(default_factory=list)  # None: the whole order

    @property
    def refunded(self) -> int:
        if None in self.refunds:
            return self.amount
        return min(self.amount, sum(r for r in self.refunds if r is not None))

    @property
    def creation(self) -> int | None:
        """A `paid` event for an order never seen `created` counts as created at the payment."""
        moments = [t for t in (self.created, self.paid) if t is not None]
        return min(moments) if moments else None

    @property
    def is_paid(self) -> bool:
        """An order cancelled before payment never becomes paid."""
        return self.paid is not None and (self.cancelled is None or self.cancelled > self.paid)


@dataclass
class Result:
    """(shop, agent, day) -> counters by FIELDS name (agent "" for the shop level), non-zero only."""

    cohorts: dict[tuple[str, str, date], dict[str, int]] = field(default_factory=dict)
    waits: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (shop, agent, buyer) -> start
    histogram: dict[tuple[str, str, int], int] = field(default_factory=dict)
    outcomes: list[str] = field(default_factory=list)


def reference(events: list[Event], now: int, rules: Rules, arrivals: list[int] | None = None) -> Result:
    """Every number metrics.md defines, from `events` in arrival order, as seen at `now`.

    `arrivals` holds the moment each event reached the worker (all at `now` when absent): an
    event is late when it is older than the windows at its arrival, so a consultation that
    arrived in time keeps its credit after its day leaves the `28d` window. Cohorts are those of
    the days in the `28d` window at `now`; older days are history, no longer live.
    """
    today = local_day(now, rules.zone)
    window_start = local_midnight(today - timedelta(days=27), rules.zone)
    result = Result()
    kept: list[Event] = []
    seen: set[str] = set()
    for event, arrival in zip(events, arrivals or [now] * len(events), strict=True):
        opened = local_midnight(local_day(arrival, rules.zone) - timedelta(days=27), rules.zone)
        oldest = opened - rules.after_sale_days * DAY_MS if isinstance(event, Order) else opened
        if event.buyer_id in rules.blocked_buyers:
            result.outcomes.append("filtered")
        elif event.ts < oldest:
            result.outcomes.append("late")
        elif event.event_id in seen:
            result.outcomes.append("duplicate")
        else:
            seen.add(event.event_id)
            kept.append(event)
            result.outcomes.append("applied")
    cohorts: dict[tuple[str, str, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    unmatched: set[str] = set()
    for buyer in sorted({(e.shop_id, e.buyer_id) for e in kept}):
        mine = [e for e in kept if (e.shop_id, e.buyer_id) == buyer]
        unmatched |= _buyer(buyer, mine, rules, window_start, cohorts, result)
    for index, event in enumerate(events):  # a kept rating of no consultation
        if event.event_id in unmatched and result.outcomes[index] == "applied":
            result.outcomes[index] = "unmatched"
            unmatched.discard(event.event_id)
    first_day = local_day(window_start, rules.zone)
    result.cohorts = {k: v for k, v in cohorts.items() if k[2] >= first_day and any(v.values())}
    return result


def _buyer(
    buyer: tuple[str, str],
    events: list[Event],
    rules: Rules,
    window_start: int,
    cohorts: dict[tuple[str, str, date], dict[str, int]],
    result: Result,
) -> set[str]:
    """Books the buyer's cohorts; the ids of its ratings that rated nothing."""
    shop, buyer_id = buyer
    unmatched: set[str] = set()
    consultations: list[_Consultation] = []
    waits: dict[str, int] = {}

    def consult(agent: str, ts: int) -> None:
        day = local_day(ts, rules.zone)
        if not any(c.agent == agent and c.day == day for c in consultations):
            consultations.append(_Consultation(agent, day, ts))

    conversation = [e for e in events if not isinstance(e, Order)]
    assert all(a.ts <= b.ts for a, b in pairwise(conversation)), "out of order"
    for event in conversation:
        if isinstance(event, Rating):
            earlier = [c for c in consultations if c.agent == event.agent_id and c.start <= event.ts]
            latest = max(earlier, key=lambda c: c.start, default=None)
            if latest is None or (local_day(event.ts, rules.zone) - latest.day).days > rules.rating_days:
                unmatched.add(event.event_id)
            elif event.ts >= latest.rated_at:
                latest.score, latest.rated_at = event.score, event.ts
            continue  # a rating is no conversation: it leaves the waits as they are
        # Waits still open after the limit are dropped as unanswered.
        waits = {agent: start for agent, start in waits.items() if event.ts - start <= rules.wait_limit_ms}
        if isinstance(event, Transfer):
            consult(event.to_agent, event.ts)
            moved = waits.pop(event.from_agent, None) if event.from_agent != event.to_agent else None
            if moved is not None:
                waits[event.to_agent] = min(moved, waits.get(event.to_agent, moved))
        elif isinstance(event, Message) and event.sender == "buyer":
            consult(event.agent_id, event.ts)
            waits.setdefault(event.agent_id, event.ts)
        elif isinstance(event, Message) and not event.auto_reply:
            for c in consultations:
                if c.agent == event.agent_id and c.reply is None and c.start <= event.ts:
                    c.reply = event.ts
            if event.agent_id in waits:
                start = waits.pop(event.agent_id)
                row = cohorts[(shop, event.agent_id, local_day(start, rules.zone))]
                row["wn"] += 1
                row["ws"] += service_ms(start, event.ts, rules)
    for agent, start in waits.items():
        result.waits[(shop, agent, buyer_id)] = start

    orders = _orders([e for e in events if isinstance(e, Order)])
    inquiries = []
    for c in consultations:
        row = cohorts[(shop, c.agent, c.day)]
        row["c"] += 1
        if c.score is not None:
            row["rt"] += 1
            row["st"] += c.score >= 4
            row["dt"] += c.score <= 2
            row["sc"] += c.score
        if c.reply is None:
            continue
        row["r"] += 1
        latency = service_ms(c.start, c.reply, rules)
        row["fs"] += latency
        for slot, target in enumerate(rules.targets):
            row[f"w{slot}"] += latency <= target * 1000
        bucket = next((i for i, b in enumerate(HISTOGRAM_BOUNDS_S) if latency <= b * 1000), 9)
        result.histogram[(shop, c.agent, bucket)] = result.histogram.get((shop, c.agent, bucket), 0) + 1
        if not _after_sale(c, orders, rules):
            row["i"] += 1
            inquiries.append(c)

    ordered: set[int] = set()
    paid: set[int] = set()
    assisted: set[int] = set()
    sales: dict[int, int] = defaultdict(int)
    refunded: dict[int, int] = defaultdict(int)
    assisted_sales: dict[int, int] = defaultdict(int)
    for order in orders:
        created = order.creation
        if created is None:
            continue
        at_creation = _qualifying(created, inquiries, rules)
        order_credit = _pick(at_creation, rules)
        payment_credit: list[_Consultation] = []
        helpers: list[_Consultation] = []
        if order.is_paid:
            assert order.paid is not None
            if rules.judge == "created" or (rules.judge == "created_first" and at_creation):
                candidates = at_creation
            else:
                candidates = _qualifying(order.paid, inquiries, rules)
            payment_credit = _pick(candidates, rules)
            if rules.rule != "all":
                helpers = [q for q in candidates if all(q.agent != c.agent for c in payment_credit)]
        if created >= window_start:
            shop_row = cohorts[(shop, "", local_day(created, rules.zone))]
            shop_row["n"] += 1
            if not order_credit and not payment_credit:
                shop_row["sn"] += 1
                shop_row["sy"] += order.amount if order.is_paid else 0
        net = order.amount - order.refunded if rules.deduct_refunds else order.amount
        for inquiry in order_credit + payment_credit:
            ordered.add(id(inquiry))
        for inquiry in payment_credit:
            paid.add(id(inquiry))
            sales[id(inquiry)] += net
            refunded[id(inquiry)] += order.refunded
        for inquiry in helpers:
            assisted.add(id(inquiry))
            assisted_sales[id(inquiry)] += net
    for inquiry in inquiries:
        row = cohorts[(shop, inquiry.agent, inquiry.day)]
        row["o"] += id(inquiry) in ordered
        row["p"] += id(inquiry) in paid
        row["y"] += sales[id(inquiry)]
        row["rf"] += refunded[id(inquiry)]
        row["a"] += id(inquiry) in assisted
        row["ay"] += assisted_sales[id(inquiry)]
    return unmatched


def _orders(events: list[Order]) -> list[_Order]:
    book: dict[str, _Order] = {}
    for event in events:
        order = book.setdefault(event.order_id, _Order())
        if event.status == "refunded":
            order.refunds.append(event.amount_fen)  # a refund's amount is the refund
            continue
        if event.amount_fen is not None:
            order.amount = event.amount_fen  # the latest amount wins
        if event.status in ("created", "paid", "cancelled"):
            current = getattr(order, event.status)
            setattr(order, event.status, event.ts if current is None else min(current, event.ts))
    return list(book.values())


def _after_sale(c: _Consultation, orders: list[_Order], rules: Rules) -> bool:
    """An aftersale agent, or a payment (not a mere order) within the look-back before the start."""
    if c.agent in rules.aftersale_agents:
        return True
    for order in orders:
        if not order.is_paid or order.paid is None or not order.paid < c.start:
            continue
        if c.start - order.paid <= rules.after_sale_days * DAY_MS:
            return True
    return False


def _qualifying(moment: int, inquiries: list[_Consultation], rules: Rules) -> list[_Consultation]:
    return [
        q
        for q in inquiries
        if q.start <= moment and q.reply is not None and q.reply <= moment and _in_window(q, moment, rules)
    ]


def _pick(qualifying: list[_Consultation], rules: Rules) -> list[_Consultation]:
    if rules.rule == "all" or not qualifying:
        return qualifying
    ranked = sorted(qualifying, key=lambda q: (q.start, q.agent))
    return [ranked[-1] if rules.rule == "last" else ranked[0]]


def _in_window(inquiry: _Consultation, moment: int, rules: Rules) -> bool:
    day = local_day(moment, rules.zone)
    if rules.window == "same_day":
        return day == inquiry.day
    if rules.window == "next_day":
        return inquiry.day <= day <= inquiry.day + timedelta(days=1)
    number, unit = int(rules.window[:-1]), rules.window[-1]
    length = number * {"h": 3_600_000, "d": DAY_MS, "m": 60_000, "s": 1000}[unit]
    return moment - inquiry.start <= length
