"""The core against the independent reference model (tests/reference.py), on random scenarios
whose times are built from the edges of metrics.md, so that boundaries are hit by design.

Messages keep each buyer's order (events.md); orders arrive anywhere among them; events are
applied in random batch sizes; duplicates, blocked buyers and late events are mixed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.events import Event, Message, Order, Transfer
from tests.builders import Ledger, at
from tests.builders import settings as parse_settings
from tests.reference import DAY_MS, FIELDS, Rules, reference

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
FIRST_MOMENTS = (at(0) - 1, at(0), at(0, 0, 0.001), at(10), at(20), at(23, 59, 50), at(0, day=1) - 1)
NOWS = (at(12, day=3), at(12, day=27), at(0, day=28))


@dataclass(frozen=True)
class Scenario:
    rules: Rules
    now: int
    events: tuple[Event, ...]
    batches: tuple[int, ...] = (1,)


@st.composite
def conversation(draw: st.DrawFn, buyer: str, serial: list[int]) -> list[Event]:
    ts = draw(st.sampled_from(FIRST_MOMENTS)) + draw(st.sampled_from((0, 0, DAY_MS, 2 * DAY_MS)))
    events: list[Event] = []
    current = draw(st.sampled_from(AGENTS))
    for _ in range(draw(st.integers(1, 12))):
        step = draw(
            st.sampled_from(("buyer", "buyer", "agent", "agent", "auto", "transfer", "dup", "midnight"))
        )
        if step == "midnight":
            midnight = ts - (ts - at(0)) % DAY_MS + DAY_MS
            ts = max(ts, midnight + draw(st.sampled_from((-1, 0, 1))))
            step = "buyer"
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
    return ledger


def assert_core_matches_reference(scenario: Scenario) -> None:
    ledger = run_core(scenario)
    expected = reference(list(scenario.events), scenario.now, scenario.rules)
    got = {
        (shop, agent, date.fromordinal(day)): dict(zip(FIELDS, vector, strict=True))
        for (shop, agent, day), vector in ledger.by_day.items()
        if any(vector)
    }
    assert got == expected.cohorts
    got_waits = {
        (shop, agent, buyer): start for (shop, agent), w in ledger.waits.items() for buyer, start in w.items()
    }
    assert got_waits == expected.waits
    assert {k: n for k, n in ledger.histogram.items() if n} == expected.histogram
    assert Counter(ledger.outcomes) == Counter(expected.outcomes)


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


@pytest.mark.parametrize("name", sorted(MUTANT_EXAMPLES))
def test_each_audited_mutant_scenario_matches_the_reference(name: str) -> None:
    assert_core_matches_reference(MUTANT_EXAMPLES[name])


@pytest.mark.parametrize("rule", ["last", "first", "all"])
@pytest.mark.parametrize("judge", ["created", "paid", "created_first"])
@settings(max_examples=160)
@given(data=st.data())
def test_core_matches_the_reference_model(rule: str, judge: str, data: st.DataObject) -> None:
    assert_core_matches_reference(data.draw(scenarios(rule, judge)))
