"""The floor-display data (interfaces.md `/api/v1/floor`), read from Redis for one shop."""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import msgspec

from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import SHOP_LEVEL, WIDTH, Vector
from agents.core.status import ChangePoint, StatusTime, earliest_start, status_at, status_times, window_spans
from agents.core.values import team_values, window_values
from agents.core.windows import ROLLING_SECONDS, SLIDING_TTL_MS, WINDOWS, whole_minutes, window_reads
from agents.exposure.status_values import total, with_status
from agents.store.floor_reads import NO_MINUTES_HELD, AgentReads, IndexChanges, MinutesHeld, floor_plan
from agents.store.protocols import AgentPairs, FloorStore, NoStatusHistory, StatusHistory
from streams.contract.floor import AgentRow, ShopFloor, TeamWindowValues, Totals, WindowValues

Waiting = tuple[int, int | None, str | None]  # (waiting buyers, oldest wait start ms, that buyer's id)
# A summed vector the leader keeps between rounds: a tuple of ints, which the garbage collector
# stops walking after its first look (a list it walks at every collection, item by item: at
# 10,000 agents, most of a full collection's time).
Sums = tuple[int, ...]
# A leader round's slices of agents to read, and how many are in flight while one is folded in
# (FloorReader._read_ahead): by bench.leader_round at 10,000 agents.
LEADER_READ_SLICE = 256
READS_AHEAD = 3


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

    async def leader_floors(
        self, shops: Sequence[str], now_ms: int, cache: FloorCache
    ) -> list[tuple[ShopFloor, dict[str, dict[str, int]] | None]]:
        """The leader's read of `shops`: each floor `with_sums`, and its agents' first-response
        histograms. With a store that has floor_reads, only what changed since the last round
        is read (FloorCache), in slices across all shops, and each shop's floor is made once
        its reads are in, while Redis reads the next ones; else `floor` per shop, and None for
        histograms."""
        if not isinstance(self.store, AgentReadsStore):
            return [(await self.floor(shop, now_ms, with_sums=True), None) for shop in shops]
        states = [cache.shop(shop, self.policies(shop), now_ms) for shop in shops]
        changes = await self.store.floor_changes(shops, [(state.version, state.birth) for state in states])
        reads = self._round_reads(shops, states, changes, now_ms)
        floors: list[tuple[ShopFloor, dict[str, dict[str, int]] | None]] = []

        def made_to(folded: int) -> None:
            """The floors of the shops whose reads are all folded in: made while Redis reads on."""
            while len(floors) < len(shops) and reads.ends[len(floors)] <= folded:
                at = len(floors)
                state, agents = states[at], reads.agents[at]
                histograms = {agent: state.agents[agent].histogram for agent in agents}
                floors.append((state.floor(shops[at], agents, now_ms), histograms))

        await _read_ahead(self.store, reads.pairs, reads.calls, whole_minutes(now_ms), made_to)
        made_to(len(reads.calls))
        cache.end_round(shops)
        return floors

    def _round_reads(
        self, shops: Sequence[str], states: list[_ShopState], changes: list[IndexChanges], now_ms: int
    ) -> _RoundReads:
        """Each shop's look at its index's changes, and the reads of its agents that are stale."""
        plans: dict[tuple[int, int], bytes] = {}
        reads, looked = _RoundReads(), 0
        try:
            for shop, state, change in zip(shops, states, changes, strict=True):
                touched = state.look(change)
                looked += 1
                agents = self._indexed_agents(shop, state.index, now_ms)
                reads.agents.append(agents)
                for agent in [*agents, SHOP_LEVEL]:
                    if state.stale(agent, touched, now_ms):
                        reads.pairs.append((shop, agent))
                        plan = self._leader_plan(state.policy, now_ms, plans)
                        reads.calls.append(
                            (state, agent, agent in touched, plan, state.token(agent), state.held(agent))
                        )
                reads.ends.append(len(reads.calls))
        except BaseException:
            # The shops looked at have spent their touches: the next round reads their indexes
            # whole, and so every agent of them (a bug's path: nothing here awaits).
            for state in states[:looked]:
                state.version = -1
            raise
        return reads

    def _indexed_agents(self, shop: str, index: dict[str, int], now_ms: int) -> list[str]:
        """As `agents`, from the index as kept: seen within its TTL, and the configured ones."""
        found = {agent for agent, seen in index.items() if seen >= now_ms - SLIDING_TTL_MS}
        found.discard(SHOP_LEVEL)
        configured = self.policies.settings.shops.get(shop)
        if configured:
            found |= set(configured.agents)
        return sorted(found)

    def _leader_plan(self, policy: ShopPolicy, now_ms: int, plans: dict[tuple[int, int], bytes]) -> bytes:
        """floor_reads.lua's plan for a shop at `now_ms`: shops alike share one (same round)."""
        key = (id(policy.calendar), policy.wait_limit_ms)
        plan = plans.get(key)
        if plan is None:
            calendar = policy.calendar
            since = None
            if not isinstance(self.status, NoStatusHistory):
                since = earliest_start(window_spans(now_ms, calendar))
            plan = plans[key] = floor_plan(
                window_reads(now_ms, calendar),
                calendar.day(now_ms),
                now_ms - policy.wait_limit_ms,
                now_ms,
                since,
                prune=True,
                ahead_ms=self.policies.settings.processing.future_tolerance_seconds * 1000,
            )
        return plan

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
        window_list = [spans[w] for w in WINDOWS]
        team = _Team.empty()
        rows: list[AgentRow] = []
        for agent, windows, waits, points in zip(agents, vectors[:-1], waiting, histories, strict=True):
            status = _window_status(points, window_list, now_ms)
            team.add(windows, status)
            rows.append(_agent_row(policy, agent, windows, waits, points, status, now_ms, with_sums))
        team_windows = team.windows(vectors[-1], policy.response_targets_seconds)
        return shop_floor(shop, policy, rows, team_windows, now_ms)


