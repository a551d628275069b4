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
from agents.core.counters import Counter  # its own module, pure (counters.py says why); re-exported
from agents.core.policy import ShopPolicy

_REPLIED_WITHIN_SLOTS = tuple(counter for counter in Counter if counter.name.startswith("REPLIED_WITHIN_"))


def replied_within(slot: int) -> Counter:
    """The counter of consultations replied within the shop's `slot`-th response target."""
    if not 0 <= slot < len(_REPLIED_WITHIN_SLOTS):
        raise IndexError(f"response target slot {slot} is not in 0..{len(_REPLIED_WITHIN_SLOTS) - 1}")
    return _REPLIED_WITHIN_SLOTS[slot]


FIELD_NAMES = tuple(counter.field for counter in Counter)
WIDTH = len(FIELD_NAMES)
SHOP_LEVEL = ""

# First-response histogram buckets (seconds), metrics.md; the last is +Inf.
FIRST_RESPONSE_BUCKETS = (1, 3, 6, 10, 15, 30, 60, 120, 300)
# The same buckets per business day, as fields of the day bucket (reports draw the distribution).
DAY_HISTOGRAM_FIELDS = tuple(f"h{index}" for index in range(len(FIRST_RESPONSE_BUCKETS) + 1))
DAY_FIELDS = (*FIELD_NAMES, *DAY_HISTOGRAM_FIELDS)  # a day bucket read whole: the cohort vector, then those

CohortKey = tuple[str, int]  # (agent, cohort start ms)
Vector = list[int]
_Credited = tuple[set[int], set[int], set[int]]  # inquiry ids: (ordered, paid, assisted)


_BUCKET_BOUNDS_MS = tuple(bound * 1000 for bound in FIRST_RESPONSE_BUCKETS)
_EMPTY: Vector = [0] * WIDTH

# The hot path (`project` runs twice per buyer event) indexes with these plain ints. On CPython
# 3.11 `vector[Counter.PAID]` takes ~85 ns against ~13 ns (the member is looked up through the
# enum's metaclass, and the list-index fast path takes exact ints only): with the members,
# `project` took ~40% longer and the core ~10% more per event (bench/costs' core, issue 27).
_CONSULTATIONS = int(Counter.CONSULTATIONS)
_REPLIED = int(Counter.REPLIED)
_FIRST_RESPONSE_MS = int(Counter.FIRST_RESPONSE_MS)
_WAITS_ENDED = int(Counter.WAITS_ENDED)
_WAIT_MS = int(Counter.WAIT_MS)
_INQUIRIES = int(Counter.INQUIRIES)
_ORDERED = int(Counter.ORDERED)
_PAID = int(Counter.PAID)
_SALES_FEN = int(Counter.SALES_FEN)
_ORDERS = int(Counter.ORDERS)
_SILENT_ORDERS = int(Counter.SILENT_ORDERS)
_SILENT_SALES_FEN = int(Counter.SILENT_SALES_FEN)
_REFUNDED_FEN = int(Counter.REFUNDED_FEN)
_ASSISTED = int(Counter.ASSISTED)
_ASSISTED_SALES_FEN = int(Counter.ASSISTED_SALES_FEN)
_REPLIED_WITHIN_0 = int(replied_within(0))  # slot i is at this + i
_RATED = int(Counter.RATED)
_SATISFIED = int(Counter.SATISFIED)
_DISSATISFIED = int(Counter.DISSATISFIED)
_RATING_SCORE = int(Counter.RATING_SCORE)


def bucket_index(first_response_ms: int) -> int:
    """Index of the first bucket whose upper bound (`le`) holds the value; len(buckets) is +Inf."""
    return bisect_left(_BUCKET_BOUNDS_MS, first_response_ms)


@dataclass(slots=True)
class Projection:
    # Every agent-level key is one consultation's (agent, start): unique within a buyer, so a
    # change of its REPLIED counter is exactly that consultation's first reply.
    cohorts: dict[CohortKey, Vector]
    waits: dict[str, int]  # agent -> open wait start
    # Consultations from before the cutoff that hold the credit (or an assist) of an order that
    # can still reach a cohort from the cutoff on: pruning keeps them (`buyer.prune`), or a later
    # change to the order (a refund) would find it credited to a younger inquiry.
    credited_past_cutoff: set[CohortKey]


def _vector(cohorts: dict[CohortKey, Vector], key: CohortKey) -> Vector:
    vector = cohorts.get(key)
    if vector is None:
        vector = cohorts[key] = [0] * WIDTH
    return vector


