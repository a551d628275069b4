"""Every inclusive or exclusive edge of metrics.md, as plain examples: one exactly on the edge
and one on each side. Each test's name states the rule. Times are exact milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.core.alerts import FIRST_RESPONSE, WAITING, AlertEvent, conditions, transitions
from agents.core.buyer import BuyerState, Consultation, OrderState, event_digest, prune
from agents.core.engine import Horizon, apply_buyer_events
from agents.core.projection import FIRST_RESPONSE_BUCKETS, WIDTH, bucket_index
from agents.core.values import team_values, window_values
from agents.core.windows import ROLLING_SECONDS, cohort_buckets, window_reads
from config import calendar as calendar_module
from config.calendar import MS_PER_DAY, MS_PER_HOUR, calendar_for
from streams.contract.floor import WindowValues
from tests.builders import (
    TARGETS,
    Ledger,
    agent_msg,
    agent_row,
    at,
    buyer_msg,
    order,
    settings,
    shop_floor,
    transfer,
)

MS = 1
DAY = MS_PER_DAY


def values_of(vector: list[int]) -> WindowValues:
    """A window's values from the first fields of a cohort vector (the rest zero)."""
    return window_values(vector + [0] * (WIDTH - len(vector)), TARGETS)


SHANGHAI = calendar_for("Asia/Shanghai")


def inquiries(ledger: Ledger, day: int, agent: str = "s1:a") -> int:
    return ledger.day(agent, day=day).inquiries


def credited(ledger: Ledger, day: int = 0, agent: str = "s1:a") -> tuple[int, int, int]:
    d = ledger.day(agent, day=day)
    return d.ordered, d.paid, d.sales_fen


# --- after-sale: a payment within `after_sale_days` (default 7) before the start, edge included ----


@pytest.mark.parametrize(
    ("before_start", "after_sale"),
    [(7 * MS_PER_DAY - MS, True), (7 * MS_PER_DAY, True), (7 * MS_PER_DAY + MS, False)],
    ids=["inside", "exactly_7_days_is_after_sale", "one_ms_past_7_days_is_presale"],
)
def test_after_sale_days_edge_is_inclusive(before_start: int, after_sale: bool) -> None:
    start = at(10, day=8)
    ledger = Ledger(now_ms=at(12, day=8)).apply(order(start - before_start, "T0", "paid", 100))
    ledger.apply(buyer_msg(start), agent_msg(start + 5000))
    assert inquiries(ledger, day=8) == (0 if after_sale else 1)
    assert ledger.day(day=8).replied == 1  # after-sale or not, it is a replied consultation


@pytest.mark.parametrize(
    ("after_sale_days", "after_sale"), [(3, True), (2, False)], ids=["setting_3_days", "setting_2_days"]
)
def test_after_sale_days_is_read_from_the_setting(after_sale_days: int, after_sale: bool) -> None:
    config = settings(f"defaults: {{after_sale_days: {after_sale_days}}}")
    start = at(10, day=5)
    ledger = Ledger(settings=config, now_ms=at(12, day=5)).apply(
        order(start - 3 * MS_PER_DAY, "T0", "paid", 100)  # paid exactly 3 days before the start
    )
    ledger.apply(buyer_msg(start), agent_msg(start + 5000))
    assert inquiries(ledger, day=5) == (0 if after_sale else 1)


def test_an_order_paid_in_the_consultations_start_millisecond_does_not_make_it_after_sale() -> None:
    start = at(10)
    ledger = Ledger().apply(order(start, "T0", "paid", 100), buyer_msg(start), agent_msg(start + 5000))
    assert inquiries(ledger, day=0) == 1
    # ...and one millisecond earlier it does.
    earlier = Ledger().apply(order(start - MS, "T0", "paid", 100), buyer_msg(start), agent_msg(start + 5000))
    assert inquiries(earlier, day=0) == 0


