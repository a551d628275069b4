"""The leader round reads its agents in slices, a few sent while one is folded in
(floor.py `_read_ahead`): every agent folded once, in order; Redis really has the next slices
while one is folded; a failed slice raises, leaves no read running behind it, and nothing kept
of the agents it did not fold in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest

from agents.exposure import floor
from agents.store.floor_reads import NO_MINUTES_HELD, MinutesHeld

RANGES: dict[str, tuple[int, int]] = {}


class Folded:
    """A shop's state as the round folds reads into it: what came, and what was in flight then."""

    def __init__(self, store: SlowReads) -> None:
        self.store = store
        self.updates: list[tuple[str, object]] = []
        self.agents: dict[str, object] = {}  # what is kept of each agent (FloorCache)
        self.sent_while_folding: list[int] = []  # slices sent to Redis by then

    def update(self, agent: str, read: object, touched: bool, ranges: dict[str, tuple[int, int]]) -> None:
        self.updates.append((agent, read))
        self.agents[agent] = read
        self.sent_while_folding.append(len(self.store.started))


class SlowReads:
    """floor_reads that takes a few loop turns, as a pipeline to Redis does; `fail_at` raises."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.in_flight = 0
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.failed: set[str] = set()

    async def floor_reads(
        self,
        pairs: Sequence[tuple[str, str]],
        plan: bytes | Sequence[bytes],
        tokens: Sequence[str],
        held_minutes: Sequence[MinutesHeld] | None = None,
    ) -> Iterator[object]:
        first, number = pairs[0][1], len(self.started)
        self.started.append(first)
        self.in_flight += 1
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if number == self.fail_at:
                self.failed.add(first)
                raise ConnectionError("Redis went away")
            self.finished.append(first)
            return iter([f"read of {agent}" for _, agent in pairs])
        except asyncio.CancelledError:
            self.cancelled.append(first)
            raise
        finally:
            self.in_flight -= 1

    async def floor_changes(self, shops: Sequence[str], known: Sequence[tuple[int, str]]) -> list[Any]:
        raise NotImplementedError


def calls_of(state: Folded, count: int) -> tuple[list[tuple[str, str]], list[Any]]:
    agents = [f"s1:a{i:03d}" for i in range(count)]
    pairs = [("s1", agent) for agent in agents]
    return pairs, [(state, agent, False, b"plan", "", NO_MINUTES_HELD) for agent in agents]


def read_ahead(
    store: SlowReads,
    pairs: list[tuple[str, str]],
    calls: list[Any],
    told: list[tuple[int, int]] | None = None,
) -> None:
    """The round's read, and then, before the loop closes (asyncio.run cancels what is left),
    nothing of it may still run. `told`: each (calls folded, slices sent) as `folded_to` hears."""

    def folded_to(folded: int) -> None:
        if told is not None:
            told.append((folded, len(store.started)))

    async def round_() -> None:
        try:
            await floor._read_ahead(cast(floor.AgentReadsStore, store), pairs, calls, RANGES, folded_to)
        finally:
            assert store.in_flight == 0, "a read was left running"
            assert set(store.started) == set(store.finished) | set(store.cancelled) | store.failed

    asyncio.run(round_())


def test_every_agent_is_folded_once_in_order_while_the_next_slices_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(floor, "LEADER_READ_SLICE", 4)
    monkeypatch.setattr(floor, "READS_AHEAD", 3)
    store = SlowReads()
    state = Folded(store)
    pairs, calls = calls_of(state, 23)  # 6 slices, the last one short
    told: list[tuple[int, int]] = []
    read_ahead(store, pairs, calls, told)
    # The caller makes what it can first (the floors of shops with nothing to read) while the
    # first READS_AHEAD slices are out, then after each slice, with the next ones out.
    assert told == [(0, 3), (4, 4), (8, 5), (12, 6), (16, 6), (20, 6), (23, 6)]
    assert state.updates == [(agent, f"read of {agent}") for _, agent in pairs]
    assert store.started == [agent for _, agent in pairs[::4]]
    # Folding slice n (from 0), the READS_AHEAD after it were sent already: one read at a time
    # would have sent n + 1 of them.
    assert state.sent_while_folding[::4] == [4, 5, 6, 6, 6, 6]
    assert store.in_flight == 0


def test_a_failed_slice_raises_and_leaves_no_read_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(floor, "LEADER_READ_SLICE", 4)
    monkeypatch.setattr(floor, "READS_AHEAD", 3)
    store = SlowReads(fail_at=1)
    state = Folded(store)
    pairs, calls = calls_of(state, 40)
    state.agents = {agent: "kept from the last round" for _, agent in pairs}
    with pytest.raises(ConnectionError, match="went away"):
        read_ahead(store, pairs, calls)
    assert [agent for agent, _ in state.updates] == [agent for _, agent in pairs[:4]]  # the first slice only
    assert store.failed == {pairs[4][1]}
    # The round's look spent their touches: those not folded in are read whole next round.
    assert state.agents == {agent: f"read of {agent}" for _, agent in pairs[:4]}
    assert len(store.started) < 10  # nothing was sent past the slices in flight


def test_no_agents_no_reads() -> None:
    store = SlowReads()
    read_ahead(store, [], [])
    assert store.started == []