# One agent a leader round reads: its shop's state, the agent, touched, plan, closed token, minutes.
_LeaderCall = tuple["_ShopState", str, bool, bytes, str, MinutesHeld]


@dataclass
class _RoundReads:
    """What a leader round reads, in shop order: each stale agent's pair and call; per shop, its
    agents, and how many calls are folded in once its own are (its calls come together)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    calls: list[_LeaderCall] = field(default_factory=list)
    agents: list[list[str]] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)


@runtime_checkable
class AgentReadsStore(Protocol):
    """A store that reads all of a leader round's share of an agent at once, and the changes
    of a shop's agents index (RedisStore)."""

    async def floor_reads(
        self,
        pairs: AgentPairs,
        plan: bytes | Sequence[bytes],
        tokens: Sequence[str],
        held_minutes: Sequence[MinutesHeld] | None = None,
    ) -> Iterator[AgentReads]: ...

    async def floor_changes(
        self, shops: Sequence[str], known: Sequence[tuple[int, str]]
    ) -> list[IndexChanges]: ...


async def _read_ahead(
    store: AgentReadsStore,
    pairs: list[tuple[str, str]],
    calls: list[_LeaderCall],
    ranges: dict[str, tuple[int, int]],
    folded_to: Callable[[int], None],
) -> None:
    """Read `calls` in slices of LEADER_READ_SLICE agents, and fold each slice in while Redis
    reads the READS_AHEAD after it: Redis and this process each have a core, and one whole read
    before the folding kept them idle in turn (a churned round at 10,000 agents: ~0.3 s of
    Redis, then ~0.3 s here). A round that fails leaves the agents it did not fold in to be
    read whole by the next one. `folded_to` is told how many calls are folded in, once the
    first slices are sent and after each slice."""
    slices = [
        (start, min(start + LEADER_READ_SLICE, len(calls)))
        for start in range(0, len(calls), LEADER_READ_SLICE)
    ]
    pending: deque[asyncio.Task[Iterator[AgentReads]]] = deque()

    def send(start: int, end: int) -> None:
        pending.append(asyncio.ensure_future(_slice_reads(store, pairs[start:end], calls[start:end])))

    folded = 0
    try:
        for start, end in slices[:READS_AHEAD]:
            send(start, end)
        if pending:
            await asyncio.sleep(0)  # they go out before any folding
        folded_to(0)
        for number, (start, end) in enumerate(slices):
            reads = await pending.popleft()
            if number + READS_AHEAD < len(slices):
                send(*slices[number + READS_AHEAD])
                await asyncio.sleep(0)  # it goes out now: the slice awaited next may be done already
            for (state, agent, was_touched, *_), read in zip(calls[start:end], reads, strict=True):
                state.update(agent, read, was_touched, ranges)
            folded = end
            folded_to(folded)
    except BaseException:
        # The round looked at the index already, so the touches it saw are spent: the agents it
        # did not fold in lose what was kept of them, and the next round reads them whole.
        for state, agent, *_ in calls[folded:]:
            state.agents.pop(agent, None)
        raise
    finally:  # a failed slice (an outage): the reads still in flight are not left behind
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _slice_reads(
    store: AgentReadsStore, pairs: list[tuple[str, str]], calls: list[_LeaderCall]
) -> Iterator[AgentReads]:
    return await store.floor_reads(pairs, [c[3] for c in calls], [c[4] for c in calls], [c[5] for c in calls])


