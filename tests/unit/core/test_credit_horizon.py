"""An order's credit outlives the window of the inquiry that holds it.

A change to an order moves money only between the cohorts that hold its credit. When the credited
inquiry has aged past every window (the horizon), a later change (a refund, a new amount) changes
nothing live: a younger inquiry that was never credited must not be booked the difference, and
`rebuild`, whose horizon is the retention, books it on the credited inquiry's day.
"""

from __future__ import annotations

import pytest

from agents.core.buyer import BuyerState, Consultation, prune
from agents.core.engine import Horizon
from agents.core.projection import SHOP_LEVEL
from tests.builders import Counts, Ledger, agent_msg, at, buyer_msg, order, settings

A, B = "s1:a", "s1:b"
AMOUNT, REFUND = 10000, 3000
Books = dict[tuple[str, str, int], list[int]]


def ledger_for(judge: str, rule: str, window: str, deduct: bool = True, restore: bool = False) -> Ledger:
    yaml = (
        f"defaults: {{attribution: {{judge: {judge}, rule: {rule}, window: {window}, "
        f"deduct_refunds: {str(deduct).lower()}}}}}"
    )
    return Ledger(settings=settings(yaml), now_ms=at(0), restore_history=restore)


def credited_to_a_then_b_asks(ledger: Ledger) -> Ledger:
    """A's inquiry on day 0 at 23:00 (replied), the order at 23:30, B's inquiry on day 1 at 09:00
    (replied), the payment on day 1 at 10:00: each event applied live, at its own time."""
    return ledger.apply_live(
        buyer_msg(at(23), A),
        agent_msg(at(23, 1), A),
        order(at(23, 30), "T1", "created", AMOUNT),
        buyer_msg(at(9, day=1), B),
        agent_msg(at(9, 1, day=1), B),
        order(at(10, day=1), "T1", "paid", AMOUNT),
    )


def books(ledger: Ledger, before_day: int = 28) -> Books:
    """The non-zero day buckets of the days before `before_day` (day 0 = at(0)'s day)."""
    last = ledger.policy().calendar.day(at(day=before_day))
    return {key: list(vector) for key, vector in ledger.by_day.items() if any(vector) and key[2] < last}


def money(counts: Counts) -> tuple[int, int, int, int, int]:
    return (counts.paid, counts.sales_fen, counts.refunded_fen, counts.assisted, counts.assisted_sales_fen)


@pytest.mark.parametrize("rule", ["last", "first"])
@pytest.mark.parametrize("window", ["same_day", "next_day"])
def test_a_late_refund_of_an_order_credited_past_the_horizon_changes_nothing_live(
    rule: str, window: str
) -> None:
    ledger = credited_to_a_then_b_asks(ledger_for("created_first", rule, window))
    assert money(ledger.day(A, day=0)) == (1, AMOUNT, 0, 0, 0)
    assert ledger.day(B, day=1).inquiries == 1 and money(ledger.day(B, day=1)) == (0, 0, 0, 0, 0)
    booked = books(ledger)

    # Day 28: the `28d` window starts on day 1, with B's inquiry inside it and A's outside.
    ledger.apply_live(order(at(12, day=28), "T1", "refunded", REFUND))
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 0, 0)
    assert books(ledger) == booked  # and A's day is history: frozen live, `rebuild` recomputes it

    # The refund pruned the state: later changes must not find the order B's either.
    ledger.apply_live(
        order(at(13, day=28), "T1", "refunded", REFUND),
        buyer_msg(at(14, day=28), B),
        order(at(15, day=28), "T1", "refunded", None),
    )
    assert books(ledger) == booked


def test_an_assist_inside_the_window_follows_the_refund_and_takes_no_credit() -> None:
    # Judged at the payment, under `first` and `next_day`: A (day 0) is credited, B (day 1) assisted.
    ledger = credited_to_a_then_b_asks(ledger_for("paid", "first", "next_day", deduct=True))
    assert money(ledger.day(A, day=0)) == (1, AMOUNT, 0, 0, 0)
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 1, AMOUNT)

    ledger.apply_live(order(at(12, day=28), "T1", "refunded", REFUND))
    # B holds an assist of the order, so its assisted sales are net of the refund; never the sale.
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 1, AMOUNT - REFUND)
    assert money(ledger.day(A, day=0)) == (1, AMOUNT, 0, 0, 0)

    ledger.apply_live(order(at(13, day=28), "T1", "refunded", None))
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 1, 0)


