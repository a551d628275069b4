"""The simulated traffic of `kefu-pulse simulate` and `demo`: deterministic for a seed,
every kind of event a real shop sends, and the rate it was asked for."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from streams.commands.demo import DEMO_TRAFFIC
from streams.simulation.traffic import SimRecord, TrafficModel, TrafficShape

WARM_UP_MS = 600_000  # orders trail their consultation by up to ~7 minutes


def sample(shape: TrafficShape, n: int = 60_000, seed: int = 3) -> list[SimRecord]:
    return list(itertools.islice(TrafficModel(shape, seed).records(0), n))


def test_the_same_seed_gives_the_same_traffic_and_another_seed_does_not() -> None:
    shape = TrafficShape(rate=50)
    assert sample(shape, 2000) == sample(shape, 2000)
    assert sample(shape, 2000) != sample(shape, 2000, seed=4)


def test_every_kind_of_event_a_shop_sends_is_in_the_mix() -> None:
    records = sample(TrafficShape(rate=50))
    kinds: Counter[str] = Counter()
    values = Counter(r.value for r in records)
    for record in records:
        try:
            event = json.loads(record.value)
        except json.JSONDecodeError:
            kinds["malformed"] += 1
            continue
        if event["type"] == "message":
            kinds["auto_reply" if event.get("auto_reply") else event["sender"]] += 1
            kinds["ad_sender"] += event["buyer_id"].startswith("ad_spam_")
        elif event["type"] == "transfer":
            kinds["transfer"] += 1
        else:
            kinds[f"order_{event['status']}"] += 1
    kinds["duplicate"] = sum(n - 1 for n in values.values())
    for kind in (
        "buyer",
        "agent",
        "auto_reply",
        "transfer",
        "ad_sender",
        "order_created",
        "order_paid",
        "order_cancelled",
        "duplicate",
        "malformed",
    ):
        assert kinds[kind] > 0, kind
    assert kinds["buyer"] > kinds["agent"]  # bursts of buyer messages, and some never answered


def test_answers_have_a_long_tail_past_the_alert_threshold() -> None:
    waits: dict[tuple[str, str], int] = {}
    answered: list[int] = []
    for record in sample(TrafficShape(rate=50, duplicate_share=0, bad_share=0)):
        event = json.loads(record.value)
        if event["type"] != "message":
            continue
        conversation = (event["buyer_id"], event["agent_id"])
        if event["sender"] == "buyer":
            waits.setdefault(conversation, event["ts"])
        elif not event.get("auto_reply") and conversation in waits:
            answered.append(event["ts"] - waits.pop(conversation))
    over_threshold = sum(wait > 15_000 for wait in answered) / len(answered)
    assert 0.05 < over_threshold < 0.5


@pytest.mark.parametrize("shape", [TrafficShape(rate=50), TrafficShape(rate=120, shops=3), DEMO_TRAFFIC])
def test_the_offered_rate_is_the_requested_one(shape: TrafficShape) -> None:
    stream = TrafficModel(shape, seed=3).records(0)
    records = [r for r in itertools.takewhile(lambda r: r.ts < 2 * WARM_UP_MS, stream) if r.ts > WARM_UP_MS]
    rate = len(records) / ((records[-1].ts - records[0].ts) / 1000)
    assert rate == pytest.approx(shape.rate, rel=0.05)


def test_the_demo_history_reaches_back_to_the_first_of_last_month() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from streams.simulation.simulate import days_since_last_month, history_start_ms

    zone = "Asia/Shanghai"
    for today, days in (("2026-12-02", 31), ("2026-12-31", 60), ("2026-03-01", 28), ("2026-01-15", 45)):
        noon = int(datetime.fromisoformat(f"{today}T12:00:00+08:00").timestamp() * 1000)
        assert days_since_last_month(zone, noon) == days, today
        start = datetime.fromtimestamp(history_start_ms(zone, days, noon) / 1000, ZoneInfo(zone))
        assert (start.day, start.hour, start.minute) == (1, 0, 0), today


@pytest.mark.parametrize("cut", [500, 2_000, 7_777])
def test_stopping_answers_every_buyer_still_waiting_and_nobody_else(cut: int) -> None:
    """A simulator stopped at any moment leaves no wait open (the demo's second run must not open
    on buyers left waiting by the first), judged by the independent reference model."""
    from streams.contract.events import Event
    from streams.simulation.traffic import OpenConversations
    from streams.wire.decoding import EventDecoder
    from tests.reference import Rules, reference

    records = sample(TrafficShape(rate=50, unanswered_share=0.2), cut)
    conversations = OpenConversations()
    for record in records:
        conversations.observe(record)
    now = records[-1].ts + 1
    decoder = EventDecoder()

    def events(batch: list[SimRecord]) -> list[Event]:
        decoded = [decoder.decode(r.value, r.key, now) for r in batch]
        return [e for e in decoded if isinstance(e, Event)]

    waiting_before = reference(events(records), now, Rules()).waits
    answers = conversations.answers(now)
    assert waiting_before and len(answers) == len({(shop, buyer) for shop, _, buyer in waiting_before})
    assert reference(events(records + answers), now, Rules()).waits == {}
    assert conversations.answers(now + 1) == []


def test_a_progress_line_ends_before_the_next_message_off_a_terminal() -> None:
    """The demo's first run printed `history: 204142 eventsrebuild: …` into a log."""
    import io

    from rich.console import Console

    from streams.simulation.simulate import _progress_line

    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with _progress_line(console) as live:
        live.update("history: 5 events")
    console.print("rebuild: done")
    with pytest.raises(KeyboardInterrupt), _progress_line(console) as live:  # the demo's Ctrl-C
        live.update("simulate: 9 events sent")
        raise KeyboardInterrupt
    console.print("answered the 2 buyers still waiting")
    assert out.getvalue().splitlines() == [
        "history: 5 events",
        "rebuild: done",
        "simulate: 9 events sent",
        "answered the 2 buyers still waiting",
    ]