def is_after_sale(consultation: Consultation, orders: list[OrderState], policy: ShopPolicy) -> bool:
    """An aftersale agent (in that group when the consultation started), or a payment within
    `after_sale_days` before the start (metrics.md v2: an order created but not yet paid leaves
    the buyer pre-sale)."""
    by_group = consultation.aftersale_group
    if by_group is None:  # stored before the group was kept with it
        by_group = consultation.agent in policy.aftersale_agents
    if by_group:
        return True
    if not orders:
        return False
    start = consultation.start
    return any(
        o.paid is not None and o.is_paid and o.paid < start and start - o.paid <= policy.after_sale_ms
        for o in orders
    )


def _in_attribution_window(inquiry: Consultation, moment: int, policy: ShopPolicy) -> bool:
    window = policy.attribution_window
    if window == "same_day":
        return policy.calendar.day(moment) == inquiry.day
    if window == "next_day":
        return inquiry.day <= policy.calendar.day(moment) <= inquiry.day + 1
    return moment - inquiry.start <= window


def qualifying_inquiries(
    moment: int, inquiries: list[Consultation], policy: ShopPolicy
) -> list[Consultation]:
    """Inquiries started and replied at or before `moment`, with `moment` in their window."""
    return [
        q
        for q in inquiries
        if q.start <= moment
        and q.first_reply is not None
        and q.first_reply <= moment
        and _in_attribution_window(q, moment, policy)
    ]


def _pick(qualifying: list[Consultation], policy: ShopPolicy) -> list[Consultation]:
    if len(qualifying) < 2 or policy.attribution_rule == "all":
        return qualifying
    pick = max if policy.attribution_rule == "last" else min
    return [pick(qualifying, key=lambda q: (q.start, q.agent))]


@dataclass(slots=True)
class Credit:
    """Who an order is credited to: at its creation, and for its payment (metrics.md v2)."""

    ordered: list[Consultation]  # the order credit, judged at creation
    paid: list[Consultation]  # the payment credit; empty unless the order is paid
    assisted: list[Consultation]  # other agents' inquiries that qualified for the payment


def credit(order: OrderState, inquiries: list[Consultation], policy: ShopPolicy) -> Credit:
    created = order.created_at
    if created is None or not inquiries:
        return Credit([], [], [])
    at_creation = qualifying_inquiries(created, inquiries, policy)
    ordered = _pick(at_creation, policy)
    if not order.is_paid:
        return Credit(ordered, [], [])
    assert order.paid is not None  # is_paid
    judge = policy.judge
    if judge == "created" or (judge == "created_first" and at_creation):
        for_payment = at_creation
    else:
        for_payment = qualifying_inquiries(order.paid, inquiries, policy)
    paid = _pick(for_payment, policy)
    if policy.attribution_rule == "all" or not paid:
        return Credit(ordered, paid, [])
    credited_agent = paid[0].agent
    return Credit(ordered, paid, [q for q in for_payment if q.agent != credited_agent])


def project(state: BuyerState, policy: ShopPolicy, cutoff_day: int, cutoff_ms: int) -> Projection:
    """Contributions to the cohorts from `cutoff_day` on: their consultations, and the orders
    credited to them.

    Credit is judged among all the inquiries the state holds, however old: an order credited to
    an inquiry from before the cutoff stays that inquiry's, and what changes in it later (a
    refund) is booked nowhere live, never on a younger inquiry that was not credited."""
    cohorts: dict[CohortKey, Vector] = {}
    inquiries: list[Consultation] = []
    orders = state.orders
    elapsed = policy.clock.elapsed
    targets = policy.response_targets_ms
    for consultation in state.consultations:
        if consultation.day < cutoff_day:
            if consultation.first_reply is not None and not is_after_sale(consultation, orders, policy):
                inquiries.append(consultation)  # books nothing, but may hold an order's credit
            continue
        vector = _EMPTY.copy()
        cohorts[(consultation.agent, consultation.start)] = vector
        vector[_CONSULTATIONS] = 1
        score = consultation.rating
        if score is not None:  # rated like any other, after-sale or not (metrics.md v3)
            vector[_RATED] = 1
            vector[_SATISFIED] = score >= 4
            vector[_DISSATISFIED] = score <= 2
            vector[_RATING_SCORE] = score
        if consultation.first_reply is None:
            continue
        vector[_REPLIED] = 1
        response_ms = elapsed(consultation.start, consultation.first_reply)
        vector[_FIRST_RESPONSE_MS] = response_ms
        for slot, target_ms in enumerate(targets):
            if response_ms <= target_ms:
                vector[_REPLIED_WITHIN_0 + slot] = 1
        if not is_after_sale(consultation, orders, policy):
            vector[_INQUIRIES] = 1
            inquiries.append(consultation)
    credited_past_cutoff: set[CohortKey] = set()
    if orders:
        _project_orders(orders, inquiries, cohorts, credited_past_cutoff, policy, cutoff_ms)
    return Projection(cohorts, dict(state.waits), credited_past_cutoff)