@pytest.mark.parametrize(
    ("steps", "after_sale"),
    [
        ((("created", -DAY),), False),
        ((("created", -DAY), ("cancelled", -MS)), False),
        ((("created", -DAY), ("paid", MS)), False),
        ((("created", -DAY), ("paid", -MS)), True),
        ((("paid", -DAY), ("cancelled", MS)), True),
    ],
    ids=[
        "created_not_paid",
        "created_then_cancelled",
        "paid_just_after_the_start",
        "paid_just_before_the_start",
        "paid_then_cancelled_after_the_start",
    ],
)
def test_only_a_payment_makes_a_consultation_after_sale(
    steps: tuple[tuple[str, int], ...], after_sale: bool
) -> None:
    """metrics.md v2: a buyer who ordered and asks before paying (改地址, 催付) is pre-sale."""
    start = at(10, day=1)
    ledger = Ledger(now_ms=at(12, day=1)).apply(*(order(start + d, "T0", status, 100) for status, d in steps))
    ledger.apply(buyer_msg(start), agent_msg(start + 5000))
    assert inquiries(ledger, day=1) == (0 if after_sale else 1)


# --- the judging moment against the first reply and the start ------------------------------------


@pytest.mark.parametrize(
    ("after_reply", "is_credited"),
    [(-MS, False), (0, True), (MS, True)],
    ids=["before_the_reply", "at_the_reply_counts", "after_the_reply"],
)
def test_an_order_is_credited_from_the_first_reply_on(after_reply: int, is_credited: bool) -> None:
    reply = at(10, 0, 10)
    ledger = Ledger().apply(
        buyer_msg(at(10)), agent_msg(reply), order(reply + after_reply, "T1", "paid", 500)
    )
    assert credited(ledger) == ((1, 1, 500) if is_credited else (0, 0, 0))
    assert ledger.day("").silent_orders == (0 if is_credited else 1)


def test_a_reply_in_the_starts_millisecond_qualifies_an_order_in_that_millisecond() -> None:
    start = at(10)
    ledger = Ledger().apply(buyer_msg(start), agent_msg(start), order(start, "T1", "paid", 500))
    assert credited(ledger) == (1, 1, 500)


# --- attribution windows ---------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["24h", "3d"])
@pytest.mark.parametrize(
    ("past_the_window", "is_credited"),
    [(-MS, True), (0, True), (MS, False)],
    ids=["inside", "exactly_at_the_end_is_inside", "one_ms_past"],
)
def test_duration_window_edge_is_inclusive(window: str, past_the_window: int, is_credited: bool) -> None:
    length = {"24h": 24 * MS_PER_HOUR, "3d": 3 * MS_PER_DAY}[window]
    config = settings(f"defaults: {{attribution: {{window: {window}}}}}")
    start = at(10)
    ledger = Ledger(settings=config, now_ms=at(12, day=4)).apply(buyer_msg(start), agent_msg(start + 10_000))
    ledger.apply(order(start + length + past_the_window, "T1", "paid", 700))
    assert credited(ledger) == ((1, 1, 700) if is_credited else (0, 0, 0))


@pytest.mark.parametrize(
    ("window", "moment", "is_credited"),
    [
        ("same_day", at(0, day=1) - MS, True),
        ("same_day", at(0, day=1), False),
        ("next_day", at(0, day=1), True),
        ("next_day", at(0, day=2) - MS, True),
        ("next_day", at(0, day=2), False),
    ],
    ids=[
        "same_day_last_ms",
        "same_day_ends_at_midnight",
        "next_day_first_ms",
        "next_day_last_ms",
        "next_day_ends_at_the_second_midnight",
    ],
)
def test_calendar_windows_end_at_local_midnight(window: str, moment: int, is_credited: bool) -> None:
    config = settings(f"defaults: {{attribution: {{window: {window}}}}}")
    ledger = Ledger(settings=config, now_ms=at(12, day=3)).apply(buyer_msg(at(10)), agent_msg(at(10, 0, 10)))
    ledger.apply(order(moment, "T1", "paid", 300))
    assert credited(ledger) == ((1, 1, 300) if is_credited else (0, 0, 0))