@dataclass(slots=True)
class _AgentState:
    """What the leader keeps of one agent between rounds: its reads, until when they hold with
    no write, and the values and row made of them."""

    token: str  # its outbox markers when read
    closed_token: str  # what its closed days were read under (floor_reads.lua)
    closed: Sums  # the 28d window's days before today, summed
    windows: dict[str, Sums]  # window -> summed cohort vector, whole
    waiting: Waiting
    histogram: dict[str, int]
    points: list[ChangePoint]
    valid_until_ms: int  # read again from then on, even with no write
    suspect: bool  # touched, yet its markers had not moved: read once more (the touch came first)
    values: dict[str, WindowValues]  # window_values of `windows`, no status time yet
    minutes: _KeptMinutes  # the rolling windows' whole minutes, as read
    row: AgentRow | None = None  # the last row made (reused while nothing in it moves)
    status: dict[str, StatusTime] | None = None  # the last row's status time (no points: fixed)


@dataclass(slots=True)
class _KeptMinutes:
    """An agent's whole minutes of the rolling windows, kept across rounds so that a round reads
    only the minutes written since (floor_reads.lua's minute log), and their sums per window."""

    token: str  # the minute token they were read under
    ranges: dict[str, tuple[int, int]]  # window -> first and last whole minute summed
    vectors: dict[int, tuple[int, ...]]  # minute -> (slot, value, ...), minutes with a counter only
    sums: dict[str, Sums]  # window -> its whole minutes summed

    @classmethod
    def read(
        cls, old: _KeptMinutes | None, read: AgentReads, ranges: dict[str, tuple[int, int]]
    ) -> _KeptMinutes:
        if old is None or read.whole_minutes:
            vectors = {minute: pairs for minute, pairs in read.minutes.items() if pairs}
            return cls._summed(read.minute_token, ranges, vectors)
        vectors = dict(old.vectors)
        for minute, pairs in read.minutes.items():
            if pairs:
                vectors[minute] = pairs
            else:
                vectors.pop(minute, None)
        if ranges != old.ranges:  # the windows moved on: once a minute
            return cls._summed(read.minute_token, ranges, vectors)
        sums = {window: list(vector) for window, vector in old.sums.items()}
        for minute, pairs in read.minutes.items():
            before = old.vectors.get(minute, ())
            if pairs == before:
                continue
            for window, (first, last) in ranges.items():
                if first <= minute <= last:
                    _add_pairs(sums[window], before, -1)
                    _add_pairs(sums[window], pairs, 1)
        return cls(
            read.minute_token, ranges, vectors, {window: tuple(vector) for window, vector in sums.items()}
        )

    @classmethod
    def _summed(
        cls, token: str, ranges: dict[str, tuple[int, int]], vectors: dict[int, tuple[int, ...]]
    ) -> _KeptMinutes:
        kept = cls(token, ranges, {}, {})
        first, last = kept.held.first, kept.held.last
        if first is None or last is None:
            return kept
        kept.vectors = {minute: pairs for minute, pairs in vectors.items() if first <= minute <= last}
        sums = {window: [0] * WIDTH for window in ranges}
        for minute, pairs in kept.vectors.items():
            for window, (low, high) in ranges.items():
                if low <= minute <= high:
                    _add_pairs(sums[window], pairs, 1)
        kept.sums = {window: tuple(vector) for window, vector in sums.items()}
        return kept

    @property
    def held(self) -> MinutesHeld:
        """What to give floor_reads.lua next round: the token, and the minutes the windows span."""
        if not self.ranges:
            return MinutesHeld(self.token)
        first = min(first for first, _ in self.ranges.values())
        return MinutesHeld(self.token, first, max(last for _, last in self.ranges.values()))

    def valid_until_s(self) -> int | None:
        """The first second a cohort of these minutes leaves its window (as floor_reads.lua
        gives for the buckets it sums)."""
        minutes = sorted(self.vectors)  # up to an hour of them: searched, not scanned per window
        seconds = []
        for window, (first, last) in self.ranges.items():
            at = bisect_left(minutes, first)
            if at < len(minutes) and minutes[at] <= last:
                seconds.append(minutes[at] * 60 + ROLLING_SECONDS[window])
        return min(seconds, default=None)


