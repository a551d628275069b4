"""The StatusStore contract (agent status, v3), one function per clause, run against every
backend: in memory by the unit tests, on Redis by the integration tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agents.core.status import ChangePoint
from agents.store.protocols import AgentStatusWrite, StatusChange, StatusStore

TOPIC = "c.agents"
T0 = 1_764_000_000_000
MIN = 60_000
KEPT_FROM = T0 - 10 * MIN
TTL = 86_400_000
PAIR = ("s1", "s1:a")


def write(
    *changes: StatusChange, kept_from: int = KEPT_FROM, pair: tuple[str, str] = PAIR
) -> AgentStatusWrite:
    return AgentStatusWrite(pair[0], pair[1], list(changes), kept_from, TTL)


def change(event_id: str, minute: int, status: str, offset: int, partition: int = 0) -> StatusChange:
    return StatusChange(event_id, T0 + minute * MIN, status, partition, offset)


def at(minute: int, status: str) -> ChangePoint:
    return ChangePoint(T0 + minute * MIN, status)


async def unknown_agents_have_no_points_and_partitions_no_offsets(store: StatusStore) -> None:
    assert await store.status_points([PAIR], T0) == [[]]
    assert await store.applied_offsets([(TOPIC, 0), (TOPIC, 3)]) == [-1, -1]


async def points_come_back_in_time_order_whatever_the_order_applied(store: StatusStore) -> None:
    assert await store.apply_status(
        [write(change("e1", 0, "online", 1), change("e3", 30, "offline", 2))], T0
    ) == [["applied", "applied"]]
    assert await store.apply_status([write(change("e2", 10, "away", 3))], T0) == [["applied"]]  # late
    assert await store.status_points([PAIR], T0 - MIN) == [
        [at(0, "online"), at(10, "away"), at(30, "offline")]
    ]


async def a_read_starts_with_the_newest_point_before_it(store: StatusStore) -> None:
    await store.apply_status(
        [write(*(change(f"e{m}", m, "online" if m % 2 else "away", m) for m in range(5)))], T0
    )
    assert await store.status_points([PAIR], T0 + 3 * MIN) == [
        [at(2, "away"), at(3, "online"), at(4, "away")]
    ]


async def a_duplicate_event_id_changes_nothing(store: StatusStore) -> None:
    await store.apply_status([write(change("e1", 0, "online", 1))], T0)
    outcomes = await store.apply_status([write(change("e1", 5, "offline", 7))], T0)  # re-sent, edited
    assert outcomes == [["duplicate"]]
    assert await store.status_points([PAIR], T0 - MIN) == [[at(0, "online")]]


async def the_same_record_applied_again_is_applied_and_changes_nothing(store: StatusStore) -> None:
    batch = [write(change("e1", 0, "online", 1), change("e2", 3, "away", 2))]
    assert await store.apply_status(batch, T0) == [["applied", "applied"]]
    assert await store.apply_status(batch, T0) == [["applied", "applied"]]  # a retry, a redelivery
    assert await store.status_points([PAIR], T0 - MIN) == [[at(0, "online"), at(3, "away")]]


async def equal_times_keep_kafka_order(store: StatusStore) -> None:
    await store.apply_status([write(change("late-offset", 0, "online", 9))], T0)
    await store.apply_status([write(change("early-offset", 0, "offline", 8))], T0)
    assert await store.status_points([PAIR], T0) == [[at(0, "offline"), at(0, "online")]]


async def history_before_the_kept_days_keeps_only_its_newest_point(store: StatusStore) -> None:
    old = [change("o1", -30, "online", 1), change("o2", -20, "away", 2)]
    assert await store.apply_status([write(*old, change("n1", 0, "offline", 3))], T0) == [
        ["late", "applied", "applied"]
    ]
    assert await store.status_points([PAIR], T0 - 60 * MIN) == [[at(-20, "away"), at(0, "offline")]]
    # Older than the kept point: dropped at once, and counted late.
    assert await store.apply_status([write(change("o0", -40, "online", 4))], T0) == [["late"]]
    assert await store.status_points([PAIR], T0 - 60 * MIN) == [[at(-20, "away"), at(0, "offline")]]


async def offsets_are_raised_never_lowered(store: StatusStore) -> None:
    await store.raise_offsets(TOPIC, {0: 10, 3: 4})
    await store.raise_offsets(TOPIC, {0: 7, 3: 5})  # a slower worker finishing an older batch
    assert await store.applied_offsets([(TOPIC, 0), (TOPIC, 3)]) == [10, 5]


async def each_raise_says_where_it_found_the_offset_and_its_log_remembers_it(store: StatusStore) -> None:
    """The records above the offset a raise found are its to count; a raise whose reply was
    lost finds itself in the log, with that offset. One that raised nothing is not there."""
    assert await store.raise_offsets(TOPIC, {1: 10}, "w1:1") == {1: -1}
    assert await store.raise_offsets(TOPIC, {1: 7}, "w2:1") == {1: 10}  # behind: raises nothing
    assert await store.raise_offsets(TOPIC, {1: 12}, "w2:2") == {1: 10}
    assert [await store.raised(TOPIC, 1, r) for r in ("w1:1", "w2:1", "w2:2", "w9:9")] == [-1, None, 10, None]
    assert await store.raised(TOPIC, 2, "w1:1") is None  # another partition's log


async def agents_are_kept_apart(store: StatusStore) -> None:
    other = ("s1", "s1:b")
    await store.apply_status(
        [write(change("e1", 0, "online", 1)), write(change("e1", 1, "away", 2), pair=other)], T0
    )
    assert await store.status_points([PAIR, other], T0 - MIN) == [[at(0, "online")], [at(1, "away")]]


CLAUSES: list[Callable[[StatusStore], Awaitable[None]]] = [
    unknown_agents_have_no_points_and_partitions_no_offsets,
    points_come_back_in_time_order_whatever_the_order_applied,
    a_read_starts_with_the_newest_point_before_it,
    a_duplicate_event_id_changes_nothing,
    the_same_record_applied_again_is_applied_and_changes_nothing,
    equal_times_keep_kafka_order,
    history_before_the_kept_days_keeps_only_its_newest_point,
    offsets_are_raised_never_lowered,
    each_raise_says_where_it_found_the_offset_and_its_log_remembers_it,
    agents_are_kept_apart,
]
