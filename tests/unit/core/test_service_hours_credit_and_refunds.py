"""metrics.md v2, rule by rule, with values computed by hand in each test's comment."""

from __future__ import annotations

import asyncio

import pytest

from agents.core.alerts import FIRST_RESPONSE, WAITING, conditions
from agents.core.policy import PolicyBook
from agents.core.projection import WIDTH
from agents.core.service_clock import ServiceClock
from agents.exposure.floor import FloorReader
from config.calendar import calendar_for
from config.settings import ConfigError, settings_from_yaml
from tests.builders import Counts, Ledger, agent_msg, agent_row, at, buyer_msg, order, settings, shop_floor
from tests.fakes import FakeStore

SECOND = 1000
SHANGHAI = calendar_for("Asia/Shanghai")


def ledger(config: str = "", now: int = at(23, 59, 59)) -> Ledger:
    return Ledger(settings=settings(config), now_ms=now)


def day0(book: Ledger, agent: str = "s1:a") -> Counts:
    return book.day(agent)


# --- the service clock ----------------------------------------------------------------------


def test_a_wait_that_straddles_the_opening_counts_only_from_it() -> None:
    # 07:59:00 -> 08:00:10 under 08:00-23:00: 10 s, not 70 s, for the wait and the first response.
    book = ledger("defaults: {service_hours: '08:00-23:00'}")
    book.apply(buyer_msg(at(7, 59)), agent_msg(at(8, 0, 10)))
    counts = day0(book)
    assert (counts.first_response_ms, counts.wait_ms, counts.waits_ended) == (10 * SECOND, 10 * SECOND, 1)


def test_a_wait_across_the_night_counts_the_evening_and_the_morning() -> None:
    # 22:59:30 -> next day 08:00:20 under 08:00-23:00: 30 s + 20 s = 50 s.
    book = ledger("defaults: {service_hours: '08:00-23:00'}", now=at(12, day=1))
    book.apply(buyer_msg(at(22, 59, 30)), agent_msg(at(8, 0, 20, day=1)))
    assert day0(book).first_response_ms == 50 * SECOND


def test_24_00_closes_at_midnight_and_all_day_is_the_wall_clock() -> None:
    clock = ServiceClock(SHANGHAI, 9 * 60 + 30, 24 * 60)
    assert clock.elapsed(at(23, 59, 59), at(0, 0, 1, day=1)) == 1 * SECOND
    assert clock.elapsed(at(9, 29), at(9, 31)) == 60 * SECOND
    assert clock.elapsed(at(11), at(10)) == 0
    always = ServiceClock(SHANGHAI)
    assert always.elapsed(at(3), at(3, 0, 7)) == 7 * SECOND and always.is_open(at(3))


def test_opening_is_inside_service_hours_and_closing_is_not() -> None:
    clock = ServiceClock(SHANGHAI, 8 * 60, 23 * 60)
    assert not clock.is_open(at(8) - 1)
    assert clock.is_open(at(8))
    assert clock.is_open(at(23) - 1)
    assert not clock.is_open(at(23))


def test_service_hours_follow_the_local_wall_clock_across_a_dst_change() -> None:
    # Europe/Berlin springs forward on 2026-03-29 at 02:00: 08:00 local is 06:00 UTC that day.
    berlin = calendar_for("Europe/Berlin")
    clock = ServiceClock(berlin, 8 * 60, 20 * 60)
    opening_utc_ms = 1774764000000  # 2026-03-29T06:00:00Z
    assert berlin.day(opening_utc_ms) == berlin.day(opening_utc_ms - 1)
    assert not clock.is_open(opening_utc_ms - 1) and clock.is_open(opening_utc_ms)


# --- replied within N seconds ---------------------------------------------------------------


def test_a_reply_at_exactly_n_seconds_is_within_and_one_millisecond_later_is_not() -> None:
    # Buyers b1..b3 asked at 10:00; replies after 15 s, 15.001 s and 180.001 s; b4 was never
    # answered. Within 15 s: 1 of 4; within 180 s: 2 of 4 (an unanswered one counts against it).
    book = ledger()
    book.apply(buyer_msg(at(10), buyer="b1"), agent_msg(at(10) + 15 * SECOND, buyer="b1"))
    book.apply(buyer_msg(at(10), buyer="b2"), agent_msg(at(10) + 15 * SECOND + 1, buyer="b2"))
    book.apply(buyer_msg(at(10), buyer="b3"), agent_msg(at(10) + 180 * SECOND + 1, buyer="b3"))
    book.apply(buyer_msg(at(10), buyer="b4"))
    counts = day0(book)
    assert counts.consultations == 4
    assert counts.replied_within[:2] == (1, 2)