def _project_orders(
    orders: list[OrderState],
    inquiries: list[Consultation],
    cohorts: dict[CohortKey, Vector],
    credited_past_cutoff: set[CohortKey],
    policy: ShopPolicy,
    cutoff_ms: int,
) -> None:
    """Book the orders on the cohorts in `cohorts` (those from the cutoff on); only an inquiry
    without a cohort there is from before it, and its share of an order is booked nowhere."""
    # The inquiries (by id) credited with an order, a payment, an assist, over all the orders.
    credited: _Credited = (set(), set(), set())
    for order in orders:
        created = order.created_at
        if created is None:
            continue
        counted = created >= cutoff_ms  # the shop's orders are counted in their creation's window
        # Paid and created before the cutoff: only inquiries from before it can hold its credit,
        # for good (its moments only move earlier). Created before it and not paid: a payment may
        # still credit a later inquiry (judge `paid`), or go where the creation's credit went.
        if not counted and order.paid is not None and order.paid < cutoff_ms:
            continue
        given = credit(order, inquiries, policy)
        if counted:
            _book_shop_order(_vector(cohorts, (SHOP_LEVEL, created)), order, given)
        if given.ordered or given.paid:
            _book_credit(order, given, cohorts, credited, policy)
    _book_credited_counts(inquiries, cohorts, credited, credited_past_cutoff)


def _book_shop_order(shop_vector: Vector, order: OrderState, given: Credit) -> None:
    """The shop counts every order in its creation's cohort, and those credited to nobody."""
    shop_vector[_ORDERS] += 1
    if not given.ordered and not given.paid:
        shop_vector[_SILENT_ORDERS] += 1
        if order.is_paid:
            shop_vector[_SILENT_SALES_FEN] += order.amount_fen


def _book_credit(
    order: OrderState,
    given: Credit,
    cohorts: dict[CohortKey, Vector],
    credited: _Credited,
    policy: ShopPolicy,
) -> None:
    """One order's money on the cohorts it is credited to, and its inquiries marked credited."""
    ordered, paid, assisted = credited
    refund = order.refund_fen
    net = order.amount_fen - refund if policy.deduct_refunds else order.amount_fen
    for inquiry in given.ordered:
        ordered.add(id(inquiry))
    # Money adds up per order; the counts are once per inquiry, whatever the orders
    # (`_book_credited_counts`).
    for inquiry in given.paid:
        ordered.add(id(inquiry))  # an inquiry credited with a payment counts as ordered
        paid.add(id(inquiry))
        vector = cohorts.get((inquiry.agent, inquiry.start))
        if vector is not None:
            vector[_SALES_FEN] += net
            vector[_REFUNDED_FEN] += refund
    for inquiry in given.assisted:
        assisted.add(id(inquiry))
        vector = cohorts.get((inquiry.agent, inquiry.start))
        if vector is not None:
            vector[_ASSISTED_SALES_FEN] += net


def _book_credited_counts(
    inquiries: list[Consultation],
    cohorts: dict[CohortKey, Vector],
    credited: _Credited,
    credited_past_cutoff: set[CohortKey],
) -> None:
    """Each inquiry counts once as ordered, paid, assisted; one from before the cutoff has no
    cohort to count in, but if credited it is kept (`credited_past_cutoff`)."""
    ordered, paid, assisted = credited
    for inquiry in inquiries:
        key = (inquiry.agent, inquiry.start)
        marker = id(inquiry)
        vector = cohorts.get(key)
        if vector is None:
            if marker in ordered or marker in assisted:  # paid ones are ordered too
                credited_past_cutoff.add(key)
            continue
        vector[_ORDERED] += marker in ordered
        vector[_PAID] += marker in paid
        vector[_ASSISTED] += marker in assisted


def sample_vectors(samples: Iterable[WaitSample]) -> dict[CohortKey, Vector]:
    """Ended waits as cohort vectors (they are final once ended, so they add, never diff)."""
    cohorts: dict[CohortKey, Vector] = {}
    for sample in samples:
        vector = _vector(cohorts, (sample.agent, sample.start))
        vector[_WAITS_ENDED] += 1
        vector[_WAIT_MS] += sample.duration_ms
    return cohorts
