"""The drill-down lists (明细): the rows behind every number of the report, and their kinds.

An agent-level cohort is exactly one consultation (projection.py), so a consultation's row
carries its cohort vector's counts as flags: a kind is a test on those flags, and a list's row
count is, by construction, the number it explains (`DetailKind.explains`). Rows are what the
state says *now*: the processing path rewrites a consultation's row whenever its cohort changes
(or, for a buyer with orders, whenever the buyer changes: an order's amount or times can move
without moving a count), in the same outbox share as the counters (agents/store/outbox.py).

Stored per (shop, agent, business day) as a hash of buyer -> `ConsultationDetail` (the
consultation is unique per buyer, agent and day); the shop-level agent's hash holds the day's
silent orders, order id -> `SilentOrderDetail`. Pure: no Redis here.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import msgspec

from agents.core.buyer import BuyerState, Consultation, OrderState
from agents.core.detail_rows import (  # re-exported
    ConsultationDetail,
    Flag,
    OrderRef,
    RowKey,
    SilentOrderDetail,
)
from agents.core.policy import ShopPolicy
from agents.core.projection import SHOP_LEVEL, CohortKey, Counter, Projection, Vector, credit, is_after_sale

# Plain ints: rows are built on the write path, where an IntEnum index or an IntFlag `|` costs
# ten times a plain int's (projection.py says why).
_FLAG_COUNTERS = tuple(
    (int(flag), int(counter))
    for flag, counter in (
        (Flag.REPLIED, Counter.REPLIED),
        (Flag.INQUIRY, Counter.INQUIRIES),
        (Flag.ORDERED, Counter.ORDERED),
        (Flag.PAID, Counter.PAID),
        (Flag.ASSISTED, Counter.ASSISTED),
        (Flag.RATED, Counter.RATED),
        (Flag.DISSATISFIED, Counter.DISSATISFIED),
    )
)
_FIRST_RESPONSE_MS, _SALES_FEN = int(Counter.FIRST_RESPONSE_MS), int(Counter.SALES_FEN)
_REFUNDED_FEN, _ASSISTED_SALES_FEN = int(Counter.REFUNDED_FEN), int(Counter.ASSISTED_SALES_FEN)


class DetailKind(StrEnum):
    UNREPLIED = "unreplied"
    SLOW = "slow"
    LOST = "lost"
    ORDERED_UNPAID = "ordered_unpaid"
    PAID = "paid"
    ASSISTED = "assisted"
    SILENT_ORDERS = "silent_orders"
    REFUNDED = "refunded"
    DISSATISFIED = "dissatisfied"

    @property
    def shop_level(self) -> bool:
        """Silent orders belong to the shop, not to an agent."""
        return self is DetailKind.SILENT_ORDERS


def matches(kind: DetailKind, row: ConsultationDetail, slow_over_ms: int) -> bool:
    """Whether `row` is in the list of `kind`; `slow_over_ms` is the `slow` list's threshold."""
    if kind is DetailKind.UNREPLIED:
        return not row.has(Flag.REPLIED)
    if kind is DetailKind.SLOW:
        return row.response_ms is not None and row.response_ms > slow_over_ms
    if kind is DetailKind.LOST:
        return row.has(Flag.INQUIRY) and not row.has(Flag.ORDERED)
    if kind is DetailKind.ORDERED_UNPAID:
        return row.has(Flag.ORDERED) and not row.has(Flag.PAID)
    if kind is DetailKind.PAID:
        return row.has(Flag.PAID)
    if kind is DetailKind.ASSISTED:
        return row.has(Flag.ASSISTED)
    if kind is DetailKind.REFUNDED:
        return row.refund_fen > 0
    if kind is DetailKind.DISSATISFIED:
        return row.has(Flag.DISSATISFIED)
    return False  # SILENT_ORDERS: shop-level rows, never a consultation


def explained_count(kind: DetailKind, vector: Vector, slow_target_slot: int | None = None) -> int:
    """The number a list of `kind` explains, from the summed counter vector of the same agents
    and days (a report's row): its row count must equal this. `slow` explains a replied-within
    target (`slow_target_slot`): replied − replied within it."""
    c = Counter
    if kind is DetailKind.UNREPLIED:
        return vector[c.CONSULTATIONS] - vector[c.REPLIED]
    if kind is DetailKind.SLOW:
        if slow_target_slot is None:
            raise ValueError("a slow list explains a response target: give its slot")
        return vector[c.REPLIED] - vector[c.REPLIED_WITHIN_0 + slow_target_slot]
    if kind is DetailKind.LOST:
        return vector[c.INQUIRIES] - vector[c.ORDERED]
    if kind is DetailKind.ORDERED_UNPAID:
        return vector[c.ORDERED] - vector[c.PAID]
    if kind is DetailKind.PAID:
        return vector[c.PAID]
    if kind is DetailKind.ASSISTED:
        return vector[c.ASSISTED]
    if kind is DetailKind.SILENT_ORDERS:
        return vector[c.SILENT_ORDERS]
    if kind is DetailKind.DISSATISFIED:
        return vector[c.DISSATISFIED]
    raise ValueError(f"{kind} lists consultations with refunds; the report has their amount, not a count")


# ---- building rows from a buyer's state -------------------------------------------------------


RowChanges = dict[RowKey, bytes | None]  # None: delete the field