def test_rule_first_and_last_break_a_start_tie_by_agent() -> None:
    # Two agents' inquiries starting in the same millisecond (a transfer at the buyer's first message).
    for rule, winner in (("last", "s1:b"), ("first", "s1:a")):
        config = settings(f"defaults: {{attribution: {{rule: {rule}}}}}")
        ledger = Ledger(settings=config).apply(
            buyer_msg(at(10)),
            transfer(at(10), "s1:a", "s1:b"),
            agent_msg(at(10, 0, 5)),
            agent_msg(at(10, 0, 6), agent="s1:b"),
            order(at(11), "T1", "paid", 100),
        )
        loser = "s1:a" if winner == "s1:b" else "s1:b"
        assert (credited(ledger, agent=winner), credited(ledger, agent=loser)) == ((1, 1, 100), (0, 0, 0))


# --- the wait limit (24 h): a wait is open up to and including 24 h, dropped after ---------------


@pytest.mark.parametrize(
    ("after_limit", "answered"),
    [(-MS, True), (0, True), (MS, False)],
    ids=["inside", "a_reply_exactly_at_24h_ends_the_wait", "one_ms_past_24h_the_wait_was_dropped"],
)
def test_wait_limit_edge_is_inclusive(after_limit: int, answered: bool) -> None:
    start = at(9)
    reply = start + 24 * MS_PER_HOUR + after_limit
    ledger = Ledger(now_ms=at(12, day=1)).apply(buyer_msg(start), agent_msg(reply))
    day0 = ledger.day(day=0)
    assert (day0.waits_ended, day0.wait_ms) == ((1, reply - start) if answered else (0, 0))
    assert day0.replied == 1  # the reply still answers the consultation either way
    assert ledger.waits[("s1", "s1:a")] == {}


@pytest.mark.parametrize(
    ("after_limit", "wait_start"),
    [(0, at(9)), (MS, at(9) + 24 * MS_PER_HOUR + MS)],
    ids=["at_24h_the_old_wait_holds", "past_24h_a_new_wait_starts"],
)
def test_a_buyer_message_at_the_wait_limit(after_limit: int, wait_start: int) -> None:
    start = at(9)
    ledger = Ledger(now_ms=at(12, day=1)).apply(
        buyer_msg(start), buyer_msg(start + 24 * MS_PER_HOUR + after_limit)
    )
    assert ledger.waits[("s1", "s1:a")] == {"b1": wait_start}


# --- the 28-day window, lateness and pruning --------------------------------------------------------


def test_the_28d_window_starts_at_midnight_27_days_before_today() -> None:
    policy = Ledger().policy()
    horizon = Horizon.at(policy, at(12, day=27))
    assert horizon.cutoff_day == SHANGHAI.day(at(12)) and horizon.cutoff_ms == at(0)
    assert horizon.order_horizon_ms == at(0) - 7 * MS_PER_DAY
    reads = window_reads(at(12, day=27), SHANGHAI)
    days = sorted(r.ident for r in reads if r.kind == "d" and r.mask & 0b1000)
    assert days[0] == SHANGHAI.day(at(0)) and len(days) == 28


@pytest.mark.parametrize(
    ("ts", "outcome"),
    [(at(0) - MS, "late"), (at(0), "applied")],
    ids=["one_ms_before_the_cutoff_is_late", "the_cutoff_itself_is_applied"],
)
def test_messages_are_late_before_the_28d_cutoff(ts: int, outcome: str) -> None:
    ledger = Ledger(now_ms=at(12, day=27)).apply(buyer_msg(ts))
    assert ledger.outcomes == [outcome]


