from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from agents.core.alerts import (
    FIRST_RESPONSE,
    WAITING,
    compared_conditions,
    conditions,
    in_scope,
    next_crossings,
    open_instant_after,
    still_firing,
    transitions,
    wait_over,
)
from agents.core.service_clock import ServiceClock
from config.calendar import calendar_for
from streams.contract.floor import ShopFloor
from tests.builders import agent_row, shop_floor

SHANGHAI = calendar_for("Asia/Shanghai")
DAY_MS = 86_400_000
T0 = 1_764_000_000_000  # 2025-11-25, 00:00 in Shanghai: 2025-11-24T16:00Z


def floor(wait: float, first: float | None, threshold: float = 15) -> list[ShopFloor]:
    return [shop_floor("s1", threshold, [agent_row("s1:a", wait, first)])]


def test_waiting_fires_above_the_threshold_not_at_it() -> None:
    assert conditions(floor(15.0, None))[(WAITING, "s1", "s1:a")][0] is False
    assert conditions(floor(15.001, None))[(WAITING, "s1", "s1:a")][0] is True
    assert conditions(floor(0, 15.5))[(FIRST_RESPONSE, "s1", "s1:a")][0] is True
    assert conditions(floor(0, None))[(FIRST_RESPONSE, "s1", "s1:a")][0] is False


def test_one_firing_then_one_resolved_and_no_repeats() -> None:
    key = (WAITING, "s1", "s1:a")
    fired = transitions({}, conditions(floor(20, None)), ts=1)
    assert [(e.alert, e.state, e.value) for e in fired] == [(WAITING, "firing", 20)]
    assert transitions({key: 1}, conditions(floor(25, None)), ts=2) == []
    resolved = transitions({key: 1}, conditions(floor(0, None)), ts=3)
    assert [(e.alert, e.state) for e in resolved] == [(WAITING, "resolved")]
    assert resolved[0].as_json()["threshold"] == 15


def test_an_episode_keeps_one_alert_id_from_firing_to_resolved() -> None:
    key = (WAITING, "s1", "s1:a")
    [fired] = transitions({}, conditions(floor(20, None)), ts=1000)
    firing = still_firing({}, conditions(floor(20, None)), ts=1000)
    assert firing == {key: 1000}
    assert still_firing(firing, conditions(floor(30, None)), ts=2000) == {key: 1000}  # the start stays
    [resolved] = transitions(firing, conditions(floor(0, None)), ts=3000)
    assert fired.alert_id == resolved.alert_id == "BuyerWaitingTooLong/s1/s1:a/1000"
    assert fired.as_json()["alert_id"] == fired.alert_id
    [again] = transitions({}, conditions(floor(20, None)), ts=4000)  # a new episode, a new id
    assert again.alert_id != fired.alert_id


def test_an_agent_that_disappears_resolves() -> None:
    events = transitions({(WAITING, "s1", "gone"): 1}, {}, ts=5)
    assert [(e.agent_id, e.state) for e in events] == [("gone", "resolved")]


def waiting_floor(clock: ServiceClock, start_ms: int, as_of: int, threshold: float) -> ShopFloor:
    """A shop's floor as FloorReader builds it: one agent, one buyer waiting since `start_ms`."""
    row = msgspec.structs.replace(
        agent_row("s1:a", round(clock.elapsed(start_ms, as_of) / 1000, 3)), waiting_buyers=1
    )
    floor = shop_floor("s1", threshold, [row], in_service_hours=clock.is_open(as_of))
    return msgspec.structs.replace(floor, as_of=as_of)


def fires_at(clock: ServiceClock, start_ms: int, at_ms: int, threshold: float) -> bool:
    """What the round would find at `at_ms`: the floor read then, compared by `conditions`."""
    return conditions([waiting_floor(clock, start_ms, at_ms, threshold)])[(WAITING, "s1", "s1:a")][0]


def test_the_crossing_is_one_ms_past_the_threshold_after_the_wait_started() -> None:
    clock = ServiceClock(SHANGHAI)
    floor = waiting_floor(clock, T0, T0 + 4_000, 15)
    assert next_crossings([floor], lambda _: clock, {}) == {"s1": T0 + 15_001}
    assert not fires_at(clock, T0, T0 + 15_000, 15) and fires_at(clock, T0, T0 + 15_001, 15)


def test_no_crossing_for_an_agent_already_firing_or_with_nobody_waiting() -> None:
    clock = ServiceClock(SHANGHAI)
    floor = waiting_floor(clock, T0, T0 + 4_000, 15)
    assert next_crossings([floor], lambda _: clock, {(WAITING, "s1", "s1:a"): T0}) == {}
    idle = msgspec.structs.replace(floor, agents=[agent_row("s1:a")])
    assert next_crossings([idle], lambda _: clock, {}) == {}


def test_a_wait_that_started_before_opening_crosses_the_threshold_after_it() -> None:
    clock = ServiceClock(SHANGHAI, 8 * 60, 23 * 60)  # 08:00-23:00 in Shanghai
    opening = T0 + 8 * 3_600_000
    floor = waiting_floor(clock, opening - 60_000, opening - 30_000, 15)  # written at 07:59
    assert next_crossings([floor], lambda _: clock, {}) == {"s1": opening + 15_001}


def test_a_wait_past_the_threshold_at_closing_fires_again_at_opening() -> None:
    clock = ServiceClock(SHANGHAI, 8 * 60, 23 * 60)
    closing = T0 + 23 * 3_600_000
    floor = waiting_floor(clock, closing - 20_000, closing + 60_000, 15)  # after closing: not firing
    assert next_crossings([floor], lambda _: clock, {}) == {"s1": T0 + DAY_MS + 8 * 3_600_000}