def consultation_detail(
    consultation: Consultation, vector: Vector, orders: list[OrderRef]
) -> ConsultationDetail:
    flags = 0
    for flag, counter in _FLAG_COUNTERS:
        if vector[counter]:
            flags |= flag
    first_reply = consultation.first_reply
    return ConsultationDetail(
        consultation.start,
        first_reply,
        vector[_FIRST_RESPONSE_MS] if first_reply is not None else None,
        flags,
        consultation.rating,
        vector[_SALES_FEN],
        vector[_REFUNDED_FEN],
        vector[_ASSISTED_SALES_FEN],
        orders,
    )


def _order_ref(order: OrderState, assisted: bool = False) -> OrderRef:
    return OrderRef(
        order.order_id, order.created_at, order.paid, order.amount_fen, order.refund_fen, assisted
    )


def _credited_orders(
    state: BuyerState, policy: ShopPolicy
) -> tuple[dict[CohortKey, list[OrderRef]], set[str]]:
    """Per consultation (agent, start), the orders credited to or assisted by it; and the ids of
    the orders credited to nobody. The same `credit` as the projection, over the same inquiries."""
    orders = state.orders
    inquiries = [
        q for q in state.consultations if q.first_reply is not None and not is_after_sale(q, orders, policy)
    ]
    refs: dict[CohortKey, list[OrderRef]] = {}
    silent: set[str] = set()
    for order in orders:
        if order.created_at is None:
            continue
        given = credit(order, inquiries, policy)
        if not given.ordered and not given.paid:
            silent.add(order.order_id)
            continue
        credited = {id(q): q for q in (*given.ordered, *given.paid)}
        for inquiry in credited.values():
            refs.setdefault((inquiry.agent, inquiry.start), []).append(_order_ref(order))
        for inquiry in given.assisted:
            refs.setdefault((inquiry.agent, inquiry.start), []).append(_order_ref(order, assisted=True))
    return refs, silent


_encoder = msgspec.msgpack.Encoder()
_consultation_decoder = msgspec.msgpack.Decoder(ConsultationDetail)
_silent_decoder = msgspec.msgpack.Decoder(SilentOrderDetail)


def decode_consultation(blob: bytes) -> ConsultationDetail:
    return _consultation_decoder.decode(blob)


def decode_silent_order(blob: bytes) -> SilentOrderDetail:
    return _silent_decoder.decode(blob)


def row_changes(
    buyer_id: str,
    state: BuyerState,
    before: Projection,
    after: Projection,
    changed: Iterable[CohortKey],
    policy: ShopPolicy,
    cutoff_ms: int,
) -> RowChanges:
    """The rows to write (or delete) after a buyer's events: `state` and `after` are after them,
    `before` the projection before, `changed` the cohorts whose vectors moved.

    A row is its consultation, its vector and the orders credited to it. Without orders only the
    changed cohorts' rows can change. With orders, a row can change without a count: an order's
    amount or times move, or a reply moves an unpaid order's credit away from a consultation that
    keeps another (its `ordered` stays 1). So then every consultation the state projects is
    rewritten, and every order's silent row set or cleared."""
    calendar = policy.calendar
    changed = list(changed)
    rows: RowChanges = {}
    consultations = {(c.agent, c.start): c for c in state.consultations}
    refs, silent = _credited_orders(state, policy) if state.orders else ({}, set())
    for key in after.cohorts if state.orders else changed:
        agent, start = key
        if agent == SHOP_LEVEL:
            continue
        vector = after.cohorts.get(key)
        consultation = consultations.get(key)
        if vector is None or consultation is None:
            rows[RowKey(agent, calendar.day(start), buyer_id)] = None
            continue
        detail = consultation_detail(consultation, vector, refs.get(key, []))
        # The counters' day (cohort_buckets), not `consultation.day`: a shop's time zone can change.
        rows[RowKey(agent, calendar.day(start), buyer_id)] = _encoder.encode(detail)
    for key in before.cohorts.keys() - after.cohorts.keys():
        if key[0] != SHOP_LEVEL:
            rows[RowKey(key[0], calendar.day(key[1]), buyer_id)] = None
    if state.orders or any(agent == SHOP_LEVEL for agent, _ in changed):
        _silent_rows(rows, buyer_id, state, before, silent, policy, cutoff_ms)
    return rows


def _silent_rows(
    rows: RowChanges,
    buyer_id: str,
    state: BuyerState,
    before: Projection,
    silent: set[str],
    policy: ShopPolicy,
    cutoff_ms: int,
) -> None:
    """Each order's silent row on its creation's day: set while it is credited to nobody,
    cleared otherwise, and cleared on a day it was counted on before (its creation moved)."""
    calendar = policy.calendar
    order_ids = [o.order_id for o in state.orders]
    for agent, counted_at in before.cohorts:
        if agent == SHOP_LEVEL:
            day = calendar.day(counted_at)
            for order_id in order_ids:
                rows[RowKey(SHOP_LEVEL, day, order_id)] = None
    for order in state.orders:
        created = order.created_at
        if created is None or created < cutoff_ms:
            continue
        row_key = RowKey(SHOP_LEVEL, calendar.day(created), order.order_id)
        if order.order_id in silent:
            detail = SilentOrderDetail(
                buyer_id, created, order.paid if order.is_paid else None, order.amount_fen
            )
            rows[row_key] = _encoder.encode(detail)
        else:
            rows[row_key] = None