@pytest.mark.parametrize(
    ("ts", "outcome"),
    [(at(0) - 7 * MS_PER_DAY - MS, "late"), (at(0) - 7 * MS_PER_DAY, "applied"), (at(0) - MS, "applied")],
    ids=["before_the_look_back", "the_look_back_edge_is_applied", "inside_the_look_back"],
)
def test_orders_keep_the_after_sale_look_back_before_the_cutoff(ts: int, outcome: str) -> None:
    ledger = Ledger(now_ms=at(12, day=27)).apply(order(ts, "T0", "paid", 100))
    assert ledger.outcomes == [outcome]


def test_an_order_from_before_the_window_still_makes_a_consultation_after_sale() -> None:
    # Today is day 27, the window starts on day 0; an order paid on day -3 is 4 days before day 1.
    ledger = Ledger(now_ms=at(12, day=27)).apply(order(at(10, day=-3), "T0", "paid", 100))
    assert ledger.outcomes == ["applied"]
    ledger.apply(buyer_msg(at(10, day=1)), agent_msg(at(10, 0, 5, day=1)))
    assert inquiries(ledger, day=1) == 0


def test_pruning_keeps_the_cutoff_day_and_the_look_back_edge() -> None:
    horizon = Horizon.at(Ledger().policy(), at(12, day=27))
    ledger = Ledger(now_ms=at(12, day=27)).apply(
        order(horizon.order_horizon_ms, "T0", "paid", 100, buyer="b2"),
        buyer_msg(at(0)),
        agent_msg(at(0, 0, 4)),
    )
    ledger.apply(buyer_msg(at(12, day=27)))  # a later event prunes the state
    state = ledger.states[("s1", "b1")]
    assert [c.day for c in state.consultations] == [SHANGHAI.day(at(0)), SHANGHAI.day(at(12, day=27))]
    assert ledger.day(day=0).consultations == 1
    other = ledger.states[("s1", "b2")]
    prune(other, horizon.cutoff_day, horizon.order_horizon_ms)
    assert [o.order_id for o in other.orders] == ["T0"]
    assert len(other.seen) == 1  # the id of an event at the edge is kept: its duplicate stays caught


def test_pruning_drops_what_is_one_ms_or_one_day_older() -> None:
    horizon = Horizon.at(Ledger().policy(), at(12, day=27))
    state = BuyerState(
        orders=[
            OrderState("old", paid=horizon.order_horizon_ms - MS),
            OrderState("edge", paid=horizon.order_horizon_ms),
        ],
        seen={1: horizon.order_horizon_ms - MS, 2: horizon.order_horizon_ms},
    )
    prune(state, horizon.cutoff_day, horizon.order_horizon_ms)
    assert [o.order_id for o in state.orders] == ["edge"] and state.seen == {2: horizon.order_horizon_ms}


def test_a_duplicate_at_the_look_back_edge_is_still_a_duplicate() -> None:
    horizon = Horizon.at(Ledger().policy(), at(12, day=27))
    first = order(horizon.order_horizon_ms, "T0", "paid", 100)
    ledger = Ledger(now_ms=at(12, day=27)).apply(first, buyer_msg(at(12, day=27)), first)
    assert ledger.outcomes == ["applied", "applied", "duplicate"]


# --- ties inside one millisecond, day starts ---------------------------------------------------------


def test_a_reply_in_the_same_millisecond_as_the_start_counts_with_zero_first_response() -> None:
    ledger = Ledger().apply(buyer_msg(at(10)), agent_msg(at(10)))
    day = ledger.day()
    assert (day.replied, day.first_response_ms, day.waits_ended, day.wait_ms) == (1, 0, 1, 0)


def test_an_agent_message_in_the_same_millisecond_but_before_the_buyers_answers_nothing() -> None:
    ledger = Ledger().apply(agent_msg(at(10)), buyer_msg(at(10)))
    assert ledger.day().replied == 0 and ledger.waits[("s1", "s1:a")] == {"b1": at(10)}