def test_replied_within_runs_on_the_service_clock() -> None:
    # 07:50 -> 08:00:15 under 08:00-23:00 is 15 s on the service clock: within 15 s.
    book = ledger("defaults: {service_hours: '08:00-23:00'}")
    book.apply(buyer_msg(at(7, 50)), agent_msg(at(8, 0, 15)))
    assert day0(book).replied_within[:2] == (1, 1)


def test_each_target_has_its_slot_in_the_configured_order() -> None:
    book = ledger("defaults: {response_targets_seconds: [60, 5, 30]}")
    book.apply(buyer_msg(at(10)), agent_msg(at(10, 0, 20)))  # 20 s: within 60 and 30, not 5
    assert day0(book).replied_within[:3] == (1, 0, 1)


# --- the judging moment (催付) ---------------------------------------------------------------

# Buyer b1 asks agent a at 09:00 (answered 09:00:05), orders at 10:00 without paying, asks
# agent b at 11:00 "when does it ship?" (answered 11:00:05, 催付), and pays 199.00 at 12:00.
CUIFU = (
    buyer_msg(at(9), "s1:a"),
    agent_msg(at(9, 0, 5), "s1:a"),
    order(at(10), "T1", "created", 19900),
    buyer_msg(at(11), "s1:b"),
    agent_msg(at(11, 0, 5), "s1:b"),
    order(at(12), "T1", "paid", 19900),
)


def judged(judge: str, rule: str = "last") -> Ledger:
    return ledger(f"defaults: {{attribution: {{judge: {judge}, rule: {rule}}}}}").apply(*CUIFU)


def test_judged_at_creation_both_credits_go_to_the_agent_before_the_order() -> None:
    book = judged("created")
    a, b = day0(book, "s1:a"), day0(book, "s1:b")
    assert (a.ordered, a.paid, a.sales_fen) == (1, 1, 19900)
    # b's consultation started after the order but before the payment: pre-sale (v2), an inquiry.
    assert (b.inquiries, b.ordered, b.paid, b.sales_fen) == (1, 0, 0, 0)
    assert (a.assisted, b.assisted) == (0, 0)


def test_judged_at_payment_the_cuifu_agent_gets_the_payment_and_the_other_assisted() -> None:
    book = judged("paid")
    a, b = day0(book, "s1:a"), day0(book, "s1:b")
    assert (a.ordered, a.paid, a.sales_fen) == (1, 0, 0)  # the order credit stays at creation
    assert (b.ordered, b.paid, b.sales_fen) == (1, 1, 19900)  # credited with a payment: ordered too
    assert (a.assisted, a.assisted_sales_fen) == (1, 19900)
    assert book.day("").silent_orders == 0


def test_created_first_keeps_the_creation_credit_when_one_qualifies() -> None:
    a, b = day0(judged("created_first"), "s1:a"), day0(judged("created_first"), "s1:b")
    assert (a.paid, a.sales_fen, b.paid) == (1, 19900, 0)
    # Under `first` at the payment moment b would not win either; a is credited, b assisted
    # under `paid` + `first`.
    first = judged("paid", rule="first")
    assert (day0(first, "s1:a").paid, day0(first, "s1:b").assisted) == (1, 1)


def test_created_first_judges_at_payment_when_nobody_qualified_at_creation() -> None:
    # Ordered at 08:00 with no inquiry yet (silent at creation), 催付 by b at 11:00, paid 12:00.
    events = (
        order(at(8), "T1", "created", 5000),
        buyer_msg(at(11), "s1:b"),
        agent_msg(at(11, 0, 5), "s1:b"),
        order(at(12), "T1", "paid", 5000),
    )
    for judge, b_paid, silent in (("created", 0, 1), ("created_first", 1, 0), ("paid", 1, 0)):
        book = ledger(f"defaults: {{attribution: {{judge: {judge}}}}}").apply(*events)
        counts = day0(book, "s1:b")
        assert (counts.paid, counts.ordered, book.day("").silent_orders) == (b_paid, b_paid, silent), judge
        assert book.day("").orders == 1


def test_all_has_no_assists() -> None:
    book = judged("paid", rule="all")
    a, b = day0(book, "s1:a"), day0(book, "s1:b")
    assert (a.paid, b.paid, a.assisted, b.assisted) == (1, 1, 0, 0)