def _add_pairs(vector: Vector, pairs: tuple[int, ...], sign: int) -> None:
    for index in range(0, len(pairs), 2):
        vector[pairs[index]] += sign * pairs[index + 1]


@dataclass
class _ShopState:
    """One shop's share of the FloorCache: its agents index as last seen, and its agents."""

    policy: ShopPolicy
    today: int
    day_end_ms: int
    version: int = -1  # the index's change log counter at the last look (-1: never looked)
    birth: str = ""  # and the log's birth then (floor_changes.lua reads a log born since whole)
    index: dict[str, int] = field(default_factory=dict)  # agent -> last seen
    agents: dict[str, _AgentState] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # this round's agents, in floor order
    changed: bool = True  # an agent was read or came or went since the team was summed
    team: tuple[dict[str, TeamWindowValues], dict[str, StatusTime]] | None = None

    def look(self, changes: IndexChanges) -> set[str]:
        """The index's changes since the last look; the agents touched (all, on a whole read)."""
        if changes.whole:
            self.index = {agent: seen for agent, seen in changes.members.items() if seen is not None}
            touched = set(self.agents) | set(changes.members)
        else:
            for agent, seen in changes.members.items():
                if seen is None:
                    self.index.pop(agent, None)
                else:
                    self.index[agent] = seen
            touched = set(changes.members)
        self.version, self.birth = changes.version, changes.birth
        return touched

    def stale(self, agent: str, touched: set[str], now_ms: int) -> bool:
        state = self.agents.get(agent)
        return state is None or agent in touched or state.suspect or now_ms >= state.valid_until_ms

    def token(self, agent: str) -> str:
        state = self.agents.get(agent)
        return state.closed_token if state is not None else ""

    def held(self, agent: str) -> MinutesHeld:
        state = self.agents.get(agent)
        return state.minutes.held if state is not None else NO_MINUTES_HELD

    def update(self, agent: str, read: AgentReads, touched: bool, ranges: dict[str, tuple[int, int]]) -> None:
        old = self.agents.get(agent)
        minutes = _KeptMinutes.read(old.minutes if old is not None else None, read, ranges)
        if read.closed is not None:
            closed = tuple(read.closed)
        elif old is not None and old.closed_token == read.closed_token:
            closed = old.closed
        else:
            raise RuntimeError(f"floor_reads skipped the closed days of {agent!r} without a kept sum")
        windows = {window: tuple(vector) for window, vector in read.sums.items()}
        windows["28d"] = tuple([a + b for a, b in zip(windows["28d"], closed, strict=True)])
        for window, sums in minutes.sums.items():
            windows[window] = tuple([a + b for a, b in zip(windows[window], sums, strict=True)])
        valid_until = self.day_end_ms
        for valid_until_s in (read.valid_until_s, minutes.valid_until_s()):
            if valid_until_s is not None:
                valid_until = min(valid_until, valid_until_s * 1000)
        oldest = read.waiting[1]
        if oldest is not None:  # it stops counting once past the wait limit
            valid_until = min(valid_until, oldest + self.policy.wait_limit_ms + 1)
        targets = self.policy.response_targets_seconds
        if old is None:
            values = {w: window_values(windows[w], targets) for w in WINDOWS}
        elif old.windows == windows:
            values = old.values
        else:  # a cohort leaving the 5m window changes that window alone
            kept = old.windows
            values = {
                w: old.values[w] if kept[w] == windows[w] else window_values(windows[w], targets)
                for w in WINDOWS
            }
        self.agents[agent] = _AgentState(
            token=read.token,
            closed_token=read.closed_token,
            closed=closed,
            windows=windows,
            waiting=read.waiting,
            histogram=read.histogram,
            points=read.points,
            valid_until_ms=valid_until,
            # A touch that found nothing new: the write it indexes may land after it (a cluster
            # runs the index's slot and the agent's apart; a NOSCRIPT re-run comes a round trip
            # later), so the agent is read once more next round. A first read too: it has no
            # earlier token to tell.
            suspect=touched and (old is None or old.token == read.token),
            values=values,
            minutes=minutes,
        )
        self.changed = True

    def floor(self, shop: str, agents: list[str], now_ms: int) -> ShopFloor:
        """The shop's floor at `now_ms` from what is kept: equal to FloorReader.floor(with_sums)."""
        policy = self.policy
        if agents != self.order:
            self.order, self.changed = agents, True
        spans = window_spans(now_ms, policy.calendar)
        window_list = [spans[w] for w in WINDOWS]
        rows = [self._row(agent, window_list, now_ms) for agent in agents]
        team_windows, team_status = self._team(agents)
        windows = {w: with_status(team_windows[w], team_status[w]) for w in WINDOWS}
        return shop_floor(shop, policy, rows, windows, now_ms)

    def _row(self, agent: str, spans: list[tuple[int, int]], now_ms: int) -> AgentRow:
        """The agent's row at `now_ms` (`spans`: its windows' in WINDOWS order): made once per read,
        then only what moves with the clock is replaced, the status time and the oldest wait."""
        state = self.agents[agent]
        row = state.row
        if row is None:
            status = _window_status(state.points, spans, now_ms)
            row = _row_of(
                self.policy, agent, state.values, state.windows, state.waiting, state.points, status, now_ms
            )
            state.row, state.status = row, status
            return row
        if state.points:  # an online agent's online time grows each second; the rest stays
            status = _window_status(state.points, spans, now_ms)
            now_status = status_at(state.points, now_ms)
            if status != state.status or now_status != row.agent_status:
                windows = {w: with_status(state.values[w], status[w]) for w in WINDOWS}
                row = state.row = msgspec.structs.replace(row, windows=windows, agent_status=now_status)
                state.status = status
        oldest = state.waiting[1]
        if oldest is None:
            return row  # no wait and no status: nothing in it moves with time
        seconds, alert = _oldest_wait(self.policy, oldest, now_ms)
        if seconds != row.oldest_wait_seconds or alert != row.alert:
            row = state.row = msgspec.structs.replace(row, oldest_wait_seconds=seconds, alert=alert)
        return row

    def _team(self, agents: list[str]) -> tuple[dict[str, TeamWindowValues], dict[str, StatusTime]]:
        """The team's cohort values and status time: both summed again when an agent changed,
        the status time alone when only the clock moved it."""
        moving = any(self.agents[agent].points for agent in agents)
        if self.team is not None and not self.changed and not moving:
            return self.team
        states = [self.agents[agent] for agent in agents]
        kept: list[dict[str, StatusTime]] = []
        for agent, state in zip(agents, states, strict=True):
            if state.status is None:  # set by _row, which made every agent's row of this round first
                raise RuntimeError(f"no row made for {agent!r} before the team's sums")
            kept.append(state.status)
        status = {w: total([times[w] for times in kept]) for w in WINDOWS}
        if self.team is not None and not self.changed:
            self.team = (self.team[0], status)
            return self.team
        # Column by column: one pass over the agents' vectors of a window, not one list per agent.
        vectors = {
            w: [sum(column) for column in zip(*(state.windows[w] for state in states), strict=True)]
            if states
            else [0] * WIDTH
            for w in WINDOWS
        }
        shop_level = self.agents[SHOP_LEVEL].windows
        targets = self.policy.response_targets_seconds
        values = {w: team_values(vectors[w], shop_level[w], targets) for w in WINDOWS}
        self.team, self.changed = (values, status), False
        return self.team


