"""The core against the independent reference model (tests/reference.py), on random scenarios
whose times are built from the edges of metrics.md, so that boundaries are hit by design.

Messages keep each buyer's order (events.md); orders arrive anywhere among them; events are
applied in random batch sizes; duplicates, blocked buyers and late events are mixed in. Some
scenarios go on weeks later, live: refunds (and buyers writing again) arrive each at its own
time, after the `28d` window has left some of the credited inquiries behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contract.events import Event, Message, Order, Rating, Transfer
from tests.builders import Ledger, at
from tests.builders import settings as parse_settings
from tests.reference import DAY_MS, FIELDS, Rules, local_day, reference

HOUR = 3_600_000
AGENTS = ("s1:a", "s1:b", "s1:c")
BUYERS = ("b1", "b2", "b3")
# Gaps between one buyer's conversation events: the edges of first response, the histogram,
# the wait limit, and plain random ones.
EDGE_GAPS = (0, 1, 999, 1000, 15_000, 15_001, 24 * HOUR - 1, 24 * HOUR, 24 * HOUR + 1)
# An order's moment relative to one of its buyer's conversation moments: the after-sale look-back,
# the judging moment against the reply, and the 24h / 3d windows.
ORDER_DELTAS = (
    -7 * DAY_MS - 1,
    -7 * DAY_MS,
    -DAY_MS,
    -1,
    0,
    1,
    24 * HOUR,
    24 * HOUR + 1,
    3 * DAY_MS,
    3 * DAY_MS + 1,
)
# A rating's moment after the conversation event before it: at once, a day or three on, or (a
# number of business days on, and the ms from that day's midnight) the edges of the
# `rating_days` reach, which counts business days (the scenarios' rating_days are 1 and 3).
RATING_GAPS = (0, 1, DAY_MS, DAY_MS + 1, 3 * DAY_MS, 3 * DAY_MS + 1)
RATING_EDGES = ((2, -1), (2, 0), (4, -1), (4, 0))
FIRST_MOMENTS = (at(0) - 1, at(0), at(0, 0, 0.001), at(10), at(20), at(23, 59, 50), at(0, day=1) - 1)
NOWS = (at(12, day=3), at(12, day=27), at(0, day=28))


# Days after one of the scenario's days: the `28d` window then starts on it, the day after, or
# the one after that.
LATER_DAYS = (27, 28, 29)
LATER_HOURS = (0, 9, 12, 23)


@dataclass(frozen=True)
class Scenario:
    rules: Rules
    now: int
    events: tuple[Event, ...]
    batches: tuple[int, ...] = (1,)
    later: tuple[Event, ...] = ()  # applied after `events`, each live at its own time (ts order)


@st.composite
def conversation(draw: st.DrawFn, buyer: str, serial: list[int]) -> list[Event]:
    ts = draw(st.sampled_from(FIRST_MOMENTS)) + draw(st.sampled_from((0, 0, DAY_MS, 2 * DAY_MS)))
    events: list[Event] = []
    current = draw(st.sampled_from(AGENTS))
    for _ in range(draw(st.integers(1, 12))):
        step = draw(
            st.sampled_from(
                ("buyer", "buyer", "agent", "agent", "auto", "transfer", "dup", "midnight", "rating")
            )
        )
        if step == "midnight":
            midnight = ts - (ts - at(0)) % DAY_MS + DAY_MS
            ts = max(ts, midnight + draw(st.sampled_from((-1, 0, 1))))
            step = "buyer"
        elif step == "rating":
            if draw(st.booleans()):
                days, ms = draw(st.sampled_from(RATING_EDGES))
                ts = max(ts, ts - (ts - at(0)) % DAY_MS + days * DAY_MS + ms)
            else:
                ts += draw(st.sampled_from(RATING_GAPS))
        else:
            ts += draw(st.one_of(st.sampled_from(EDGE_GAPS), st.integers(0, 6 * HOUR)))
        serial[0] += 1
        event_id = f"e{serial[0]}"
        # Mostly the agent the buyer talks to already, so that replies (and credits) are common.
        if draw(st.integers(0, 3)) == 0:
            current = draw(st.sampled_from(AGENTS))
        agent, other = current, draw(st.sampled_from(AGENTS))
        if step == "transfer":
            current = other
        if step == "dup" and events:
            events.append(draw(st.sampled_from(events)))
        elif step == "transfer":
            events.append(Transfer(event_id, "s1", buyer, ts, agent, other))
        elif step == "rating":  # of the agent talked to, or of another one (then often unmatched)
            rated = agent if draw(st.integers(0, 3)) else other
            events.append(Rating(event_id, "s1", buyer, ts, rated, draw(st.integers(1, 5))))
        else:
            sender = "buyer" if step in ("buyer", "dup") else "agent"
            events.append(Message(event_id, "s1", buyer, ts, agent, sender, step == "auto"))
    return events


@st.composite
def orders(draw: st.DrawFn, buyer: str, moments: list[int], serial: list[int]) -> list[Event]:
    out: list[Event] = []
    for number in range(draw(st.integers(0, 3))):
        order_id = f"{buyer}-T{number}"
        moment = draw(st.sampled_from(moments)) + draw(
            st.one_of(st.sampled_from(ORDER_DELTAS), st.integers(-8 * DAY_MS, 4 * DAY_MS))
        )
        amount = draw(st.sampled_from((100, 2500, 19900)))
        steps = draw(
            st.sampled_from(
                (
                    ("created",),
                    ("paid",),
                    ("created", "paid"),
                    ("created", "cancelled"),
                    ("paid", "cancelled"),
                    ("created", "paid", "refunded"),
                    ("paid", "refunded", "refunded"),
                    ("created", "refunded", "paid"),
                )
            )
        )
        for status in steps:
            serial[0] += 1
            value: int | None = amount
            if status == "refunded":  # whole, partial, or more than the rest of the order
                value = draw(st.sampled_from((None, 50, amount // 2 + 1, amount * 2)))
            out.append(Order(f"o{serial[0]}", "s1", buyer, moment, order_id, status, value))  # type: ignore[arg-type]
            moment += draw(st.sampled_from((0, 1, 60_000, 2 * HOUR)))
        if out and draw(st.booleans()):
            out.append(draw(st.sampled_from(out)))  # a redelivered order event
    return out


@st.composite
def scenarios(draw: st.DrawFn, rule: str, judge: str) -> Scenario:
    rules = Rules(
        window=draw(st.sampled_from(("same_day", "next_day", "24h", "3d"))),
        rule=rule,
        judge=judge,
        deduct_refunds=draw(st.booleans()),
        # Hours that cut the FIRST_MOMENTS and the edge gaps, and the all-day clock.
        service_hours=draw(st.sampled_from((None, None, "08:00-23:00", "00:00-10:00", "09:30-24:00"))),
        targets=draw(st.sampled_from(((15, 180), (1,), (), (180, 15, 3600, 1)))),
        after_sale_days=draw(st.sampled_from((7, 1, 0))),
        aftersale_agents=draw(st.sampled_from((frozenset(), frozenset({"s1:c"})))),
        blocked_buyers=draw(st.sampled_from((frozenset(), frozenset({"b3"})))),
        rating_days=draw(st.sampled_from((3, 1))),
    )
    serial = [0]
    events: list[Event] = []
    for buyer in BUYERS[: draw(st.integers(1, len(BUYERS)))]:
        talk = draw(conversation(buyer, serial))
        placed = list(talk)
        for order_event in draw(orders(buyer, [e.ts for e in talk], serial)):
            placed.insert(draw(st.integers(0, len(placed))), order_event)  # orders arrive anywhere
        events = _merge(events, placed, draw)
    batches = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=4)))
    return Scenario(rules, draw(st.sampled_from(NOWS)), tuple(events), batches)


def _merge(left: list[Event], right: list[Event], draw: st.DrawFn) -> list[Event]:
    """Another buyer's events, interleaved at random (each buyer's own order kept)."""
    merged: list[Event] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j == len(right) or (i < len(left) and draw(st.booleans())):
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged


def run_core(scenario: Scenario) -> Ledger:
    ledger = Ledger(settings=parse_settings(scenario.rules.yaml()), now_ms=scenario.now)
    events, sizes, position = list(scenario.events), scenario.batches, 0
    while position < len(events):
        size = sizes[position % len(sizes)]
        ledger.apply_batch(events[position : position + size])
        position += size
    for event in scenario.later:
        ledger.now_ms = event.ts
        ledger.apply_batch([event])
    return ledger


def expected_days(scenario: Scenario) -> dict[tuple[str, str, date], dict[str, int]]:
    """Each day as the reference saw it the last time it was inside the `28d` window: live, a day
    that has left the window is history and changes no more."""
    events = list(scenario.events)
    arrivals = [scenario.now] * len(events)
    moments = [(scenario.now, len(events))]
    for event in scenario.later:
        events.append(event)
        arrivals.append(event.ts)
        moments.append((event.ts, len(events)))
    expected: dict[tuple[str, str, date], dict[str, int]] = {}
    for now, count in moments:
        seen = reference(events[:count], now, scenario.rules, arrivals[:count]).cohorts
        first_day = local_day(now, scenario.rules.zone) - timedelta(days=27)
        expected = {key: row for key, row in expected.items() if key[2] < first_day} | seen
    return expected


def assert_core_matches_reference(scenario: Scenario) -> None:
    ledger = run_core(scenario)
    events = [*scenario.events, *scenario.later]
    arrivals = [scenario.now] * len(scenario.events) + [event.ts for event in scenario.later]
    now = scenario.later[-1].ts if scenario.later else scenario.now
    expected = reference(events, now, scenario.rules, arrivals)
    got = {
        (shop, agent, date.fromordinal(day)): dict(zip(FIELDS, vector, strict=True))
        for (shop, agent, day), vector in ledger.by_day.items()
        if any(vector)
    }
    assert got == expected_days(scenario)
    got_waits = {
        (shop, agent, buyer): start for (shop, agent), w in ledger.waits.items() for buyer, start in w.items()
    }
    assert got_waits == expected.waits
    assert {k: n for k, n in ledger.histogram.items() if n} == expected.histogram
    assert Counter(ledger.outcomes) == Counter(expected.outcomes)


@st.composite
def weeks_later(draw: st.DrawFn, scenario: Scenario, serial: list[int]) -> Scenario:
    """Refunds of the scenario's orders (some redelivered) and buyers writing again, each arriving
    live at its own time, weeks later: 27 to 29 days after the day of one of the scenario's
    events, so that the `28d` window has just left that day (or is about to)."""
    orders_known = sorted({(e.buyer_id, e.order_id) for e in scenario.events if isinstance(e, Order)})
    buyers = sorted({e.buyer_id for e in scenario.events})
    days = sorted({(e.ts - at(0)) // DAY_MS for e in scenario.events})
    moments = draw(
        st.lists(
            st.builds(
                lambda day, later, hour, ms: max(scenario.now, at(hour, day=day + later) + ms),
                st.sampled_from(days),
                st.sampled_from(LATER_DAYS),
                st.sampled_from(LATER_HOURS),
                st.integers(0, HOUR - 1),
            ),
            min_size=1,
            max_size=5,
        )
    )
    later: list[Event] = []
    for ts in sorted(moments):
        serial[0] += 1
        if orders_known and draw(st.integers(0, 3)) > 0:
            buyer, order_id = draw(st.sampled_from(orders_known))
            amount = draw(st.sampled_from((None, 50, 1000, 20000)))
            later.append(Order(f"r{serial[0]}", "s1", buyer, ts, order_id, "refunded", amount))
        else:
            buyer, agent = draw(st.sampled_from(buyers)), draw(st.sampled_from(AGENTS))
            later.append(Message(f"r{serial[0]}", "s1", buyer, ts, agent, "buyer", False))
        if draw(st.integers(0, 4)) == 0:
            later.append(later[-1])  # redelivered
    return replace(scenario, later=tuple(later))


def _m(event_id: str, ts: int, agent: str = "s1:a", sender: str = "buyer", buyer: str = "b1") -> Message:
    return Message(event_id, "s1", buyer, ts, agent, sender, False)  # type: ignore[arg-type]


def _o(event_id: str, ts: int, status: str = "paid", order_id: str = "T1", amount: int = 500) -> Order:
    return Order(event_id, "s1", "b1", ts, order_id, status, amount)  # type: ignore[arg-type]


# One scenario per hand-written mutant (tests/mutate.py, NAMED) that the reference can see.
MUTANT_EXAMPLES = {
    "after_sale_days one day shorter / after-sale edge <= -> <": Scenario(
        Rules(),
        at(12, day=8),
        (_o("o1", at(10, day=1)), _m("m1", at(10, day=8)), _m("m2", at(10, 0, 5, day=8), sender="agent")),
    ),
    "late orders lose the after-sale look-back": Scenario(
        Rules(),
        at(12, day=27),
        (_o("o1", at(10, day=-3)), _m("m1", at(10, day=1)), _m("m2", at(10, 0, 5, day=1), sender="agent")),
    ),
    "24 h wait limit > -> >=": Scenario(
        Rules(), at(12, day=2), (_m("m1", at(9)), _m("m2", at(9, day=1), sender="agent"))
    ),
    "24h attribution edge <= -> <": Scenario(
        Rules(window="24h"),
        at(12, day=2),
        (_m("m1", at(10)), _m("m2", at(10, 0, 5), sender="agent"), _o("o1", at(10, day=1))),
    ),
    "a transfer onto an open wait keeps the receiver's later start": Scenario(
        Rules(),
        at(12),
        (
            _m("m1", at(10), agent="s1:a"),
            _m("m2", at(10, 5), agent="s1:b"),
            Transfer("t1", "s1", "b1", at(10, 6), "s1:a", "s1:b"),
            _m("m3", at(10, 7), agent="s1:b", sender="agent"),
        ),
    ),
    "a reply in the start's millisecond": Scenario(
        Rules(), at(12), (_m("m1", at(10)), _m("m2", at(10), sender="agent"))
    ),
    "rule last picks the first inquiry": Scenario(
        Rules(rule="last"),
        at(12),
        (
            _m("m1", at(9), agent="s1:a"),
            _m("m2", at(9, 0, 5), agent="s1:a", sender="agent"),
            _m("m3", at(10), agent="s1:b"),
            _m("m4", at(10, 0, 5), agent="s1:b", sender="agent"),
            _o("o1", at(11)),
        ),
    ),
}


# The audit's example: A's inquiry on day 0 is credited (created_first), B's on day 1 is not; the
# refund arrives on day 28, when the `28d` window starts on day 1.
WEEKS_LATER_EXAMPLE = Scenario(
    Rules(judge="created_first", deduct_refunds=True),
    at(10, 0, 1, day=1),
    (
        _m("m1", at(23), agent="s1:a"),
        _m("m2", at(23, 1), agent="s1:a", sender="agent"),
        _o("o1", at(23, 30), status="created", amount=10000),
        _m("m3", at(9, day=1), agent="s1:b"),
        _m("m4", at(9, 1, day=1), agent="s1:b", sender="agent"),
        _o("o2", at(10, day=1), amount=10000),
    ),
    later=(_o("o3", at(12, day=28), status="refunded", amount=3000),),
)


def test_the_reference_leaves_a_late_refund_where_the_credit_is() -> None:
    scenario = WEEKS_LATER_EXAMPLE
    events = [*scenario.events, *scenario.later]
    arrivals = [scenario.now] * len(scenario.events) + [at(12, day=28)]
    live = reference(events, at(12, day=28), scenario.rules, arrivals).cohorts
    b_day_1 = live[("s1", "s1:b", local_day(at(9, day=1), scenario.rules.zone))]
    assert (b_day_1["i"], b_day_1["p"], b_day_1["y"], b_day_1["rf"]) == (1, 0, 0, 0)
    assert not any(agent == "s1:a" for _, agent, _ in live)  # A's day is history at day 28
    # Seen all at once on day 28, A's messages are late: B is then the only inquiry, and paid.
    replayed = reference(events, at(12, day=28), scenario.rules).cohorts
    b_replayed = replayed[("s1", "s1:b", local_day(at(9, day=1), scenario.rules.zone))]
    assert (b_replayed["p"], b_replayed["y"], b_replayed["rf"]) == (1, 7000, 3000)
    assert_core_matches_reference(scenario)


@pytest.mark.parametrize("name", sorted(MUTANT_EXAMPLES))
def test_each_audited_mutant_scenario_matches_the_reference(name: str) -> None:
    assert_core_matches_reference(MUTANT_EXAMPLES[name])


@pytest.mark.parametrize("rule", ["last", "first", "all"])
@pytest.mark.parametrize("judge", ["created", "paid", "created_first"])
@settings(max_examples=160)
@given(data=st.data())
def test_core_matches_the_reference_model(rule: str, judge: str, data: st.DataObject) -> None:
    assert_core_matches_reference(data.draw(scenarios(rule, judge)))


@pytest.mark.parametrize("rule", ["last", "first", "all"])
@pytest.mark.parametrize("judge", ["created", "paid", "created_first"])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_core_matches_the_reference_model_weeks_later(rule: str, judge: str, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(rule, judge))
    assert_core_matches_reference(data.draw(weeks_later(scenario, [0])))
