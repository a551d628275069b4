"""The agent status processor (kefu.agents, v3) on the in-memory store: skipping what was
applied, dead letters with their reason, counting, and a crash before the offsets are raised."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import TimeoutError as RedisTimeoutError

from agents.core.policy import PolicyBook
from agents.core.status import ChangePoint
from agents.exposure.metrics import WorkerMetrics
from agents.processing.status import StatusProcessor
from agents.store.memory import MemoryStatusStore
from agents.store.protocols import AgentStatusWrite
from config.settings import Settings
from streams.wire.deadletter import DeadLetter
from streams.wire.records import Record
from streams.wire.status_decoding import StatusDecoder

TOPIC = "c.agents"
NOW = 1_764_000_000_000 + 10 * 3_600_000  # 10:00 on 2025-11-25 in Shanghai
MIN = 60_000


def status(event_id: str, ts: int, state: str, agent: str = "s1:a", shop: str = "s1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "agent_status",
        "shop_id": shop,
        "agent_id": agent,
        "status": state,
        "ts": ts,
    }


def record(
    offset: int, event: dict[str, Any] | bytes, key: bytes | None = None, partition: int = 0
) -> Record:
    if isinstance(event, dict):
        key = key if key is not None else f"{event['shop_id']}:{event['agent_id']}".encode()
        return Record(TOPIC, partition, offset, key, json.dumps(event).encode())
    return Record(TOPIC, partition, offset, key, event)


class CrashBeforeRaise(Exception):
    pass


class Store(MemoryStatusStore):
    def __init__(self) -> None:
        super().__init__()
        self.crash_on_raise = False

    async def raise_offsets(
        self, topic: str, offsets: Mapping[int, int], raise_id: str = ""
    ) -> dict[int, int]:
        if self.crash_on_raise:
            raise CrashBeforeRaise("the worker died after applying, before raising the offsets")
        return await super().raise_offsets(topic, offsets, raise_id)


def processor(
    store: MemoryStatusStore, letters: list[DeadLetter] | None = None
) -> tuple[StatusProcessor, CollectorRegistry]:
    registry = CollectorRegistry()
    sent = letters if letters is not None else []

    async def dead_letters(batch: Sequence[DeadLetter]) -> None:
        sent.extend(batch)

    worker = StatusProcessor(
        store,
        PolicyBook(Settings()),
        StatusDecoder(max_record_bytes=1024),
        dead_letters,
        WorkerMetrics.create(registry),
        clock=lambda: NOW,
    )
    return worker, registry


def points(store: MemoryStatusStore, agent: str = "s1:a") -> list[ChangePoint]:
    return asyncio.run(store.status_points([("s1", agent)], 0))[0]


def events(registry: CollectorRegistry, outcome: str) -> float:
    return registry.get_sample_value("kefu_events_total", {"topic": TOPIC, "outcome": outcome}) or 0.0


def test_events_become_points_and_the_offset_moves_past_them() -> None:
    store = Store()
    worker, registry = processor(store)
    batch = [
        record(0, status("e1", NOW - 30 * MIN, "online")),
        record(1, status("e2", NOW - 10 * MIN, "away")),
    ]
    asyncio.run(worker.process(batch))
    assert points(store) == [ChangePoint(NOW - 30 * MIN, "online"), ChangePoint(NOW - 10 * MIN, "away")]
    assert asyncio.run(store.applied_offsets([(TOPIC, 0)])) == [1]
    assert events(registry, "applied") == 2
    assert store.seen == {("s1", "s1:a"): NOW}  # the agent is listed on the floor and in reports


def test_a_late_event_is_sorted_in_and_the_status_stays_the_latest() -> None:
    store = Store()
    worker, _ = processor(store)
    asyncio.run(
        worker.process(
            [
                record(0, status("on", NOW - 3 * 60 * MIN, "online")),
                record(1, status("off", NOW - 60 * MIN, "offline")),
            ]
        )
    )
    asyncio.run(worker.process([record(2, status("away", NOW - 2 * 60 * MIN, "away"))]))
    assert [p.status for p in points(store)] == ["online", "away", "offline"]


def test_records_already_applied_are_skipped() -> None:
    store = Store()
    worker, registry = processor(store)
    batch = [record(0, status("e1", NOW - MIN, "online"))]
    asyncio.run(worker.process(batch))
    report = asyncio.run(worker.process(batch))
    assert report.skipped_already_applied == 1 and report.counted == 0
    assert events(registry, "applied") == 1


def test_a_duplicate_event_id_in_another_record_is_counted_and_changes_nothing() -> None:
    store = Store()
    worker, registry = processor(store)
    asyncio.run(worker.process([record(0, status("e1", NOW - MIN, "online"))]))
    asyncio.run(worker.process([record(1, status("e1", NOW - MIN, "offline"))]))
    assert points(store) == [ChangePoint(NOW - MIN, "online")]
    assert events(registry, "duplicate") == 1


def test_a_crash_before_the_offsets_are_raised_redelivers_and_changes_no_point() -> None:
    store = Store()
    worker, _ = processor(store)
    batch = [
        record(0, status("e1", NOW - 20 * MIN, "online")),
        record(1, status("e2", NOW - 5 * MIN, "away")),
    ]
    store.crash_on_raise = True
    with pytest.raises(CrashBeforeRaise):
        asyncio.run(worker.process(batch))
    after_crash = points(store)
    assert asyncio.run(store.applied_offsets([(TOPIC, 0)])) == [-1]  # Kafka redelivers both
    store.crash_on_raise = False
    restarted, registry = processor(store)
    asyncio.run(restarted.process(batch))
    assert (
        points(store)
        == after_crash
        == [ChangePoint(NOW - 20 * MIN, "online"), ChangePoint(NOW - 5 * MIN, "away")]
    )
    assert events(registry, "applied") == 2 and events(registry, "duplicate") == 0


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (record(0, status("e1", NOW, "busy")), "unknown_status"),
        (record(0, status("e1", NOW, "online"), key=b"s1:someone-else"), "bad_key"),
        (record(0, b'{"event_id": "e1"', key=b"s1:s1:a"), "invalid_json"),
        (
            record(
                0, {k: v for k, v in status("e1", NOW, "online").items() if k != "agent_id"}, key=b"s1:s1:a"
            ),
            "missing_field",
        ),
        (record(0, status("e1", NOW + 10 * MIN, "online")), "future_ts"),
        (record(0, status("e1" * 600, NOW, "online")), "too_large"),
        (Record(TOPIC, 0, 0, None, json.dumps(status("e1", NOW, "online")).encode()), "bad_key"),
    ],
)
def test_a_bad_event_is_dead_lettered_with_its_reason_and_passed(item: Record, reason: str) -> None:
    store, letters = Store(), []
    worker, registry = processor(store, letters)
    asyncio.run(worker.process([item, record(1, status("ok", NOW - MIN, "online"))]))
    assert [(letter.reason, letter.topic, letter.offset) for letter in letters] == [(reason, TOPIC, 0)]
    assert registry.get_sample_value("kefu_events_rejected_total", {"reason": reason}) == 1
    assert events(registry, "rejected") == 1 and events(registry, "applied") == 1
    assert points(store) == [ChangePoint(NOW - MIN, "online")]
    assert asyncio.run(store.applied_offsets([(TOPIC, 0)])) == [1]


# --- counted once, whatever Redis and the group do (issue: numbers a shop can stake pay on) ---

BATCH = [
    record(0, status("e1", NOW - 20 * MIN, "online")),
    record(1, status("e2", NOW - 5 * MIN, "away")),
    record(2, b"{not json", key=b"s1:s1:a"),
]


def rejected(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("kefu_events_rejected_total", {"reason": "invalid_json"}) or 0.0


class LostRaiseReply(MemoryStatusStore):
    """The raise lands, and its reply is lost once."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = 1

    async def raise_offsets(
        self, topic: str, offsets: Mapping[int, int], raise_id: str = ""
    ) -> dict[int, int]:
        found = await super().raise_offsets(topic, offsets, raise_id)
        if self.lose:
            self.lose -= 1
            raise RedisTimeoutError("Timeout reading from socket")
        return found