def test_a_second_inquiry_of_the_credited_agent_is_not_an_assist() -> None:
    # Window next_day: a answered on day 0 and again on day 1, b on day 1; the order on day 1.
    # Under `first`, a's day-0 inquiry is credited; a's own day-1 inquiry is no assist, b's is.
    book = ledger("defaults: {attribution: {window: next_day, rule: first}}", now=at(23, day=1))
    book.apply(
        buyer_msg(at(10), "s1:a"),
        agent_msg(at(10, 0, 5), "s1:a"),
        buyer_msg(at(9, day=1), "s1:a"),
        agent_msg(at(9, 0, 5, day=1), "s1:a"),
        buyer_msg(at(10, day=1), "s1:b"),
        agent_msg(at(10, 0, 5, day=1), "s1:b"),
        order(at(11, day=1), "T1", "paid", 3000),
    )
    assert (book.day("s1:a").paid, book.day("s1:a", day=1).assisted, book.day("s1:b", day=1).assisted) == (
        1,
        0,
        1,
    )
    assert book.day("s1:b", day=1).assisted_sales_fen == 3000


# --- refunds ----------------------------------------------------------------------------------

ASKED = (buyer_msg(at(9)), agent_msg(at(9, 0, 5)))


@pytest.mark.parametrize("deduct", [False, True])
def test_partial_refunds_add_up_and_never_pass_the_order(deduct: bool) -> None:
    # 100.00 paid; refunds of 60.00 and 60.00: 120.00 asked for, capped at the order's 100.00.
    book = ledger(f"defaults: {{attribution: {{deduct_refunds: {str(deduct).lower()}}}}}")
    book.apply(*ASKED, order(at(10), "T1", "paid", 10000))
    book.apply(order(at(11), "T1", "refunded", 6000))
    assert (day0(book).refunded_fen, day0(book).sales_fen) == (6000, 4000 if deduct else 10000)
    book.apply(order(at(12), "T1", "refunded", 6000))
    counts = day0(book)
    assert (counts.refunded_fen, counts.sales_fen) == (10000, 0 if deduct else 10000)
    assert counts.paid == 1  # a refund never undoes the payment


def test_a_refund_without_an_amount_refunds_the_whole_order() -> None:
    book = ledger("defaults: {attribution: {deduct_refunds: true}}")
    book.apply(*ASKED, order(at(10), "T1", "paid", 8800), order(at(11), "T1", "refunded", None))
    counts = day0(book)
    assert (counts.paid, counts.refunded_fen, counts.sales_fen) == (1, 8800, 0)


def test_a_refund_that_arrives_before_the_payment_changes_nothing() -> None:
    ordered = ledger("defaults: {attribution: {deduct_refunds: true}}")
    ordered.apply(*ASKED, order(at(10), "T1", "paid", 10000), order(at(11), "T1", "refunded", 2500))
    early = ledger("defaults: {attribution: {deduct_refunds: true}}")
    early.apply(order(at(11), "T1", "refunded", 2500), *ASKED, order(at(10), "T1", "paid", 10000))
    assert day0(early) == day0(ordered)
    assert (day0(early).refunded_fen, day0(early).sales_fen) == (2500, 7500)


def test_a_refund_amount_is_not_the_order_amount() -> None:
    # The order's amount stays 100.00 after a 30.00 refund: silent sales and sales keep it.
    book = ledger()
    book.apply(*ASKED, order(at(10), "T1", "paid", 10000), order(at(11), "T1", "refunded", 3000))
    assert day0(book).sales_fen == 10000


def test_assisted_sales_are_net_of_refunds_when_deducted() -> None:
    book = ledger("defaults: {attribution: {judge: paid, deduct_refunds: true}}")
    book.apply(*CUIFU, order(at(13), "T1", "refunded", 900))
    a, b = day0(book, "s1:a"), day0(book, "s1:b")
    assert (b.sales_fen, b.refunded_fen, a.assisted_sales_fen, a.refunded_fen) == (19000, 900, 19000, 0)


# --- nothing alerts outside service hours -----------------------------------------------------


def test_no_alert_fires_outside_service_hours() -> None:
    row = agent_row("s1:a", oldest_wait_seconds=99.0, first_response_5m=99.0)
    closed = conditions([shop_floor("s1", 15.0, [row], in_service_hours=False)])
    opened = conditions([shop_floor("s1", 15.0, [row], in_service_hours=True)])
    assert not closed[(WAITING, "s1", "s1:a")][0] and not closed[(FIRST_RESPONSE, "s1", "s1:a")][0]
    assert opened[(WAITING, "s1", "s1:a")][0] and opened[(FIRST_RESPONSE, "s1", "s1:a")][0]


