"""The floor-display data (interfaces.md `/api/v1/floor`), read from Redis for one shop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import SHOP_LEVEL, WIDTH, Vector
from agents.core.status import ChangePoint, StatusTime, earliest_start, status_at, status_time, window_spans
from agents.core.values import team_values, window_values
from agents.core.windows import WINDOWS, window_reads
from agents.exposure.status_values import with_status
from agents.store.floor_reads import AgentReads, floor_plan
from agents.store.protocols import AgentPairs, FloorStore, NoStatusHistory, StatusHistory
from streams.contract.floor import AgentRow, ShopFloor, Totals

Waiting = tuple[int, int | None, str | None]  # (waiting buyers, oldest wait start ms, that buyer's id)


def mask_buyer(buyer_id: str) -> str:
    """Personal data: at most `tb_***2` (events.md). Never more than a third of the id shows,
    the last character first, then up to three leading ones: `t***2` for a six-character id,
    `***e` for five, `***` for one or two."""
    shown = len(buyer_id) // 3
    leading = max(0, min(3, shown - 1))
    return f"{buyer_id[:leading]}***{buyer_id[-1:] if shown else ''}"


class FloorReader:
    def __init__(self, store: FloorStore, policies: PolicyBook, status: StatusHistory | None = None) -> None:
        self.store = store
        self.policies = policies
        # v3 agent status; without it (a v2 reader) every agent is `unknown`, with no online time.
        self.status: StatusHistory = status if status is not None else NoStatusHistory()

    async def shops(self, now_ms: int) -> list[str]:
        known = set(await self.store.shops(now_ms))
        return sorted(known | set(self.policies.settings.shops))

    async def agents(self, shop: str, now_ms: int) -> list[str]:
        configured = self.policies.settings.shops.get(shop)
        found = set(await self.store.agents(shop, now_ms))
        found.discard(SHOP_LEVEL)
        if configured:
            found |= set(configured.agents)
        return sorted(found)

    async def vectors(self, shop: str, agents: list[str], now_ms: int) -> list[dict[str, list[int]]]:
        policy = self.policies(shop)
        reads = window_reads(now_ms, policy.calendar)
        return await self.store.window_sums([(shop, a) for a in agents], reads)

    async def floor(self, shop: str, now_ms: int, *, with_sums: bool = False) -> ShopFloor:
        """The floor of one shop; `with_sums` keeps each row's raw window vectors (`sums`)."""
        policy = self.policies(shop)
        agents = await self.agents(shop, now_ms)
        pairs = [(shop, a) for a in agents]
        vectors = await self.vectors(shop, [*agents, SHOP_LEVEL], now_ms)
        waiting = await self.store.waiting(pairs, now_ms - policy.wait_limit_ms)
        return await self._floor(shop, agents, vectors, waiting, now_ms, with_sums)

    async def leader_floor(
        self, shop: str, now_ms: int, cache: ClosedDaysCache
    ) -> tuple[ShopFloor, dict[str, dict[str, int]] | None]:
        """The leader's read of one shop: its floor `with_sums`, and each agent's first-response
        histogram. Through `floor_reads` (one call per agent) when the store has it, with the
        closed days of unchanged agents from `cache`; else `floor`, and None for histograms."""
        if not isinstance(self.store, AgentReadsStore):
            return await self.floor(shop, now_ms, with_sums=True), None
        policy = self.policies(shop)
        agents = await self.agents(shop, now_ms)
        today = policy.calendar.day(now_ms)
        plan = floor_plan(window_reads(now_ms, policy.calendar), today, now_ms - policy.wait_limit_ms)
        pairs = [(shop, a) for a in [*agents, SHOP_LEVEL]]
        reads = await self.store.floor_reads(pairs, plan, [cache.token(pair, today) for pair in pairs])
        vectors = [cache.windows(pair, today, read) for pair, read in zip(pairs, reads, strict=True)]
        floor = await self._floor(shop, agents, vectors, [r.waiting for r in reads[:-1]], now_ms, True)
        return floor, {agent: read.histogram for agent, read in zip(agents, reads, strict=False)}

    async def _floor(
        self,
        shop: str,
        agents: list[str],
        vectors: list[dict[str, Vector]],
        waiting: list[Waiting],
        now_ms: int,
        with_sums: bool,
    ) -> ShopFloor:
        """`vectors`: each agent's window sums, then the shop level's; `waiting`: each agent's."""
        policy = self.policies(shop)
        pairs = [(shop, a) for a in agents]
        spans = window_spans(now_ms, policy.calendar)
        histories = await self.status.status_points(pairs, earliest_start(spans))
        team = _Team.empty()
        rows: list[AgentRow] = []
        for agent, windows, waits, points in zip(agents, vectors[:-1], waiting, histories, strict=True):
            status = {w: status_time(points, *spans[w], now_ms) for w in WINDOWS}
            team.add(windows, status)
            rows.append(_agent_row(policy, agent, windows, waits, points, status, now_ms, with_sums))
        rows.sort(key=lambda r: (-r.oldest_wait_seconds, r.agent))
        return ShopFloor(
            shop=shop,
            name=policy.name,
            as_of=now_ms,
            alert_threshold_seconds=policy.alert_threshold_seconds,
            in_service_hours=policy.clock.is_open(now_ms),
            response_targets_seconds=list(policy.response_targets_seconds),
            agents=rows,
            totals=team.totals(rows, vectors[-1], policy.response_targets_seconds),
        )