def test_an_assist_with_gross_sales_changes_nothing() -> None:
    ledger = credited_to_a_then_b_asks(ledger_for("paid", "first", "next_day", deduct=False))
    booked = books(ledger)
    ledger.apply_live(order(at(12, day=28), "T1", "refunded", REFUND))
    ledger.apply_live(order(at(13, day=28), "T1", "refunded", REFUND))
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 1, AMOUNT)
    assert books(ledger) == booked


def test_the_inquiry_that_holds_the_payment_inside_the_window_still_takes_the_refund() -> None:
    # Judged at the payment under `last`: B (day 1) holds the payment, A only the order credit.
    ledger = credited_to_a_then_b_asks(ledger_for("paid", "last", "next_day", deduct=True))
    assert money(ledger.day(B, day=1)) == (1, AMOUNT, 0, 0, 0)
    ledger.apply_live(order(at(12, day=28), "T1", "refunded", REFUND))
    assert money(ledger.day(B, day=1)) == (1, AMOUNT - REFUND, REFUND, 0, 0)
    ledger.apply_live(order(at(13, day=28), "T1", "refunded", REFUND))
    assert money(ledger.day(B, day=1)) == (1, AMOUNT - 2 * REFUND, 2 * REFUND, 0, 0)


def test_an_order_credited_past_the_horizon_is_not_silent_in_its_creation_window() -> None:
    # `next_day`: A's inquiry on day 0 holds an order created on day 1 at 00:30, inside the `28d`
    # window on day 28 while A's day is not. A new amount must not count it as a silent sale.
    ledger = ledger_for("created", "last", "next_day").apply_live(
        buyer_msg(at(23), A),
        agent_msg(at(23, 1), A),
        order(at(0, 30, day=1), "T1", "paid", AMOUNT),
    )
    shop_day_1 = ledger.day(SHOP_LEVEL, day=1)
    assert (shop_day_1.orders, shop_day_1.silent_orders, shop_day_1.silent_sales_fen) == (1, 0, 0)
    booked = books(ledger)
    ledger.apply_live(order(at(12, day=28), "T1", "cancelled", 8000))  # closed after payment
    ledger.apply_live(order(at(13, day=28), "T1", "cancelled", 6000))
    shop_day_1 = ledger.day(SHOP_LEVEL, day=1)
    assert (shop_day_1.orders, shop_day_1.silent_orders, shop_day_1.silent_sales_fen) == (1, 0, 0)
    assert books(ledger) == booked


@pytest.mark.parametrize(("judge", "b_paid"), [("created_first", 0), ("paid", 1)])
def test_a_payment_weeks_after_the_order_goes_where_the_judge_sends_it(judge: str, b_paid: int) -> None:
    # Ordered on day 0 through A; B answers on day 28, when A's day has left the window; paid then.
    ledger = ledger_for(judge, "last", "same_day").apply_live(
        buyer_msg(at(23), A),
        agent_msg(at(23, 1), A),
        order(at(23, 30), "T1", "created", AMOUNT),
        buyer_msg(at(9, day=28), B),
        agent_msg(at(9, 1, day=28), B),
        order(at(10, day=28), "T1", "paid", AMOUNT),
    )
    # `created_first`: the payment goes where the creation's credit went, to A, past the horizon.
    assert money(ledger.day(B, day=28)) == (b_paid, b_paid * AMOUNT, 0, 0, 0)
    assert ledger.day(A, day=0).paid == 0  # history: frozen live


def test_rebuild_books_the_refund_on_the_credited_inquirys_day_within_the_retention() -> None:
    ledger = credited_to_a_then_b_asks(ledger_for("created_first", "last", "same_day", restore=True))
    ledger.apply_live(order(at(12, day=28), "T1", "refunded", REFUND))
    assert money(ledger.day(A, day=0)) == (1, AMOUNT - REFUND, REFUND, 0, 0)
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 0, 0)


def test_rebuild_changes_nothing_for_a_credit_past_the_retention() -> None:
    # retention_days 93: on day 93 the horizon starts on day 1, with B inside and A outside.
    ledger = credited_to_a_then_b_asks(ledger_for("created_first", "last", "same_day", restore=True))
    booked = books(ledger, before_day=93)
    ledger.apply_live(order(at(12, day=93), "T1", "refunded", REFUND))
    ledger.apply_live(order(at(13, day=93), "T1", "refunded", REFUND))
    assert money(ledger.day(B, day=1)) == (0, 0, 0, 0, 0)
    assert books(ledger, before_day=93) == booked