@dataclass
class FloorCache:
    """The leader's, across rounds (FloorReader.leader_floors): per shop, its agents index and
    each agent's reads, values and row. An agent is read again when its index entry is touched
    (every write of the worker touches it, after the write: touch_index.lua's change log), when
    its reads stop holding with time (a cohort leaves a rolling window, a wait passes the wait
    limit, its histogram or status points expire untouched, the business day ends), or the round
    after a touch that found its markers unmoved.
    A shop's settings changing, or its business day, start it afresh. Holds the shops of the
    last round only, and is dropped when leadership ends."""

    shops: dict[str, _ShopState] = field(default_factory=dict)

    def shop(self, shop: str, policy: ShopPolicy, now_ms: int) -> _ShopState:
        today = policy.calendar.day(now_ms)
        state = self.shops.get(shop)
        # Equal, not the same: PolicyBook keeps 256 unconfigured shops' policies, makes the rest anew.
        if state is None or state.today != today or (state.policy is not policy and state.policy != policy):
            state = self.shops[shop] = _ShopState(policy, today, policy.calendar.day_start_ms(today + 1))
        return state

    def end_round(self, shops: Sequence[str]) -> None:
        """Keep this round's shops: shops gone from the floor leave the cache."""
        self.shops = {shop: self.shops[shop] for shop in shops if shop in self.shops}

    def clear(self) -> None:
        self.shops = {}


