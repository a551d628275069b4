"""What one buyer contributes to the per-agent cohorts, derived from its state alone.

A contribution is a vector of counters attached to (agent, cohort start). Aggregates in
the store only ever receive `project(after) - project(before)`, so a late order, a reply
that answers yesterday's consultation, or an after-sale re-classification all become
plain deltas, and the result depends on the set of events, not on their interleaving.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from agents.core.buyer import BuyerState, Consultation, OrderState, WaitSample
from agents.core.policy import ShopPolicy

# Vector layout (cohort counters). Shop-level vectors use agent SHOP_LEVEL.
CONSULTATIONS, REPLIED, FIRST_RESPONSE_MS, WAITS_ENDED, WAIT_MS = 0, 1, 2, 3, 4
INQUIRIES, ORDERED, PAID, SALES_FEN = 5, 6, 7, 8
ORDERS, SILENT_ORDERS, SILENT_SALES_FEN = 9, 10, 11
FIELD_NAMES = ("c", "r", "fs", "wn", "ws", "i", "o", "p", "y", "n", "sn", "sy")
WIDTH = len(FIELD_NAMES)
SHOP_LEVEL = ""

# First-response histogram buckets (seconds), metrics.md; the last is +Inf.
FIRST_RESPONSE_BUCKETS = (1, 3, 6, 10, 15, 30, 60, 120, 300)

CohortKey = tuple[str, int]  # (agent, cohort start ms)
Vector = list[int]


_BUCKET_BOUNDS_MS = tuple(bound * 1000 for bound in FIRST_RESPONSE_BUCKETS)
_EMPTY: Vector = [0] * WIDTH


def bucket_index(first_response_ms: int) -> int:
    """Index of the first bucket whose upper bound (`le`) holds the value; len(buckets) is +Inf."""
    return bisect_left(_BUCKET_BOUNDS_MS, first_response_ms)


@dataclass(slots=True)
class Projection:
    # Every agent-level key is one consultation's (agent, start): unique within a buyer, so a
    # change of its REPLIED counter is exactly that consultation's first reply.
    cohorts: dict[CohortKey, Vector]
    waits: dict[str, int]  # agent -> open wait start


def _vector(cohorts: dict[CohortKey, Vector], key: CohortKey) -> Vector:
    vector = cohorts.get(key)
    if vector is None:
        vector = cohorts[key] = [0] * WIDTH
    return vector


def _is_after_sale(consultation: Consultation, orders: list[OrderState], policy: ShopPolicy) -> bool:
    if consultation.agent in policy.aftersale_agents:
        return True
    if not orders:
        return False
    start = consultation.start
    return any(o.live_at(start) and start - o.created_at <= policy.after_sale_ms for o in orders)  # type: ignore[operator]


def _in_attribution_window(inquiry: Consultation, created: int, policy: ShopPolicy) -> bool:
    window = policy.attribution_window
    if window == "same_day":
        return policy.calendar.day(created) == inquiry.day
    if window == "next_day":
        return inquiry.day <= policy.calendar.day(created) <= inquiry.day + 1
    return created - inquiry.start <= window


def credited_inquiries(
    order: OrderState, inquiries: list[Consultation], policy: ShopPolicy
) -> list[Consultation]:
    """The inquiries an order is credited to, per the shop's attribution rule."""
    created = order.created_at
    if created is None:
        return []
    qualifying = [
        q
        for q in inquiries
        if q.start <= created
        and q.first_reply is not None
        and q.first_reply <= created
        and _in_attribution_window(q, created, policy)
    ]
    if not qualifying or policy.attribution_rule == "all":
        return qualifying
    pick = max if policy.attribution_rule == "last" else min
    return [pick(qualifying, key=lambda q: (q.start, q.agent))]


def project(state: BuyerState, policy: ShopPolicy, cutoff_day: int, cutoff_ms: int) -> Projection:
    """Contributions of consultations from `cutoff_day` on and orders created from `cutoff_ms` on."""
    cohorts: dict[CohortKey, Vector] = {}
    inquiries: list[Consultation] = []
    orders = state.orders
    for consultation in state.consultations:
        if consultation.day < cutoff_day:
            continue
        vector = _EMPTY.copy()
        cohorts[(consultation.agent, consultation.start)] = vector
        vector[CONSULTATIONS] = 1
        if consultation.first_reply is None:
            continue
        vector[REPLIED] = 1
        vector[FIRST_RESPONSE_MS] = consultation.first_reply - consultation.start
        if not _is_after_sale(consultation, orders, policy):
            vector[INQUIRIES] = 1
            inquiries.append(consultation)
    if orders:
        _project_orders(orders, inquiries, cohorts, policy, cutoff_ms)
    return Projection(cohorts, dict(state.waits))


def _project_orders(
    orders: list[OrderState],
    inquiries: list[Consultation],
    cohorts: dict[CohortKey, Vector],
    policy: ShopPolicy,
    cutoff_ms: int,
) -> None:
    ordered: set[int] = set()
    paid: set[int] = set()
    sales: dict[int, int] = {}
    for order in orders:
        created = order.created_at
        if created is None or created < cutoff_ms:
            continue
        credited = credited_inquiries(order, inquiries, policy) if inquiries else []
        shop_vector = _vector(cohorts, (SHOP_LEVEL, created))
        shop_vector[ORDERS] += 1
        if not credited:
            shop_vector[SILENT_ORDERS] += 1
            if order.is_paid:
                shop_vector[SILENT_SALES_FEN] += order.amount_fen
        for inquiry in credited:
            ordered.add(id(inquiry))
            if order.is_paid:
                paid.add(id(inquiry))
                sales[id(inquiry)] = sales.get(id(inquiry), 0) + order.amount_fen
    for inquiry in inquiries:
        vector = cohorts[(inquiry.agent, inquiry.start)]
        marker = id(inquiry)
        vector[ORDERED] += marker in ordered
        vector[PAID] += marker in paid
        vector[SALES_FEN] += sales.get(marker, 0)


def sample_vectors(samples: Iterable[WaitSample]) -> dict[CohortKey, Vector]:
    """Ended waits as cohort vectors (they are final once ended, so they add, never diff)."""
    cohorts: dict[CohortKey, Vector] = {}
    for sample in samples:
        vector = _vector(cohorts, (sample.agent, sample.start))
        vector[WAITS_ENDED] += 1
        vector[WAIT_MS] += sample.duration_ms
    return cohorts