@runtime_checkable
class AgentReadsStore(Protocol):
    """A store that reads all of a leader round's share of an agent at once (RedisStore)."""

    async def floor_reads(
        self, pairs: AgentPairs, plan: bytes, tokens: Sequence[str]
    ) -> list[AgentReads]: ...


@dataclass
class ClosedDaysCache:
    """The leader's, per agent: the 28d window's days before today, summed, under the token of
    the agent's outbox markers when they were read (floor_reads.lua). Days before today change
    only through an outbox share, which changes the token; the key has today, so a new business
    day reads them again. Holds the agents of the last round only (`end_round`)."""

    entries: dict[tuple[str, str], tuple[str, int, list[int]]] = field(default_factory=dict)
    _seen: dict[tuple[str, str], tuple[str, int, list[int]]] = field(default_factory=dict)

    def token(self, pair: tuple[str, str], today: int) -> str:
        entry = self.entries.get(pair)
        return entry[0] if entry is not None and entry[1] == today else ""

    def windows(self, pair: tuple[str, str], today: int, read: AgentReads) -> dict[str, Vector]:
        """The agent's window sums: `read`'s, its 28d with the closed days read or kept."""
        if read.closed is not None:
            closed = read.closed
        else:
            entry = self.entries.get(pair)
            if entry is None or entry[0] != read.token or entry[1] != today:
                raise RuntimeError(f"floor_reads skipped the closed days of {pair} without a cached sum")
            closed = entry[2]
        self._seen[pair] = (read.token, today, closed)
        sums = dict(read.sums)
        sums["28d"] = [a + b for a, b in zip(sums["28d"], closed, strict=True)]
        return sums

    def end_round(self) -> None:
        """Keep what this round read: agents gone from the floor leave the cache."""
        self.entries, self._seen = self._seen, {}

    def clear(self) -> None:
        self.entries, self._seen = {}, {}


@dataclass(slots=True)
class _Team:
    """The team's sums over its agents, per window: the cohort vectors and the status time."""

    vectors: dict[str, Vector]
    status: dict[str, StatusTime]

    @classmethod
    def empty(cls) -> _Team:
        return cls({w: [0] * WIDTH for w in WINDOWS}, {w: StatusTime() for w in WINDOWS})

    def add(self, windows: dict[str, Vector], status: dict[str, StatusTime]) -> None:
        for w in WINDOWS:
            self.vectors[w] = [a + b for a, b in zip(self.vectors[w], windows[w], strict=True)]
            self.status[w] += status[w]

    def totals(self, rows: list[AgentRow], shop_level: dict[str, Vector], targets: tuple[int, ...]) -> Totals:
        return Totals(
            waiting_buyers=sum(r.waiting_buyers for r in rows),
            oldest_wait_seconds=max((r.oldest_wait_seconds for r in rows), default=0.0),
            windows={
                w: with_status(team_values(self.vectors[w], shop_level[w], targets), self.status[w])
                for w in WINDOWS
            },
        )


def _agent_row(
    policy: ShopPolicy,
    agent: str,
    windows: dict[str, Vector],
    waiting: Waiting,
    points: Sequence[ChangePoint],
    status: dict[str, StatusTime],
    now_ms: int,
    with_sums: bool,
) -> AgentRow:
    count, oldest, buyer = waiting
    clock = policy.clock
    # The longest wait on the service clock is the one that started first: it is monotone.
    oldest_seconds = round(clock.elapsed(oldest, now_ms) / 1000, 3) if oldest is not None else 0.0
    targets = policy.response_targets_seconds
    return AgentRow(
        agent=agent,
        name=policy.agent_names.get(agent),
        group=policy.agent_groups.get(agent),
        waiting_buyers=count,
        oldest_wait_seconds=oldest_seconds,
        alert=clock.is_open(now_ms) and oldest_seconds > policy.alert_threshold_seconds,
        oldest_waiting_buyer=mask_buyer(buyer) if buyer is not None else None,
        agent_status=status_at(points, now_ms),
        windows={w: with_status(window_values(windows[w], targets), status[w]) for w in WINDOWS},
        sums={w: list(windows[w]) for w in WINDOWS} if with_sums else None,
    )