@pytest.mark.parametrize(
    ("ts", "day"),
    [(at(0, day=1) - MS, 0), (at(0, day=1), 1)],
    ids=["last_ms_of_the_day", "midnight_opens_the_next"],
)
def test_a_consultation_belongs_to_the_local_day_of_its_start(ts: int, day: int) -> None:
    ledger = Ledger(now_ms=at(12, day=1)).apply(buyer_msg(ts))
    assert ledger.day(day=day).consultations == 1 and ledger.day(day=1 - day).consultations == 0


# --- the first-response histogram: a value on a bound belongs to that bound (`le`) ----------------


METRICS_MD_BUCKETS = (1, 3, 6, 10, 15, 30, 60, 120, 300)


def test_histogram_buckets_are_those_of_metrics_md() -> None:
    assert FIRST_RESPONSE_BUCKETS == METRICS_MD_BUCKETS


@pytest.mark.parametrize("bound", METRICS_MD_BUCKETS)
def test_histogram_bucket_edges_are_inclusive(bound: int) -> None:
    index = METRICS_MD_BUCKETS.index(bound)
    assert bucket_index(bound * 1000 - 1) == index
    assert bucket_index(bound * 1000) == index
    assert bucket_index(bound * 1000 + 1) == index + 1
    assert bucket_index(0) == 0


# --- the rolling windows: `5m` at now covers (now - 300 s, now], to the second ---------------------


@pytest.mark.parametrize("name", ["5m", "1h"])
def test_rolling_window_holds_exactly_its_seconds(name: str) -> None:
    now = at(10, 30, 30.5)
    seconds = ROLLING_SECONDS[name]
    reads = [r for r in window_reads(now, SHANGHAI) if r.mask & (1 << ("5m", "1h").index(name))]

    def covered(ts: int) -> bool:
        _, minute, second = cohort_buckets(ts, SHANGHAI, now)
        assert minute is not None and second is not None
        return any(
            (r.kind == "m" and r.ident == minute)
            or (r.kind == "s" and r.ident == minute and r.lo <= second <= r.hi)
            for r in reads
        )

    now_second = now // 1000 * 1000
    assert covered(now_second) and covered(now)
    assert covered(now_second - (seconds - 1) * 1000)
    assert not covered(now_second - seconds * 1000 + 999)
    assert not covered(now_second + 1000)


def test_second_buckets_are_kept_for_cohorts_an_hour_and_five_minutes_old() -> None:
    now = at(12)
    assert cohort_buckets(now - 3900 * 1000, SHANGHAI, now)[2] is not None
    assert cohort_buckets(now - 3900 * 1000 - 1, SHANGHAI, now)[2] is None


def test_minute_buckets_are_kept_for_cohorts_two_hours_and_five_minutes_old() -> None:
    """The floor compares this hour with the hour before from minute buckets."""
    now = at(12)
    assert cohort_buckets(now - 7500 * 1000, SHANGHAI, now)[1] is not None
    assert cohort_buckets(now - 7500 * 1000, SHANGHAI, now)[2] is None
    assert cohort_buckets(now - 7500 * 1000 - 1, SHANGHAI, now)[1] is None


# --- empty denominators: absent (None), never 0 ----------------------------------------------------


def test_every_ratio_and_average_of_an_empty_window_is_absent_never_zero() -> None:
    values = values_of([0] * 12)
    for name in (
        "reply_ratio",
        "first_response_avg_seconds",
        "response_avg_seconds",
        "consult_order_ratio",
        "consult_pay_ratio",
        "order_pay_ratio",
        "average_order_value_yuan",
    ):
        assert getattr(values, name) is None, name
    assert values.consultations == 0 and values.attributed_sales_yuan == 0
    assert team_values([0] * WIDTH, [0] * WIDTH, TARGETS).silent_share is None