def test_a_credited_inquiry_is_kept_while_its_order_can_reach_the_window_and_no_longer() -> None:
    ledger = credited_to_a_then_b_asks(ledger_for("created_first", "last", "same_day"))
    calendar = ledger.policy().calendar
    ledger.apply_live(order(at(12, day=28), "T1", "refunded", REFUND))
    state = ledger.states[("s1", "b1")]
    assert [(c.agent, c.day) for c in state.consultations] == [
        (A, calendar.day(at(0))),
        (B, calendar.day(at(day=1))),
    ]
    # From day 29 the window starts after the payment (day 1): no cohort of the window can hold
    # the order's credit any more. Under created_first the inquiries stay for the after-sale
    # look-back all the same: an order created then, its created event not yet `late`, may
    # still look for them (Horizon.inquiries_from_ms). Then they go; the order stays.
    ledger.apply_live(buyer_msg(at(0, day=29), B))
    assert [c.day for c in state.consultations][:2] == [calendar.day(at(0)), calendar.day(at(day=1))]
    ledger.apply_live(buyer_msg(at(0, day=29 + 7), B))
    assert [o.order_id for o in state.orders] == ["T1"]
    assert [c.day for c in state.consultations] == [calendar.day(at(day=29)), calendar.day(at(day=36))]


def test_prune_keeps_the_consultations_it_is_told_to_keep() -> None:
    horizon = Horizon.at(Ledger().policy(), at(12, day=27))
    cutoff = horizon.cutoff_day
    old_a, old_b = (
        Consultation(A, cutoff - 1, at(10, day=-1), at(10, 1, day=-1)),
        Consultation(B, cutoff - 1, at(11, day=-1)),
    )
    state = BuyerState(consultations=[old_a, old_b, Consultation(A, cutoff, at(10))])
    prune(state, cutoff, horizon.order_horizon_ms, keep={(A, old_a.start)})
    assert [(c.agent, c.day) for c in state.consultations] == [(A, cutoff - 1), (A, cutoff)]


@pytest.mark.parametrize("days_later", [30, 34, 35, 36, 45, 59])
@pytest.mark.parametrize("after_sale_days", [7, 0])
def test_an_order_paid_weeks_after_its_creation_is_still_that_one_order(
    days_later: int, after_sale_days: int
) -> None:
    """An order never paid was dropped with the horizon (28 days and the after-sale look-back
    after its creation): its payment then counted as a new order of the payment's day, and
    credited B, who answered the buyer that day, under judge `created` (a presale's balance)."""
    yaml = f"defaults: {{after_sale_days: {after_sale_days}, attribution: {{judge: created}}}}"
    ledger = Ledger(settings=settings(yaml), now_ms=at(0))
    ledger.apply_live(
        buyer_msg(at(10), A), agent_msg(at(10, 1), A), order(at(10, 5), "T1", "created", AMOUNT)
    )
    later = days_later
    ledger.apply_live(buyer_msg(at(9, day=later), B), agent_msg(at(9, 1, day=later), B))
    ledger.apply_live(order(at(9, 30, day=later), "T1", "paid", AMOUNT))
    assert (ledger.day("", day=0).orders, ledger.day("", day=later).orders) == (1, 0)
    assert (ledger.day(B, day=later).paid, ledger.day(B, day=later).sales_fen) == (0, 0)


def test_an_order_never_paid_leaves_the_state_once_no_payment_can_find_it() -> None:
    """60 days from its creation, by a payment's own day; and a payment stamped on day 59 may
    arrive as late as any order event not `late` (28 days and the after-sale look-back)."""
    state = BuyerState()
    ledger = Ledger(now_ms=at(0))
    ledger.states[("s1", "b1")] = state
    ledger.apply_live(buyer_msg(at(10), A), order(at(10, 5), "T1", "created", AMOUNT))
    ledger.apply_live(buyer_msg(at(10, day=59 + 27 + 7), A))
    assert [o.order_id for o in state.orders] == ["T1"]
    ledger.apply_live(buyer_msg(at(10, day=59 + 27 + 7 + 1), A))
    assert state.orders == []