@pytest.mark.parametrize(
    ("zone", "now", "days", "start"),
    [
        # New York springs forward at 02:00 on 2026-03-08: that day starts at 05:00 UTC, the next at 04:00.
        ("America/New_York", "2026-03-09T12:00:00-04:00", 1, "2026-03-08T00:00:00-05:00"),
        ("America/New_York", "2026-03-09T00:30:00-04:00", 0, "2026-03-09T00:00:00-04:00"),
        ("Europe/London", "2026-10-26T00:10:00+00:00", 1, "2026-10-25T00:00:00+01:00"),
        ("Asia/Kathmandu", "2026-01-01T00:00:00+05:45", 31, "2025-12-01T00:00:00+05:45"),
    ],
)
def test_history_starts_at_the_local_midnight_of_the_business_day(
    zone: str, now: str, days: int, start: str
) -> None:
    """The simulator's history starts where the reports' business day starts, across DST days."""
    from datetime import datetime

    from config.calendar import calendar_for
    from streams.simulation.simulate import history_start_ms

    now_ms = int(datetime.fromisoformat(now).timestamp() * 1000)
    started = history_start_ms(zone, days, now_ms)
    assert started == int(datetime.fromisoformat(start).timestamp() * 1000)
    assert calendar_for(zone).day(started) == calendar_for(zone).day(now_ms) - days


def _ids(records: list[SimRecord]) -> tuple[set[str], set[tuple[str, str]]]:
    """The event ids, and the (shop, order id) pairs, of the records that decode."""
    events, orders = set(), set()
    for record in records:
        try:
            event = json.loads(record.value)
        except json.JSONDecodeError:
            continue
        events.add(event["event_id"])
        if event["type"] == "order":
            orders.add((event["shop_id"], event["order_id"]))
    return events, orders


def test_models_with_their_own_id_prefix_share_no_event_or_order_id() -> None:
    """Two models feeding one topic (bench/run's phases): ids are unique per event (events.md),
    so another model's event would be a duplicate, and its order another buyer's order."""
    shape = TrafficShape(shops=2, rate=200)
    first = list(itertools.islice(TrafficModel(shape, 1, id_prefix="a-").records(0), 5000))
    second = list(itertools.islice(TrafficModel(shape, 2, id_prefix="b-").records(0), 5000))
    (first_events, first_orders), (second_events, second_orders) = _ids(first), _ids(second)
    assert first_orders and second_orders
    assert not first_events & second_events
    assert not first_orders & second_orders
    unprefixed, _ = _ids(list(itertools.islice(TrafficModel(shape, 2).records(0), 5000)))
    assert {event.removeprefix("b-") for event in second_events} == unprefixed  # else the same