def test_a_ratio_with_a_non_empty_denominator_is_a_number_even_when_zero() -> None:
    # 4 consultations, none replied: reply ratio 0.0 (present), first response absent.
    vector = [4] + [0] * 11
    values = values_of(vector)
    assert values.reply_ratio == 0.0 and values.first_response_avg_seconds is None
    # 2 inquiries, 1 ordered, 0 paid; 2 waits of 3 s and 4 s; 3 s first response over 1 reply.
    vector = [2, 1, 3000, 2, 7000, 2, 1, 0, 0, 0, 0, 0]
    values = values_of(vector)
    assert (values.consult_order_ratio, values.consult_pay_ratio, values.order_pay_ratio) == (
        0.5,
        0.0,
        0.0,
    )
    assert (values.first_response_avg_seconds, values.response_avg_seconds) == (3.0, 3.5)
    assert values.average_order_value_yuan is None


def test_pruning_keeps_consultations_of_the_cutoff_day_and_drops_the_day_before() -> None:
    horizon = Horizon.at(Ledger().policy(), at(12, day=27))
    cutoff = horizon.cutoff_day
    state = BuyerState(
        consultations=[Consultation("s1:a", cutoff - 1, at(10, day=-1)), Consultation("s1:a", cutoff, at(10))]
    )
    prune(state, cutoff, horizon.order_horizon_ms)
    assert [c.day for c in state.consultations] == [cutoff]


# --- alerts: "exceeds" the threshold, so a value exactly at it does not fire -----------------------


@pytest.mark.parametrize(
    ("value", "firing"),
    [(14.999, False), (15.0, False), (15.001, True)],
    ids=["below", "at_the_threshold", "above"],
)
def test_both_alerts_fire_only_above_the_threshold(value: float, firing: bool) -> None:
    floor = shop_floor("s1", 15, [agent_row("s1:a", value, value)])
    found = conditions([floor])
    assert found[(WAITING, "s1", "s1:a")][0] is firing
    assert found[(FIRST_RESPONSE, "s1", "s1:a")][0] is firing


def test_the_offset_cache_never_holds_more_than_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar_module, "MAX_CACHED_HOURS", 3)
    calendar = calendar_module.BusinessCalendar(SHANGHAI.zone)
    sizes = []
    for hour in range(8):
        calendar.day(at(hour))
        sizes.append(len(calendar._offsets))
    assert max(sizes) == 3


# --- what leaves the core whole: alert events, persisted digests, the business day -----------------


def test_alert_events_carry_their_own_alert_shop_and_agent() -> None:
    key = (WAITING, "s1", "s1:b")
    now = {key: (True, 20.0, 15.0), (FIRST_RESPONSE, "s2", "s2:a"): (False, 1.0, 10.0)}
    episode = "BuyerWaitingTooLong/s1/s1:b/7"
    assert transitions({}, now, ts=7) == [AlertEvent(WAITING, "firing", "s1", "s1:b", 20.0, 15.0, 7, episode)]
    later = {key: (False, 0.0, 15.0)}
    resolved = transitions({key: 7}, later, ts=8)
    assert resolved == [AlertEvent(WAITING, "resolved", "s1", "s1:b", 0.0, 15.0, 8, episode)]
    vanished = transitions({(FIRST_RESPONSE, "s2", "s2:a"): 3}, {}, ts=9)
    assert vanished == [
        AlertEvent(FIRST_RESPONSE, "resolved", "s2", "s2:a", 0.0, 0.0, 9, "FirstResponseSlow/s2/s2:a/3")
    ]


