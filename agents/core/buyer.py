"""One buyer's conversation state in one shop, and how each event changes it.

The state holds only what metrics.md needs to re-derive every number this buyer
contributes: consultations (one per agent and business day), open waits, orders, and
the ids of applied events. Message events are folded in arrival order (the contract
keeps one buyer's messages in order on one partition); orders only update the order
book, and everything they influence is computed by `projection` from timestamps, so
orders and messages may interleave arbitrarily.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from hashlib import blake2b

from agents.core.buyer_state import STATE_LAYOUT, BuyerState, Consultation, OrderState, WaitSample
from agents.core.service_clock import ServiceClock
from agents.core.windows import WINDOW_DAYS
from config.calendar import MS_PER_DAY, BusinessCalendar
from streams.contract.events import Message, Order, Rating, Transfer

# The state's structs live in buyer_state.py, left out of the compiled core (it says why); they are
# imported from here, as ever.
__all__ = [
    "STATE_LAYOUT",
    "BuyerState",
    "Consultation",
    "OrderState",
    "WaitSample",
    "apply_message",
    "apply_order",
    "apply_rating",
    "apply_transfer",
    "event_digest",
    "prune",
]


def event_digest(event_id: str) -> int:
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "little", signed=True)


def _consultation(state: BuyerState, agent: str, day: int) -> Consultation | None:
    for consultation in state.consultations:
        if consultation.agent == agent and consultation.day == day:
            return consultation
    return None


def _open_consultation(
    state: BuyerState, agent: str, day: int, ts: int, aftersale_agents: Collection[str]
) -> None:
    if _consultation(state, agent, day) is None:
        state.consultations.append(Consultation(agent, day, ts, aftersale_group=agent in aftersale_agents))


def _drop_expired_waits(state: BuyerState, ts: int, wait_limit_ms: int) -> None:
    """Waits still open after the limit leave the queue unanswered (open at exactly the limit)."""
    for agent in [agent for agent, start in state.waits.items() if ts - start > wait_limit_ms]:
        del state.waits[agent]


# An order created and never paid is kept this long (and the buyer's state with it): a presale's
# balance is paid weeks after the deposit's order. Its payment later than this counts as an
# order of its own day, as an order never seen created does (metrics.md).
UNPAID_KEPT_DAYS = 60


def apply_message(
    state: BuyerState,
    event: Message,
    clock: ServiceClock,
    wait_limit_ms: int,
    samples: list[WaitSample],
    aftersale_agents: Collection[str] = (),
) -> None:
    """Fold one chat message; ended waits are appended to `samples`, measured on `clock`.
    A consultation it opens keeps whether its agent is in `aftersale_agents` now.

    A message older than the buyer's last one is applied at that last time, so no
    duration is ever negative (the contract keeps one buyer's messages in order).
    The 24-hour limit on open waits is wall-clock time: it keeps the queue clean.
    """
    calendar = clock.calendar
    ts = max(event.ts, state.last_message_ts)
    state.last_message_ts = ts
    _drop_expired_waits(state, ts, wait_limit_ms)
    agent = event.agent_id
    if event.sender == "buyer":
        _open_consultation(state, agent, calendar.day(ts), ts, aftersale_agents)
        state.waits.setdefault(agent, ts)
        return
    if event.auto_reply:
        return
    for consultation in state.consultations:
        if consultation.agent == agent and consultation.first_reply is None and consultation.start <= ts:
            consultation.first_reply = ts
    wait_start = state.waits.pop(agent, None)
    if wait_start is not None:
        samples.append(WaitSample(agent, wait_start, clock.elapsed(wait_start, ts)))


def apply_transfer(
    state: BuyerState,
    event: Transfer,
    calendar: BusinessCalendar,
    wait_limit_ms: int,
    aftersale_agents: Collection[str] = (),
) -> None:
    ts = max(event.ts, state.last_message_ts)
    state.last_message_ts = ts
    _drop_expired_waits(state, ts, wait_limit_ms)
    _open_consultation(state, event.to_agent, calendar.day(ts), ts, aftersale_agents)
    if event.from_agent == event.to_agent:
        return
    wait_start = state.waits.pop(event.from_agent, None)
    if wait_start is not None:
        current = state.waits.get(event.to_agent)
        state.waits[event.to_agent] = wait_start if current is None else min(current, wait_start)


def apply_rating(state: BuyerState, event: Rating, calendar: BusinessCalendar, rating_days: int) -> bool:
    """Rate the buyer's most recent consultation with the rated agent that started at or before
    the rating, if it started at most `rating_days` business days before it (events.md v3: a
    consultation of Monday 00:30 is still rated on Thursday 23:59 at 3); False when there is
    none (unmatched). Of two ratings of one consultation the later one counts, whatever the
    order they arrive in; of two at the same moment, the one that arrived last."""
    rated: Consultation | None = None
    for consultation in state.consultations:
        if consultation.agent != event.agent_id or consultation.start > event.ts:
            continue
        if rated is None or consultation.start > rated.start:
            rated = consultation
    if rated is None or calendar.day(event.ts) - rated.day > rating_days:
        return False
    if rated.rated_at is None or event.ts >= rated.rated_at:
        rated.rating, rated.rated_at = event.score, event.ts
    return True


def apply_order(state: BuyerState, event: Order, unpaid_from: int | None = None) -> None:
    """Fold one order event. An order never paid and created before `unpaid_from` (that of
    the event's own day, `unpaid_from_ms`) is one the live state has dropped by now: it is
    forgotten here too, so a rebuild, whose state keeps more, books its late payment the same
    way (as an order never seen)."""
    order = next((o for o in state.orders if o.order_id == event.order_id), None)
    if (
        order is not None
        and unpaid_from is not None
        and order.paid is None
        and order.created is not None
        and order.created < unpaid_from
    ):
        state.orders.remove(order)
        order = None
    if order is None:
        order = OrderState(event.order_id)
        state.orders.append(order)
    if event.status == "refunded":
        # A refund's amount is what was refunded, not the order's (metrics.md v2).
        order.refunded = event.ts if order.refunded is None else max(order.refunded, event.ts)
        if event.amount_fen is None:
            order.refunded_fully = True
        else:
            order.refunded_fen += event.amount_fen
        return
    if event.amount_fen is not None:
        order.amount_fen = event.amount_fen
    if event.status == "created":
        order.created = event.ts if order.created is None else min(order.created, event.ts)
    elif event.status == "paid":
        order.paid = event.ts if order.paid is None else min(order.paid, event.ts)
    elif event.status == "cancelled":
        order.cancelled = event.ts if order.cancelled is None else min(order.cancelled, event.ts)


def prune(
    state: BuyerState,
    cutoff_day: int,
    horizon_ms: int,
    keep: Collection[tuple[str, int]] = (),
    unpaid_from_ms: int | None = None,
    inquiries_from_ms: int | None = None,
    after_sale_ms: int = 0,
) -> None:
    """Forget what no window can need any more.

    `cutoff_day` is the first day of the `28d` window; `horizon_ms` is that day's start
    less the after-sale look-back. Anything older arrives as `late` and is skipped, so
    dropping the ids of such events cannot let a duplicate through. An order never paid and
    created from `unpaid_from_ms` on (default: `horizon_ms`) is kept too. A consultation from
    before the cutoff whose (agent, start) is in `keep` holds the credit of an order that
    can still change (`Projection.credited_past_cutoff`): dropping it would hand the order
    to a younger inquiry. So would one started from `inquiries_from_ms` on, still in the
    attribution window of an order judged at the cutoff; and the orders paid within
    `after_sale_ms` before it stay with it, or it would turn from after-sale into an inquiry.
    """
    # Consultations and orders are a handful per buyer: filtering them is cheaper than looking first.
    if unpaid_from_ms is None:
        unpaid_from_ms = horizon_ms
    inquiries_from = math.inf if inquiries_from_ms is None else inquiries_from_ms
    state.consultations = [
        c
        for c in state.consultations
        if c.day >= cutoff_day or c.start >= inquiries_from or (c.agent, c.start) in keep
    ]
    # An order never paid stays past the horizon, until `unpaid_from_ms`: its payment (a
    # presale's balance, weeks later) must find the order created then, or it would count as a
    # new order of the payment's day, crediting whoever answered the buyer that day.
    orders_from_ms = (
        horizon_ms if inquiries_from_ms is None else min(horizon_ms, inquiries_from_ms - after_sale_ms)
    )
    state.orders = [
        o
        for o in state.orders
        if _last_touch(o) >= orders_from_ms
        or (o.paid is None and o.created is not None and o.created >= unpaid_from_ms)
    ]
    # The ids can be hundreds; most calls find none to forget, so look before rebuilding.
    if state.seen and min(state.seen.values()) < horizon_ms:
        state.seen = {digest: ts for digest, ts in state.seen.items() if ts >= horizon_ms}


def unpaid_from_ms(cutoff_ms: int) -> int:
    """The oldest creation of a never-paid order an order event still finds, for an event of a
    day whose `28d` window starts at `cutoff_ms`: UNPAID_KEPT_DAYS before that day, at least."""
    return cutoff_ms - (UNPAID_KEPT_DAYS - WINDOW_DAYS) * MS_PER_DAY


def unpaid_until_ms(state: BuyerState, after_sale_ms: int) -> int | None:
    """Until when the state must stay for its newest order that was never paid (None: none):
    as long as pruning keeps it (Horizon.unpaid_from_ms), for a payment stamped within
    UNPAID_KEPT_DAYS of it that arrives as late as an order event may (the `28d` window and
    the after-sale look-back), with a day to spare."""
    created = [o.created for o in state.orders if o.paid is None and o.created is not None]
    if not created:
        return None
    return max(created) + (UNPAID_KEPT_DAYS + WINDOW_DAYS + 1) * MS_PER_DAY + after_sale_ms


def _last_touch(order: OrderState) -> int:
    return max(t for t in (order.created, order.paid, order.cancelled, order.refunded, -1) if t is not None)