def test_the_floor_freezes_waits_at_closing_and_alerts_again_at_opening() -> None:
    # Under 08:00-23:00 a buyer waits from 22:59:40: 20 s at closing, still 20 s at 03:00, and
    # 21 s one second after 08:00 the next day, when the alert fires again.
    store = FakeStore()
    store.vectors[("s1", "s1:a")] = [0] * WIDTH
    store.waits[("s1", "s1:a")] = (1, at(22, 59, 40), "tb_buyer")
    reader = FloorReader(
        store,  # type: ignore[arg-type]
        PolicyBook(settings_from_yaml("defaults: {service_hours: '08:00-23:00'}\nshops: {s1: {}}")),
    )

    def floor_at(moment: int) -> tuple[bool, float, bool]:
        floor = asyncio.run(reader.floor("s1", moment))
        row = next(r for r in floor.agents if r.agent == "s1:a")
        return floor.in_service_hours, row.oldest_wait_seconds, row.alert

    assert floor_at(at(22, 59, 59)) == (True, 19.0, True)
    assert floor_at(at(3, day=1)) == (False, 20.0, False)
    assert floor_at(at(8, 0, 1, day=1)) == (True, 21.0, True)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ("defaults: {service_hours: '25:00-08:00'}", "$.defaults.service_hours"),
        ("defaults: {service_hours: '23:00-08:00'}", "$.defaults.service_hours"),
        ("defaults: {service_hours: '24:00-24:00'}", "$.defaults.service_hours"),
        ("shops: {s1: {service_hours: '8-23'}}", "$.shops.s1.service_hours"),
        ("defaults: {attribution: {judge: maybe}}", "$.defaults.attribution.judge"),
        ("defaults: {response_targets_seconds: [15, -3]}", "$.defaults.response_targets_seconds[1]"),
        ("defaults: {response_targets_seconds: [15, 15]}", "$.defaults.response_targets_seconds"),
        ("defaults: {response_targets_seconds: [1, 2, 3, 4, 5]}", "$.defaults.response_targets_seconds"),
        ("shops: {s1: {attribution: {deduct_refunds: perhaps}}}", "$.shops.s1.attribution.deduct_refunds"),
    ],
)
def test_bad_v2_configuration_names_the_key(config: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("$", r"\$").replace("[", r"\[").replace(".", r"\.")):
        settings_from_yaml(config)


def test_a_shop_can_open_all_day_against_the_defaults() -> None:
    book = PolicyBook(
        settings_from_yaml(
            "defaults: {service_hours: '08:00-23:00'}\nshops: {s1: {service_hours: '00:00-24:00'}}"
        )
    )
    assert book("s1").clock.always_open and not book("s2").clock.always_open


def test_a_shop_sets_single_attribution_keys_over_the_defaults() -> None:
    book = PolicyBook(
        settings_from_yaml(
            "defaults: {attribution: {window: next_day, judge: paid}}\n"
            "shops: {s1: {attribution: {deduct_refunds: true}},"
            " s2: {attribution: {judge: created, rule: first}}}"
        )
    )
    s1, s2, s3 = book("s1"), book("s2"), book("s3")
    assert (s1.attribution_window, s1.judge, s1.deduct_refunds, s1.attribution_rule) == (
        "next_day",
        "paid",
        True,
        "last",
    )
    assert (s2.attribution_window, s2.judge, s2.deduct_refunds, s2.attribution_rule) == (
        "next_day",
        "created",
        False,
        "first",
    )
    assert (s3.judge, s3.deduct_refunds) == ("paid", False)


def test_a_shops_bad_attribution_window_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\$\.shops\.s1\.attribution\.window"):
        settings_from_yaml("shops: {s1: {attribution: {window: fortnight}}}")


def test_an_order_created_before_the_28d_window_and_paid_at_its_first_millisecond_still_credits() -> None:
    # 28d at day 27 starts at day 0's midnight. Created the evening before, paid at midnight
    # exactly, by a buyer asked and answered in that same millisecond: judged at payment, paid.
    book = ledger("defaults: {attribution: {judge: paid}}", now=at(12, day=27))
    book.apply(order(at(23, day=-1), "T1", "created", 4200), buyer_msg(at(0)), agent_msg(at(0)))
    book.apply(order(at(0), "T1", "paid", 4200))
    counts = day0(book)
    assert (counts.inquiries, counts.paid, counts.sales_fen) == (1, 1, 4200)
    assert book.day("").orders == 0  # counted in its creation's window, which is outside


def test_opening_minutes_past_the_hour_are_read_as_written() -> None:
    clock = ServiceClock(SHANGHAI, 9 * 60 + 50, 23 * 60 + 59)
    assert clock.elapsed(at(9, 49), at(9, 51)) == 60 * SECOND
    assert clock.elapsed(at(23, 58), at(23, 59, 30)) == 60 * SECOND
    assert clock.is_open(at(9, 50)) and not clock.is_open(at(9, 50) - 1)
