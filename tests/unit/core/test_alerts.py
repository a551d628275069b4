from __future__ import annotations

from agents.core.alerts import FIRST_RESPONSE, WAITING, conditions, still_firing, transitions
from streams.contract.floor import ShopFloor
from tests.builders import agent_row, shop_floor


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