def _window_status(
    points: Sequence[ChangePoint], spans: list[tuple[int, int]], now_ms: int
) -> dict[str, StatusTime]:
    """Each window's status time; `spans` in WINDOWS order."""
    return dict(zip(WINDOWS, status_times(points, spans, now_ms), strict=True))


def _oldest_wait(policy: ShopPolicy, oldest: int, now_ms: int) -> tuple[float, bool]:
    # The longest wait on the service clock is the one that started first: it is monotone.
    seconds = round(policy.clock.elapsed(oldest, now_ms) / 1000, 3)
    return seconds, policy.clock.is_open(now_ms) and seconds > policy.alert_threshold_seconds


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

    def windows(self, shop_level: dict[str, Vector], targets: tuple[int, ...]) -> dict[str, TeamWindowValues]:
        vectors, status = self.vectors, self.status
        return {w: with_status(team_values(vectors[w], shop_level[w], targets), status[w]) for w in WINDOWS}


def shop_floor(
    shop: str, policy: ShopPolicy, rows: list[AgentRow], team: dict[str, TeamWindowValues], now_ms: int
) -> ShopFloor:
    """A shop's floor from its agents' rows (sorted here, longest wait first) and the team's
    windows: one shape for the fresh read and the leader's kept one, which must be equal."""
    rows.sort(key=lambda r: (-r.oldest_wait_seconds, r.agent))
    return ShopFloor(
        shop=shop,
        name=policy.name,
        as_of=now_ms,
        alert_threshold_seconds=policy.alert_threshold_seconds,
        in_service_hours=policy.clock.is_open(now_ms),
        response_targets_seconds=list(policy.response_targets_seconds),
        agents=rows,
        totals=Totals(
            waiting_buyers=sum(r.waiting_buyers for r in rows),
            oldest_wait_seconds=max((r.oldest_wait_seconds for r in rows), default=0.0),
            windows=team,
        ),
    )


def _agent_row(
    policy: ShopPolicy,
    agent: str,
    windows: Mapping[str, Sequence[int]],
    waiting: Waiting,
    points: Sequence[ChangePoint],
    status: dict[str, StatusTime],
    now_ms: int,
    with_sums: bool,
) -> AgentRow:
    targets = policy.response_targets_seconds
    values = {w: window_values(windows[w], targets) for w in WINDOWS}
    return _row_of(policy, agent, values, windows if with_sums else None, waiting, points, status, now_ms)


def _row_of(
    policy: ShopPolicy,
    agent: str,
    values: dict[str, WindowValues],
    sums: Mapping[str, Sequence[int]] | None,
    waiting: Waiting,
    points: Sequence[ChangePoint],
    status: dict[str, StatusTime],
    now_ms: int,
) -> AgentRow:
    count, oldest, buyer = waiting
    oldest_seconds, alert = _oldest_wait(policy, oldest, now_ms) if oldest is not None else (0.0, False)
    return AgentRow(
        agent=agent,
        name=policy.agent_names.get(agent),
        group=policy.agent_groups.get(agent),
        waiting_buyers=count,
        oldest_wait_seconds=oldest_seconds,
        alert=alert,
        oldest_waiting_buyer=mask_buyer(buyer) if buyer is not None else None,
        agent_status=status_at(points, now_ms),
        windows={w: with_status(values[w], status[w]) for w in WINDOWS},
        sums={w: tuple(sums[w]) for w in WINDOWS} if sums is not None else None,
    )
