"""Consult-to-purchase crediting (metrics.md, Conversion metrics), one rule per test."""

from __future__ import annotations

from tests.builders import Ledger, agent_msg, at, buyer_msg, order, settings


def answered(ledger: Ledger, hour: float, agent: str = "s1:a", buyer: str = "b1", day: int = 0) -> Ledger:
    return ledger.apply(
        buyer_msg(at(hour, day=day), agent=agent, buyer=buyer),
        agent_msg(at(hour, 0, 10, day=day), agent=agent, buyer=buyer),
    )


def conversion(ledger: Ledger, agent: str = "s1:a", day: int = 0) -> tuple[int, int, int, int]:
    d = ledger.day(agent, day=day)
    return d.inquiries, d.ordered, d.paid, d.sales_fen


def test_answered_buyer_who_orders_and_pays_is_credited() -> None:
    ledger = answered(Ledger(), 10).apply(
        order(at(11), "T1", "created", 19900), order(at(11, 5), "T1", "paid", 19900)
    )
    assert conversion(ledger) == (1, 1, 1, 19900)
    shop = ledger.day("")
    assert (shop.orders, shop.silent_orders) == (1, 0)


def test_unanswered_consultation_is_not_an_inquiry() -> None:
    ledger = Ledger().apply(buyer_msg(at(10)), order(at(11), "T1", "paid", 500))
    assert conversion(ledger) == (0, 0, 0, 0)
    assert ledger.day("").silent_orders == 1 and ledger.day("").silent_sales_fen == 500


def test_order_before_the_first_reply_is_not_credited() -> None:
    ledger = Ledger().apply(
        buyer_msg(at(10)), order(at(10, 0, 5), "T1", "paid", 500), agent_msg(at(10, 0, 10))
    )
    assert conversion(ledger) == (1, 0, 0, 0)
    assert ledger.day("").silent_orders == 1


def test_order_at_the_moment_of_the_reply_is_credited() -> None:
    ledger = Ledger().apply(
        buyer_msg(at(10)), agent_msg(at(10, 0, 10)), order(at(10, 0, 10), "T1", "paid", 500)
    )
    assert conversion(ledger) == (1, 1, 1, 500)


def test_after_sale_by_a_recent_live_order() -> None:
    ledger = Ledger(now_ms=at(12, day=3)).apply(order(at(9), "T0", "paid", 100))
    answered(ledger, 10, day=3)  # 3 days after an order: after-sale (售后), no inquiry
    assert conversion(ledger, day=3) == (0, 0, 0, 0)
    assert ledger.day(day=3).replied == 1  # still a replied consultation


def test_an_order_older_than_after_sale_days_or_cancelled_does_not_make_it_after_sale() -> None:
    ledger = Ledger(now_ms=at(12, day=9)).apply(order(at(9), "T0", "paid", 100))
    answered(ledger, 10, day=8)
    assert conversion(ledger, day=8)[0] == 1
    cancelled = Ledger(now_ms=at(12, day=2)).apply(
        order(at(9), "T0", "created", 100), order(at(9, 30), "T0", "cancelled")
    )
    answered(cancelled, 10, day=2)
    assert conversion(cancelled, day=2)[0] == 1


def test_late_arriving_old_order_reclassifies_the_consultation_as_after_sale() -> None:
    ledger = answered(Ledger(now_ms=at(12, day=3)), 10, day=3)
    assert conversion(ledger, day=3)[0] == 1
    ledger.apply(order(at(9, day=1), "T0", "paid", 100))  # arrives after, happened before
    assert conversion(ledger, day=3)[0] == 0


def test_aftersale_group_agent_is_never_an_inquiry() -> None:
    config = settings("shops: {s1: {agents: {'s1:svc': {group: aftersale}}}}")
    ledger = answered(Ledger(settings=config), 10, agent="s1:svc").apply(order(at(11), "T1", "paid", 900))
    assert conversion(ledger, "s1:svc") == (0, 0, 0, 0)
    assert ledger.day("s1:svc").replied == 1
    assert ledger.day("").silent_orders == 1


AFTERSALE_X = "shops: {s1: {agents: {'s1:x': {group: aftersale}}}}"
PRESALE_X = "shops: {s1: {agents: {'s1:x': {group: presale}}}}"


def test_a_group_changed_live_applies_to_consultations_started_after_it() -> None:
    """config/watch.py reloads groups live. A consultation keeps the group its agent was in
    when it started: re-reading it under the new group at the buyer's next event booked a
    difference against a `before` that was never booked (paid 1 with inquiries 0)."""
    ledger = Ledger(settings=settings(AFTERSALE_X))
    answered(ledger, 10, agent="s1:x").apply(order(at(10, 30), "T1", "created", 10000))
    ledger.policies.update(settings(PRESALE_X))
    ledger.apply(order(at(11), "T1", "paid", 10000))
    assert (ledger.day("s1:x").inquiries, ledger.day("s1:x").paid, ledger.day("s1:x").sales_fen) == (0, 0, 0)
    assert ledger.day("").silent_orders == 1
    answered(ledger, 14, agent="s1:x", buyer="b2").apply(order(at(14, 30), "T2", "paid", 500, buyer="b2"))
    assert (ledger.day("s1:x").inquiries, ledger.day("s1:x").paid, ledger.day("s1:x").sales_fen) == (
        1,
        1,
        500,
    )