def test_event_digests_are_stable_because_redis_state_holds_them() -> None:
    # Buyer states in Redis keep these digests to recognise redelivered events; a different
    # digest after an upgrade would let every redelivery in the look-back through as new.
    assert event_digest("m1") == 6104225451280506833
    assert event_digest("sim-42") == 3995053184766016765


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"])
def test_business_day_equals_the_local_date_around_every_midnight_and_hour(zone: str) -> None:
    calendar = calendar_module.BusinessCalendar(ZoneInfo(zone))
    tz = ZoneInfo(zone)
    start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1000
    for hour in range(0, 366 * 24):
        ts = start + hour * 3_600_000
        for moment in (ts - 1, ts, ts + 1):
            local = datetime.fromtimestamp(moment // 1000, tz) + timedelta(milliseconds=moment % 1000)
            assert calendar.day(moment) == local.date().toordinal(), (zone, moment)
    for day in range(date(2025, 1, 1).toordinal(), date(2026, 1, 1).toordinal()):
        midnight = int(datetime.combine(date.fromordinal(day), time(0), tzinfo=tz).timestamp()) * 1000
        assert calendar.day_start_ms(day) == midnight
        assert (calendar.day(midnight - 1), calendar.day(midnight)) == (day - 1, day)


def test_the_histogram_sum_adds_each_new_first_response_once() -> None:
    policy = Ledger().policy()
    horizon = Horizon.at(policy, at(12))
    state = BuyerState()
    first = apply_buyer_events(state, [buyer_msg(at(10)), agent_msg(at(10, 0, 9))], policy, horizon)
    assert (first.histogram, first.histogram_sum_ms) == ({("s1:a", 3): 1}, {"s1:a": 9000})
    again = apply_buyer_events(state, [buyer_msg(at(10, 1)), agent_msg(at(10, 1, 2))], policy, horizon)
    assert (again.histogram, again.histogram_sum_ms) == ({}, {})  # the same consultation: no new sample


@pytest.mark.parametrize(
    ("created", "counted"),
    [(at(0) - MS, False), (at(0), True)],
    ids=["one_ms_before_the_window_only_for_the_look_back", "at_the_window_start_it_counts"],
)
def test_an_order_counts_in_the_28d_window_from_its_first_millisecond(created: int, counted: bool) -> None:
    ledger = Ledger(now_ms=at(12, day=27)).apply(order(created, "T0", "paid", 100))
    assert ledger.outcomes == ["applied"]
    shop = ledger.day("", day=0)
    assert (shop.orders, shop.silent_orders, shop.silent_sales_fen) == ((1, 1, 100) if counted else (0, 0, 0))


@pytest.mark.parametrize("name", ["5m", "1h"])
@pytest.mark.parametrize("second", range(60))
def test_rolling_windows_cover_exactly_their_seconds_at_every_second_of_a_minute(
    name: str, second: int
) -> None:
    now = at(10, 30, second) + 250
    bit = 1 << ("5m", "1h").index(name)
    covered: list[int] = []
    for read in window_reads(now, SHANGHAI):
        if read.mask & bit and read.kind == "m":
            covered.extend(range(read.ident * 60, read.ident * 60 + 60))
        elif read.mask & bit:
            assert read.kind == "s" and 0 <= read.lo <= read.hi <= 59
            covered.extend(read.ident * 60 + s for s in range(read.lo, read.hi + 1))
    now_s = now // 1000
    assert sorted(covered) == list(range(now_s - ROLLING_SECONDS[name] + 1, now_s + 1))


def test_whole_bucket_reads_say_so_with_minus_one_as_the_store_script_expects() -> None:
    # window_sums.lua sums the whole hash when lo < 0; second reads name their seconds 0..59.
    for read in window_reads(at(10, 30, 30.5), SHANGHAI):
        if read.kind in ("m", "d"):
            assert (read.lo, read.hi) == (-1, -1), read
        else:
            assert 0 <= read.lo <= read.hi <= 59, read


def test_floor_values_round_money_to_the_fen_and_seconds_to_the_millisecond() -> None:
    # 3 replies, 1,234 ms of first response in all: 0.411333 s; sales 12,345 fen over 1 payment.
    values = values_of([3, 3, 1234, 0, 0, 1, 1, 1, 12_345, 0, 0, 0])
    assert values.first_response_avg_seconds == 0.411
    assert (values.attributed_sales_yuan, values.average_order_value_yuan) == (123.45, 123.45)
    assert values_of([1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]).attributed_sales_yuan == 0.01