@pytest.mark.parametrize("arrives_days_later", [0, 1, 20])
def test_a_payment_on_the_sixtieth_day_arriving_late_still_pays_its_order(arrives_days_later: int) -> None:
    """Live kept a never-paid order 60 days by its own clock, and cut a payment's order by the
    payment's day: a balance stamped 23:59:59 on day 59 that arrived after midnight (another
    message of the buyer processed first) found the order gone, and counted as a new order of
    day 59 credited to B, where rebuild credited the order's creation (found in review)."""
    yaml = "defaults: {attribution: {judge: created, rule: last, window: same_day}}"

    def run(restore: bool) -> tuple[tuple[int, int, int], int]:
        ledger = Ledger(settings=settings(yaml), now_ms=at(0), restore_history=restore)
        ledger.apply_live(
            buyer_msg(at(10), A), agent_msg(at(10, 1), A), order(at(10, 5), "T1", "created", AMOUNT)
        )
        ledger.apply_live(buyer_msg(at(23, day=59), B), agent_msg(at(23, 1, day=59), B))
        arrival = at(0, 0, 0.2, day=60 + arrives_days_later)
        ledger.now_ms = arrival
        ledger.apply_batch([buyer_msg(at(23, 59, 59.5, day=59), B)])
        ledger.now_ms = arrival + 100
        ledger.apply_batch([order(at(23, 59, 59, day=59), "T1", "paid", AMOUNT)])
        b = ledger.day(B, day=59)
        return (b.ordered, b.paid, b.sales_fen), ledger.day("", day=59).orders

    assert run(restore=False) == run(restore=True) == ((0, 0, 0), 0)


@pytest.mark.parametrize("days_later", [45, 59, 62, 80])
def test_a_rebuild_books_a_late_payment_of_an_unpaid_order_as_live_did(days_later: int) -> None:
    """A rebuild's state keeps every order of its retention: it kept a never-paid order that
    live had dropped at 60 days, and credited its payment to A's inquiry of day 0 where live
    counted it an order of its own day, credited to B (the 28d window then differed)."""

    def run(restore: bool) -> tuple[tuple[int, int], int]:
        ledger = Ledger(settings=settings("defaults: {attribution: {judge: created}}"), now_ms=at(0))
        ledger.restore_history = restore
        ledger.apply_live(
            buyer_msg(at(10), A), agent_msg(at(10, 1), A), order(at(10, 5), "T1", "created", AMOUNT)
        )
        ledger.apply_live(buyer_msg(at(9, day=days_later), B), agent_msg(at(9, 1, day=days_later), B))
        ledger.apply_live(order(at(9, 30, day=days_later), "T1", "paid", AMOUNT))
        b = ledger.day(B, day=days_later)
        return (b.paid, b.sales_fen), ledger.day("", day=days_later).orders

    # Inside the 28d window, the same; day 0 is history a rebuild restores and live froze.
    assert run(restore=True) == run(restore=False)


@pytest.mark.parametrize("rule", ["first", "last"])
def test_an_order_a_day_late_still_finds_the_inquiry_its_window_reaches_before_the_cutoff(rule: str) -> None:
    """Window 26d, the order feed a day behind: a buyer message processed on day 28 pruned A's
    day-0 inquiry with the 28d window, and the order created on day 26 (in A's window) then
    credited B's day-20 inquiry under `first`, or went silent under `last` (found in review).
    Live keeps A's day frozen, as always; what it must not do is pay B or call it silent."""
    yaml = f"defaults: {{attribution: {{judge: created, rule: {rule}, window: 26d}}}}"
    events = [
        (at(23, day=0), buyer_msg(at(23, day=0), A)),
        (at(23, 1, day=0), agent_msg(at(23, 1, day=0), A)),
        (at(0, 30, day=28), buyer_msg(at(0, 30, day=28), B)),
        (at(1, day=28), order(at(22, day=26), "T1", "created", AMOUNT)),
        (at(1, 0, 1, day=28), order(at(22, 5, day=26), "T1", "paid", AMOUNT)),
    ]
    if rule == "first":  # B answered the buyer on day 20, inside the 28d window
        events[2:2] = [
            (at(10, day=20), buyer_msg(at(10, day=20), B)),
            (at(10, 1, day=20), agent_msg(at(10, 1, day=20), B)),
        ]
    ledger = Ledger(settings=settings(yaml), now_ms=at(0))
    for arrival, event in events:
        ledger.now_ms = max(ledger.now_ms, arrival)
        ledger.apply_batch([event])
    b, shop = ledger.day(B, day=20), ledger.day("", day=26)
    assert (b.paid, b.sales_fen) == (0, 0)
    assert (shop.orders, shop.silent_orders, shop.silent_sales_fen) == (1, 0, 0)