def test_a_shop_that_never_opens_has_no_crossing() -> None:
    assert open_instant_after(ServiceClock(SHANGHAI, 8 * 60, 8 * 60), T0, 1) is None


@given(
    hours=st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda h: h[0] < h[1]),
    start=st.integers(0, 3 * DAY_MS),
    seen_after=st.integers(0, 2 * DAY_MS),
    threshold=st.sampled_from([1, 2.5, 15, 60, 0.001]),
)
def test_the_crossing_is_the_first_instant_the_round_would_fire(
    hours: tuple[int, int], start: int, seen_after: int, threshold: float
) -> None:
    """Planned from any floor not firing yet, the crossing is when a floor read then fires, and a
    floor read one ms before does not: a check there is never early, and never a ms late."""
    clock = ServiceClock(SHANGHAI, *hours)
    start_ms, as_of = T0 + start, T0 + start + seen_after
    floor = waiting_floor(clock, start_ms, as_of, threshold)
    crossing = next_crossings([floor], lambda _: clock, {})["s1"]
    assert crossing >= as_of
    assert fires_at(clock, start_ms, crossing, threshold)
    assert crossing == as_of or not fires_at(clock, start_ms, crossing - 1, threshold)


@given(
    hours=st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda h: h[0] < h[1]),
    start=st.integers(0, 2 * DAY_MS),
    waited=st.integers(0, DAY_MS),
    threshold=st.sampled_from([1, 2.5, 15, 60, 0.001]),
)
def test_the_watch_judges_a_wait_as_the_floor_does(
    hours: tuple[int, int], start: int, waited: int, threshold: float
) -> None:
    clock = ServiceClock(SHANGHAI, *hours)
    start_ms = T0 + start
    now_ms = start_ms + waited
    assert wait_over(clock, start_ms, now_ms, threshold) == fires_at(clock, start_ms, now_ms, threshold)
    assert not wait_over(clock, None, now_ms, threshold)


def test_a_check_compares_its_shops_and_leaves_the_others_firing() -> None:
    firing = {(WAITING, "s1", "s1:a"): 1, (FIRST_RESPONSE, "s2", "s2:a"): 2}
    assert in_scope(firing, {"s1"}) == ({(WAITING, "s1", "s1:a"): 1}, {(FIRST_RESPONSE, "s2", "s2:a"): 2})


def _transitions_by_sorting_everything(
    before: dict[tuple[str, str, str], int],
    now: dict[tuple[str, str, str], tuple[bool, float, float]],
    ts: int,
) -> list[tuple[str, str, str, str, float, str]]:
    """The events as first written: every key sorted, each compared (the reference)."""
    events = []
    for key, (firing, value, _) in sorted(now.items()):
        if firing and key not in before:
            events.append((*key, "firing", value, f"{key[0]}/{key[1]}/{key[2]}/{ts}"))
        elif not firing and key in before:
            events.append((*key, "resolved", value, f"{key[0]}/{key[1]}/{key[2]}/{before[key]}"))
    for key in sorted(before.keys() - now.keys()):
        events.append((*key, "resolved", 0.0, f"{key[0]}/{key[1]}/{key[2]}/{before[key]}"))
    return events


_keys = st.tuples(
    st.sampled_from([WAITING, FIRST_RESPONSE]),
    st.sampled_from(["s1", "s2", "s10"]),
    st.text("ab:", max_size=3),
)


@given(
    st.dictionaries(_keys, st.integers(0, 10**6)),
    st.dictionaries(_keys, st.tuples(st.booleans(), st.floats(0, 100), st.just(15.0))),
)
def test_the_events_are_those_of_comparing_every_key_in_key_order(
    before: dict[tuple[str, str, str], int], now: dict[tuple[str, str, str], tuple[bool, float, float]]
) -> None:
    got = [
        (e.alert, e.shop_id, e.agent_id, e.state, e.value, e.alert_id) for e in transitions(before, now, 7)
    ]
    assert got == _transitions_by_sorting_everything(before, now, 7)


_agents = st.sampled_from(["s1:a", "s1:b", "s2:a", "s2:c"])
_rows = st.builds(
    agent_row,
    _agents,
    st.sampled_from([0.0, 14.999, 15.0, 15.001, 40.0]),
    st.sampled_from([None, 0.0, 15.0, 15.5, 90.0]),
)
_floors = st.lists(
    st.builds(
        lambda shop, rows, open_now: shop_floor(
            shop, 15.0, list({row.agent: row for row in rows}.values()), in_service_hours=open_now
        ),
        st.sampled_from(["s1", "s2"]),
        st.lists(_rows, max_size=4),
        st.booleans(),
    ),
    max_size=2,
    unique_by=lambda floor: floor.shop,
)
_firing = st.dictionaries(
    st.tuples(st.sampled_from([WAITING, FIRST_RESPONSE]), st.sampled_from(["s1", "s2"]), _agents),
    st.integers(0, 10),
)


@given(_floors, _firing)
def test_the_leaders_narrowed_conditions_give_the_events_and_set_of_every_row(
    floors: list[ShopFloor], before: dict[tuple[str, str, str], int]
) -> None:
    """compared_conditions leaves out the rows that neither fire nor fired: the events, their
    values and the firing set after must be those of judging every row (`conditions`)."""
    every, narrowed = conditions(floors), compared_conditions(floors, before)
    assert transitions(before, narrowed, 9) == transitions(before, every, 9)
    assert still_firing(before, narrowed, 9) == still_firing(before, every, 9)