def test_moving_an_agent_into_aftersale_live_leaves_its_earlier_inquiries_as_they_were() -> None:
    ledger = Ledger(settings=settings(PRESALE_X))
    answered(ledger, 10, agent="s1:x").apply(order(at(10, 30), "T1", "created", 10000))
    ledger.policies.update(settings(AFTERSALE_X))
    ledger.apply(order(at(11), "T1", "paid", 10000))
    counts = ledger.day("s1:x")
    assert (counts.inquiries, counts.ordered, counts.paid, counts.sales_fen) == (1, 1, 1, 10000)
    assert ledger.day("").silent_orders == 0


def two_agents(rule: str) -> Ledger:
    ledger = Ledger(settings=settings(f"defaults: {{attribution: {{rule: {rule}}}}}"))
    answered(ledger, 10, agent="s1:a")
    answered(ledger, 11, agent="s1:b")
    return ledger.apply(order(at(12), "T1", "created", 3000), order(at(12, 1), "T1", "paid", 3000))


def test_two_agents_rule_last_credits_the_later_inquiry() -> None:
    ledger = two_agents("last")
    assert (conversion(ledger, "s1:a"), conversion(ledger, "s1:b")) == ((1, 0, 0, 0), (1, 1, 1, 3000))


def test_two_agents_rule_first_credits_the_earlier_inquiry() -> None:
    ledger = two_agents("first")
    assert (conversion(ledger, "s1:a"), conversion(ledger, "s1:b")) == ((1, 1, 1, 3000), (1, 0, 0, 0))


def test_two_agents_rule_all_credits_both_in_full() -> None:
    ledger = two_agents("all")
    assert (conversion(ledger, "s1:a"), conversion(ledger, "s1:b")) == ((1, 1, 1, 3000), (1, 1, 1, 3000))


def test_cancelled_before_payment_stays_ordered_never_paid() -> None:
    ledger = answered(Ledger(), 10).apply(
        order(at(11), "T1", "created", 800), order(at(11, 30), "T1", "cancelled")
    )
    assert conversion(ledger) == (1, 1, 0, 0)


def test_refund_is_not_subtracted() -> None:
    ledger = answered(Ledger(), 10).apply(
        order(at(11), "T1", "paid", 800), order(at(15), "T1", "refunded", None)
    )
    assert conversion(ledger) == (1, 1, 1, 800)


def test_latest_amount_wins() -> None:
    ledger = answered(Ledger(), 10).apply(
        order(at(11), "T1", "created", 800), order(at(11, 2), "T1", "paid", 750)
    )
    assert conversion(ledger)[3] == 750


def test_paid_without_created_counts_as_created_at_payment() -> None:
    ledger = answered(Ledger(), 10).apply(order(at(11), "T1", "paid", 1200))
    assert conversion(ledger) == (1, 1, 1, 1200)


def test_order_outside_the_same_day_window_is_not_credited() -> None:
    ledger = answered(Ledger(now_ms=at(12, day=1)), 10).apply(order(at(9, day=1), "T1", "paid", 100))
    assert conversion(ledger) == (1, 0, 0, 0)


def test_next_day_window_credits_the_next_business_day_only() -> None:
    config = settings("defaults: {attribution: {window: next_day}}")
    ledger = answered(Ledger(settings=config, now_ms=at(12, day=2)), 10)
    ledger.apply(order(at(9, day=1), "T1", "paid", 100), order(at(9, day=2), "T2", "paid", 200, buyer="b1"))
    assert conversion(ledger) == (1, 1, 1, 100)


def test_duration_window_is_measured_from_the_inquiry_start() -> None:
    config = settings("defaults: {attribution: {window: 24h}}")
    ledger = answered(Ledger(settings=config, now_ms=at(12, day=2)), 10)
    ledger.apply(
        order(at(9, 59, 59, day=1), "T1", "paid", 100), order(at(10, 0, 1, day=1), "T2", "paid", 200)
    )
    assert conversion(ledger) == (1, 1, 1, 100)


def test_conversion_is_a_cohort_value_of_the_inquirys_day() -> None:
    config = settings("defaults: {attribution: {window: 3d}}")
    ledger = answered(Ledger(settings=config, now_ms=at(12, day=2)), 10)
    ledger.apply(order(at(9, day=2), "T1", "paid", 100))
    assert conversion(ledger, day=0) == (1, 1, 1, 100) and conversion(ledger, day=2) == (0, 0, 0, 0)
