"""The v3 part of the simulated traffic: buyers' ratings (评价) and agents' shifts (在线/挂起/离线),
off unless asked for, so every replay of the older mix stays what it was."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter, defaultdict
from typing import Any

import msgspec
import pytest

from config.calendar import MS_PER_DAY
from streams.commands.demo import DEMO_TRAFFIC
from streams.contract.events import AgentStatus, Rating
from streams.simulation.traffic import (
    LOGIN_SPREAD_MS,
    PATIENCE_MS,
    SHIFT_MS,
    OpenConversations,
    SignedInAgents,
    SimRecord,
    TrafficModel,
    TrafficShape,
)

V3 = TrafficShape(rate=50, rating_share=0.35, agent_shifts=True)
# sha256 of the first 20 000 records of TrafficShape(rate=50), seed 3, from the model before v3.
OLDER_MIX_SHA256 = "866e094f27b869d7c1089f3f56fdc7676a29af1e7120fdac3f49ffbabfa9c1f5"


def sample(shape: TrafficShape, n: int, seed: int = 3) -> list[SimRecord]:
    return list(itertools.islice(TrafficModel(shape, seed).records(0), n))


def until(shape: TrafficShape, end_ms: int, seed: int = 3) -> list[SimRecord]:
    return list(itertools.takewhile(lambda r: r.ts < end_ms, TrafficModel(shape, seed).records(0)))


def decoded(record: SimRecord) -> dict[str, Any] | None:
    try:
        event: dict[str, Any] = json.loads(record.value)
    except ValueError:
        return None  # the model's deliberately broken records
    return event


def digest(records: list[SimRecord]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.ts}|{r.kind}|".encode() + r.key + b"|" + r.value + b"\n")
    return h.hexdigest()


def test_without_asking_the_traffic_is_record_for_record_the_older_mix() -> None:
    assert digest(sample(TrafficShape(rate=50), 20_000)) == OLDER_MIX_SHA256


def test_ratings_and_shifts_add_records_and_change_no_other_event() -> None:
    def by_id(records: list[SimRecord]) -> dict[str, tuple[bytes, str]]:
        out = {}
        for record in records:
            event = decoded(record)
            if event is not None and event["type"] not in ("rating", "agent_status"):
                event.pop("ts")  # the total rate stays the one asked: sessions spread a little
                out[event["event_id"]] = (record.key, json.dumps(event, sort_keys=True))
        return out

    older, v3 = by_id(sample(TrafficShape(rate=50), 20_000)), by_id(sample(V3, 20_000))
    common = older.keys() & v3.keys()
    assert len(common) > 18_000
    assert all(older[event_id] == v3[event_id] for event_id in common)


def test_the_same_seed_gives_the_same_ratings_and_shifts_and_another_seed_does_not() -> None:
    assert sample(V3, 5000) == sample(V3, 5000)
    assert sample(V3, 5000) != sample(V3, 5000, seed=4)


@pytest.mark.parametrize("shape", [V3, TrafficShape(rate=120, shops=3, rating_share=1.0), DEMO_TRAFFIC])
def test_ratings_do_not_change_the_offered_rate(shape: TrafficShape) -> None:
    # Past the warm-up of ratings, which follow their conversation by up to half an hour.
    records = [r for r in until(shape, 3_600_000) if r.ts > 2_400_000]
    rate = len(records) / ((records[-1].ts - records[0].ts) / 1000)
    assert rate == pytest.approx(shape.rate, rel=0.05)


def conversations(records: list[SimRecord]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    by_buyer: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        event = decoded(record)
        if event is not None and record.kind == "messages":
            by_buyer[(event["shop_id"], event["buyer_id"])].append(event)
    return by_buyer


def test_buyers_rate_answered_consultations_after_them_mostly_content() -> None:
    records = until(TrafficShape(rate=50, rating_share=0.35, duplicate_share=0, bad_share=0), 3_600_000)
    scores: Counter[int] = Counter()
    kept_waiting: Counter[bool] = Counter()
    displeased: Counter[bool] = Counter()
    for (_, buyer), events in conversations(records).items():
        ratings = [e for e in events if e["type"] == "rating"]
        if not ratings:
            continue
        assert not buyer.startswith("ad_spam_")
        for rating in ratings:
            record = msgspec.json.encode(rating)
            assert isinstance(msgspec.json.decode(record, type=Rating), Rating)
            replies = [
                e
                for e in events
                if e["type"] == "message" and e["sender"] == "agent" and not e.get("auto_reply")
                if e["agent_id"] == rating["agent_id"] and e["ts"] <= rating["ts"]
            ]
            assert replies, "a rating rates a consultation its agent answered, after the answer"
            start = min(e["ts"] for e in events if e["type"] == "message")
            assert rating["ts"] - start < 3 * MS_PER_DAY  # within the default rating_days
        first = ratings[0]
        scores[first["score"]] += 1
        start = min(e["ts"] for e in events if e["type"] == "message" and e["sender"] == "buyer")
        first_reply = min(
            e["ts"]
            for e in events
            if e["type"] == "message" and e["sender"] == "agent" and not e.get("auto_reply")
        )
        slow = first_reply - start > PATIENCE_MS
        kept_waiting[slow] += 1
        displeased[slow] += first["score"] <= 2
    rated = sum(scores.values())
    assert rated > 300
    assert (scores[5] + scores[4]) / rated > 0.75  # mostly 5 and 4
    assert scores[3] and scores[2] + scores[1]  # a few 3, a few 1 and 2
    # A slow first response makes a bad rating likelier.
    assert displeased[True] / kept_waiting[True] > 2 * displeased[False] / kept_waiting[False]


def test_ratings_ride_on_the_messages_topic_keyed_by_buyer() -> None:
    for record in until(V3, 1_800_000):
        event = decoded(record)
        if event is not None and event["type"] == "rating":
            assert record.kind == "messages"
            assert record.key == f"{event['shop_id']}:{event['buyer_id']}".encode()
            assert record.ts == event["ts"]


def test_agents_log_in_take_breaks_and_log_out_on_the_agents_topic() -> None:
    shape = TrafficShape(shops=2, agents=3, rate=0.5, agent_shifts=True)
    records = until(shape, 2 * MS_PER_DAY)
    changes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        if record.kind != "agents":
            continue
        event = msgspec.json.decode(record.value, type=AgentStatus)
        assert record.key == f"{event.shop_id}:{event.agent_id}".encode()
        assert event.agent_id.startswith(f"{event.shop_id}:")
        assert record.ts == event.ts
        changes[event.agent_id].append((event.ts, event.status))
    assert sorted(changes) == sorted(f"shop{s}:agent{a}" for s in range(2) for a in range(3))
    for agent, timeline in changes.items():
        assert timeline == sorted(timeline), agent
        statuses = [status for _, status in timeline]
        assert timeline[0][0] < LOGIN_SPREAD_MS and statuses[0] == "online", agent  # staffed from the start
        assert "away" in statuses, agent  # breaks (挂起)
        logins = [t for (_, b), (t, a) in itertools.pairwise(timeline) if (b, a) == ("offline", "online")]
        offline = [ts for ts, status in timeline if status == "offline"]
        assert len(offline) == 2 and offline[0] == timeline[0][0] + SHIFT_MS, agent  # a shift a day
        assert logins == [timeline[0][0] + MS_PER_DAY], agent
        for (_, before), (_, after) in itertools.pairwise(timeline):
            assert before != after, agent  # one event per change
            assert (before, after) != ("offline", "away"), agent  # breaks are taken signed in


def test_without_shifts_there_is_no_agents_record() -> None:
    assert all(r.kind != "agents" for r in sample(TrafficShape(rate=50, rating_share=0.35), 20_000))


def test_stopping_logs_out_exactly_the_agents_still_signed_in() -> None:
    records = until(TrafficShape(shops=2, agents=4, rate=1, agent_shifts=True), 2 * 3_600_000)
    signed_in = SignedInAgents()
    latest: dict[tuple[str, str], str] = {}
    for record in records:
        signed_in.observe(record)
        if record.kind == "agents":
            event = json.loads(record.value)
            latest[(event["shop_id"], event["agent_id"])] = event["status"]
    online = {agent for agent, status in latest.items() if status != "offline"}
    assert online and len(signed_in) == len(online)
    logouts = signed_in.logouts(2 * 3_600_000)
    assert {(json.loads(r.value)["shop_id"], json.loads(r.value)["agent_id"]) for r in logouts} == online
    assert all(json.loads(r.value)["status"] == "offline" and r.kind == "agents" for r in logouts)
    assert len({json.loads(r.value)["event_id"] for r in logouts}) == len(logouts)
    assert signed_in.logouts(2 * 3_600_000 + 1) == []


def test_a_rating_neither_opens_nor_closes_a_wait() -> None:
    conversations = OpenConversations()
    rating = {"event_id": "r1", "type": "rating", "shop_id": "s", "buyer_id": "b", "agent_id": "s:a"}
    conversations.observe(
        SimRecord(1, "messages", b"s:b", json.dumps({**rating, "score": 5, "ts": 1}).encode())
    )
    assert len(conversations) == 0
