"""A RedisStore stand-in for the leader's duties: the floor's reads and the leader's writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.core.alerts import AlertEvent
from agents.core.projection import WIDTH
from agents.core.status import ChangePoint
from agents.core.windows import WINDOWS


class FakeStore:
    """The RedisStore calls the floor and the leader's duties make, from dictionaries (the epoch
    fence included)."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], list[int]] = {}
        self.waits: dict[tuple[str, str], tuple[int, int | None, str | None]] = {}
        self.hist: dict[tuple[str, str], dict[str, int]] = {}
        self.pruned: set[tuple[str, str]] = set()
        self.alerts: dict[tuple[str, str, str], int] = {}
        self.unsent: list[AlertEvent] = []
        self.epoch = 0
        self.leader_seen: str | None = None  # the heartbeat, as if its TTL never ran out
        self.status: dict[tuple[str, str], list[ChangePoint]] = {}  # in time order

    async def status_points(self, pairs: Sequence[tuple[str, str]], since_ms: int) -> list[list[ChangePoint]]:
        """StatusHistory: the points from `since_ms` on, after the newest one before it."""
        out = []
        for pair in pairs:
            points = self.status.get(pair, [])
            before = [p for p in points if p.ts < since_ms][-1:]
            out.append([*before, *(p for p in points if p.ts >= since_ms)])
        return out

    async def shops(self, now_ms: int) -> list[str]:
        return sorted({shop for shop, _ in self.vectors})

    async def agents(self, shop: str, now_ms: int) -> list[str]:
        return sorted(agent for s, agent in self.vectors if s == shop)

    async def window_sums(self, pairs: Sequence[tuple[str, str]], reads: Any) -> list[dict[str, list[int]]]:
        # The same vector in every window keeps expectations simple.
        return [{w: list(self.vectors.get(pair, [0] * WIDTH)) for w in WINDOWS} for pair in pairs]

    async def waiting(
        self, pairs: Sequence[tuple[str, str]], oldest_allowed_ms: int
    ) -> list[tuple[int, int | None, str | None]]:
        return [self.waits.get(pair, (0, None, None)) for pair in pairs]

    async def histograms(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, int]]:
        return [dict(self.hist.get(pair, {})) for pair in pairs]

    async def prune_waits(self, pairs: Sequence[tuple[str, str]], oldest_allowed_ms: int) -> int:
        self.pruned |= set(pairs)
        return 0

    async def mark_leader(self, identity: str, now_ms: int) -> None:
        self.leader_seen = identity

    async def record_waiting(self, waiting: dict[str, int], now_ms: int) -> None:
        self.waiting_sampled = dict(waiting)

    async def leader(self) -> tuple[str, float] | None:
        return (self.leader_seen, 0.0) if self.leader_seen is not None else None

    async def take_leadership(self) -> int:
        self.epoch += 1
        return self.epoch

    async def firing_alerts(self) -> tuple[int, dict[tuple[str, str, str], int]]:
        return self.epoch, dict(self.alerts)

    async def unsent_alerts(self) -> list[AlertEvent]:
        return list(self.unsent)

    async def store_firing_alerts(
        self,
        epoch: int,
        firing: dict[tuple[str, str, str], int],
        before: Mapping[tuple[str, str, str], int] | None = None,
        unsent: Sequence[AlertEvent] = (),
    ) -> bool:
        # With `before`, RedisStore writes the difference, and falls back to a whole replace when
        # the hash is not `before`: the set stored is `firing` either way.
        if epoch != self.epoch:
            return False
        self.alerts = dict(firing)
        self.unsent = list(unsent)
        return True