def test_a_raise_whose_reply_is_lost_is_counted_once() -> None:
    """The retry found the offset raised and skipped every record as applied: the batch was
    counted nowhere (its rejected record neither)."""
    letters: list[DeadLetter] = []
    worker, registry = processor(LostRaiseReply(), letters)
    asyncio.run(worker.process_until_done(BATCH))
    assert (events(registry, "applied"), events(registry, "rejected"), rejected(registry)) == (2, 1, 1)
    assert len(letters) == 1


class LostApplyReply(MemoryStatusStore):
    """apply_status lands, and its reply is lost once."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = 1

    async def apply_status(self, writes: Sequence[AgentStatusWrite], seen_ms: int) -> list[list[str]]:
        outcomes = await super().apply_status(writes, seen_ms)
        if self.lose:
            self.lose -= 1
            raise RedisTimeoutError("Timeout reading from socket")
        return outcomes


def test_a_retry_in_the_same_process_sends_no_dead_letter_twice() -> None:
    letters: list[DeadLetter] = []
    worker, registry = processor(LostApplyReply(), letters)
    asyncio.run(worker.process_until_done(BATCH))
    assert [(letter.offset, letter.reason) for letter in letters] == [(2, "invalid_json")]
    assert (events(registry, "applied"), events(registry, "rejected")) == (2, 1)


class StalledApply(MemoryStatusStore):
    """The first apply waits (its worker's Redis went away) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = asyncio.Event()

    async def apply_status(self, writes: Sequence[AgentStatusWrite], seen_ms: int) -> list[list[str]]:
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        return await super().apply_status(writes, seen_ms)


def test_two_workers_that_both_held_a_partition_across_a_rebalance_count_its_records_once() -> None:
    """The old owner stalls in a Redis outage past the rebalance, the new owner applies the
    batch, then the old one finishes it: both counted every record (2 applied, 1 rejected each)."""

    async def race() -> tuple[CollectorRegistry, CollectorRegistry]:
        store = StalledApply()
        gate = store.gate
        old, old_registry = processor(store)
        new, new_registry = processor(store)
        stalled = asyncio.create_task(old.process_until_done(BATCH))
        await asyncio.sleep(0.01)
        await new.process_until_done(BATCH)
        assert gate is not None
        gate.set()
        await stalled
        return old_registry, new_registry

    registries = asyncio.run(race())
    assert sum(events(r, "applied") for r in registries) == 2
    assert sum(events(r, "rejected") for r in registries) == 1
    assert sum(rejected(r) for r in registries) == 1


class SecondOutage(LostRaiseReply):
    """A raise lands and its reply is lost; then, on the retry, a later step fails once: the
    offsets' read (`fresh`), or the second partition's raise-log look-up (`settle`)."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where, self.lookups = where, 0

    async def raised(self, topic: str, partition: int, raise_id: str) -> int | None:
        self.lookups += 1
        if self.where == "settle" and self.lookups == 2:
            raise RedisTimeoutError("Timeout reading from socket")
        return await super().raised(topic, partition, raise_id)

    async def applied_offsets(self, topic_partitions: Sequence[tuple[str, int]]) -> list[int]:
        if self.where == "fresh" and self.lookups == 2 and not self.lose:
            self.where = ""
            raise RedisTimeoutError("Timeout reading from socket")
        return await super().applied_offsets(topic_partitions)


@pytest.mark.parametrize("where", ["fresh", "settle"])
def test_a_landed_raise_settled_by_an_attempt_that_then_fails_is_still_counted_once(where: str) -> None:
    """The settled counts lived in the attempt: when a later step of it failed, the next
    attempt found the offsets raised and counted those records nowhere."""
    store = SecondOutage(where)
    worker, registry = processor(store)
    two_partitions = [
        record(0, status("e1", NOW - MIN, "online"), partition=0),
        record(0, status("e2", NOW - MIN, "away", agent="s1:b"), partition=1),
    ]
    report = asyncio.run(worker.process_until_done(two_partitions))
    assert events(registry, "applied") == 2 and report.skipped_already_applied == 0