def test_an_after_sale_look_back_of_forever_still_runs() -> None:
    """The oldest order event not late was taken to the calendar: 999999 days is before year 1,
    and every batch of the shop raised (found in review)."""
    yaml = "defaults: {after_sale_days: 999999, attribution: {judge: created}}"
    ledger = Ledger(settings=settings(yaml), now_ms=at(0))
    ledger.apply_live(buyer_msg(at(10), A), agent_msg(at(10, 1), A), order(at(10, 5), "T1", "paid", AMOUNT))
    assert (ledger.day(A, day=0).paid, ledger.day(A, day=0).sales_fen) == (1, AMOUNT)


def test_under_created_first_an_order_created_before_the_cutoff_still_finds_its_inquiry() -> None:
    """An order created on day 1 whose created event came 29 days late (not yet `late`: the
    after-sale look-back) found A's inquiry pruned with the cutoff, was judged at its payment
    instead, and paid B on day 30; rebuild credited A (found reviewing c4fab1b)."""
    yaml = "defaults: {attribution: {judge: created_first, rule: first, window: 2d}}"

    def run(restore: bool) -> tuple[int, int]:
        ledger = Ledger(settings=settings(yaml), now_ms=at(0), restore_history=restore)
        for arrival, event in [
            (at(10, day=0), buyer_msg(at(10, day=0), A)),
            (at(10, 1, day=0), agent_msg(at(10, 1, day=0), A)),
            (at(10, day=30), buyer_msg(at(10, day=30), B)),
            (at(10, 1, day=30), agent_msg(at(10, 1, day=30), B)),
            (at(11, day=30), order(at(9, day=1), "T1", "created", AMOUNT)),
            (at(12, day=30), order(at(12, day=30), "T1", "paid", AMOUNT)),
        ]:
            ledger.now_ms = max(ledger.now_ms, arrival)
            ledger.apply_batch([event])
        b = ledger.day(B, day=30)
        return b.paid, b.sales_fen

    assert run(restore=False) == run(restore=True) == (0, 0)


@pytest.mark.parametrize(
    ("attribution", "c_is_b"),
    [
        ("{judge: created, rule: last, window: 26d}", False),
        ("{judge: created_first, rule: first, window: 2d}", True),
    ],
)
def test_a_kept_after_sale_consultation_keeps_the_payment_that_made_it_after_sale(
    attribution: str, c_is_b: bool
) -> None:
    """A consultation kept before the cutoff (for a late order's window) lost the order paid the
    day before it, pruned at the order horizon: it turned from after-sale into an inquiry and
    took the late order's credit, where rebuild, still seeing it after-sale, booked the order
    silent or paid B (found reviewing 50bc92a)."""
    yaml = f"defaults: {{after_sale_days: 7, attribution: {attribution}}}"
    events = [
        order(at(9, day=0), "T0", "created", 5_000),
        order(at(9, 5, day=0), "T0", "paid", 5_000),  # A, the day after, is after-sale
        buyer_msg(at(10, day=1), A),
        agent_msg(at(10, 1, day=1), A),
        buyer_msg(at(10, day=36), B),
        *([agent_msg(at(10, 1, day=36), B)] if c_is_b else []),
    ]
    created = at(10, day=2) if c_is_b else at(10, day=10)  # an order feed weeks behind, not yet late
    late = [
        order(created, "T1", "created", AMOUNT),
        order(at(12, day=36 if c_is_b else 10), "T1", "paid", AMOUNT),
    ]

    def run(restore: bool) -> tuple[int, int, int, int]:
        ledger = Ledger(settings=settings(yaml), now_ms=at(0), restore_history=restore)
        for event in events:
            ledger.now_ms = max(ledger.now_ms, event.ts)
            ledger.apply_batch([event])
        for event in late:
            ledger.now_ms = max(ledger.now_ms, at(11, day=36))
            ledger.apply_batch([event])
        b = ledger.day(B, day=36)
        if c_is_b:  # T1's own day 2 is before the cutoff: frozen live, as every such day
            return b.paid, b.sales_fen, 0, 0
        shop = ledger.day("", day=10)
        return b.paid, b.sales_fen, shop.orders, shop.silent_orders

    # B answered on day 36 under created_first: rebuild pays B; under last, T1 is silent.
    assert run(restore=False) == run(restore=True) == ((1, AMOUNT, 0, 0) if c_is_b else (0, 0, 1, 1))
