"""The leader's round reads only what changed (floor.py FloorCache): under random writes between
rounds, its floors and histograms must equal a fresh full read at every step of simulated time.

The steps cross minute, hour and business-day boundaries; between them the worker's writes
(outbox.from_writes and apply_calls, so markers, day logs and the agents index move as in
production) add cohorts now, in the last hour, into old days (late events) and ahead of the
round's clock (a writer's clock ahead: up to 70 s), start and end
waits, and change agents' status (the login feed). One agent goes idle; the shop's settings
change once. With one invalidation turned off, the comparison must see the stale cache.

Redis db 13 (flushed first), as test_leader_round_cache.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from agents.core.clock import wall_clock_ms
from agents.core.policy import PolicyBook, ShopPolicy
from agents.exposure import floor as floor_module
from agents.exposure.floor import FloorCache, FloorReader
from agents.store.connect import connect
from agents.store.floor_reads import AgentReads
from agents.store.protocols import AgentStatusWrite, StatusChange
from agents.store.redis_store import RedisStore
from config.calendar import MS_PER_DAY
from config.settings import settings_from_yaml
from tests.integration.harness import Stack
from tests.integration.test_leader_round_cache import SHOP, World

DB = 13
AGENTS = ("s1:a", "s1:b", "s1:c", "s1:d")
IDLE = "s1:d"  # no writes after IDLE_FROM seconds
IDLE_FROM = 40
SETTINGS = settings_from_yaml("shops:\n  s1:\n    alert_threshold_seconds: 10\n")
CHANGED_SETTINGS = settings_from_yaml(
    "shops:\n  s1:\n    alert_threshold_seconds: 25\n    response_targets_seconds: [15, 45]\n"
)
SETTINGS_CHANGE_AT = 150
# Seconds after the start: every second across a minute and the business day's end, then jumps
# across hours and over the rolling windows' edges.
STEPS = [
    *range(0, 140),
    145,
    150,
    151,
    200,
    299,
    300,
    301,
    359,
    360,
    420,
    700,
    1_900,
    3_700,
    3_701,
    3_760,
    4_000,
]


class Login:
    """The login feed's side: status changes applied as the status consumer applies them."""

    def __init__(self, store: RedisStore) -> None:
        self.store, self.offset = store, 0

    async def change(self, agent: str, status: str, at_ms: int, now_ms: int) -> None:
        self.offset += 1
        change = StatusChange(f"e{self.offset}", at_ms, status, 0, self.offset)
        write = AgentStatusWrite(SHOP, agent, [change], now_ms - 40 * MS_PER_DAY, 40 * MS_PER_DAY)
        await self.store.status.apply_status([write], now_ms)


async def churn(world: World, login: Login, rnd: random.Random, second: int, at: int) -> None:
    """A few random writes as of `at`, as the worker and the login feed make them."""
    for _ in range(rnd.randint(0, 3)):
        agent = rnd.choice([a for a in AGENTS if a != IDLE or second < IDLE_FROM])
        kind = rnd.random()
        if kind < 0.35:
            await world.cohort(
                agent, at - rnd.randint(0, 2_000), at, c=1, r=rnd.randint(0, 1), fs=rnd.randint(1, 9_000)
            )
        elif kind < 0.5:  # a cohort of the last hour, late
            await world.cohort(agent, at - rnd.randint(60_000, 3_500_000), at, c=1, i=1)
        elif kind < 0.55:  # a late event into an old business day
            await world.cohort(
                agent, at - rnd.randint(2, 20) * MS_PER_DAY, at, c=1, r=1, y=rnd.randint(1, 999)
            )
        elif kind < 0.6:  # stamped ahead (a writer's clock ahead): it enters the windows later
            await world.cohort(agent, at + rnd.randint(1, 70_000), at, c=1, r=1, fs=rnd.randint(1, 9_000))
        elif kind < 0.85:
            buyer = f"tb_{rnd.randint(1, 6)}"
            start = None if rnd.random() < 0.4 else at - rnd.randint(0, 30_000)
            await world.wait(agent, buyer, start, at)
        else:
            await login.change(
                agent, rnd.choice(("online", "away", "offline")), at - rnd.randint(0, 5_000), at
            )


async def rounds(stack: Stack, seed: int = 28) -> list[str]:
    """Each step's differences between the cached round and a fresh full read ([] when equal)."""
    client = connect(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    store, policies = RedisStore(client), PolicyBook(SETTINGS)
    reader, world, login = FloorReader(store, policies, store), World(store, policies), Login(store)
    cache, rnd = FloorCache(), random.Random(seed)
    calendar = policies(SHOP).calendar  # near the wall clock: Redis expires the keys by it
    now = calendar.day_start_ms(calendar.day(wall_clock_ms())) + MS_PER_DAY - 90_500
    for days_ago in range(1, 30, 4):
        for agent in AGENTS:
            await world.cohort(agent, now - days_ago * MS_PER_DAY, now, c=days_ago, r=1, fs=1_000)
    for agent in AGENTS:
        await world.cohort(agent, now - rnd.randint(0, 3_500_000), now, c=1, r=1, fs=2_000)
    await login.change("s1:a", "online", now - 4_000_000, now)
    differences: list[str] = []
    for second in STEPS:
        at = now + second * 1000
        if second == SETTINGS_CHANGE_AT:
            reader.policies = world.policies = PolicyBook(CHANGED_SETTINGS)
        if second > 0:
            await churn(world, login, rnd, second, at - 500)
        [(cached, histograms)] = await reader.leader_floors([SHOP], at, cache)
        fresh = await reader.floor(SHOP, at, with_sums=True)
        fresh_histograms = await store.histograms([(SHOP, row.agent) for row in fresh.agents])
        if cached != fresh:
            differences.append(f"second {second}: floors differ")
        expected = {row.agent: counts for row, counts in zip(fresh.agents, fresh_histograms, strict=True)}
        if histograms != expected:
            differences.append(f"second {second}: histograms differ")
    await client.flushdb()
    await client.aclose()
    return differences


@pytest.mark.parametrize("seed", [28, 29, 30])
def test_a_cached_round_equals_a_fresh_read_under_churn(stack: Stack, seed: int) -> None:
    assert asyncio.run(rounds(stack, seed=seed)) == []


async def quiet_rounds(stack: Stack) -> list[tuple[float, float]]:
    """Rounds a second apart over a shop where nothing is written: the agents' status time alone
    moves with the clock (one online, one away, one offline). Each round's cached floor must equal
    a fresh read; returns the team's and an online agent's 1h online seconds per round."""
    client = connect(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    store, policies = RedisStore(client), PolicyBook(SETTINGS)
    reader, world, login = FloorReader(store, policies, store), World(store, policies), Login(store)
    cache = FloorCache()
    calendar = policies(SHOP).calendar
    now = calendar.day_start_ms(calendar.day(wall_clock_ms())) + 10 * 3_600_000
    for agent in AGENTS[:3]:  # one cohort on an old day: nothing leaves a window in the rounds
        await world.cohort(agent, now - 3 * MS_PER_DAY, now, c=1, r=1, fs=1_000)
    for agent, status in zip(AGENTS, ("online", "away", "offline", "offline"), strict=True):
        await login.change(agent, status, now - 200_000, now)
    # Online from 3 s into the rounds: on that very ms its figures are still zero, and only its
    # status now moves.
    await login.change(AGENTS[3], "online", now + 3_000, now)
    figures, later = [], []
    for second in range(12):
        at = now + second * 1000
        [(cached, _)] = await reader.leader_floors([SHOP], at, cache)
        fresh = await reader.floor(SHOP, at, with_sums=True)
        assert cached == fresh, f"second {second}: the kept floor differs from a fresh read"
        online, late = (next(row for row in cached.agents if row.agent == agent) for agent in AGENTS[::3])
        figures.append((cached.totals.windows["1h"].online_seconds, online.windows["1h"].online_seconds))
        later.append(late.agent_status)
    await client.flushdb()
    await client.aclose()
    assert later == ["offline"] * 3 + ["online"] * 9
    return figures


def test_status_time_moves_with_the_clock_alone_in_a_quiet_shop(stack: Stack) -> None:
    """No writes, so no agent is read again: the rows and the team keep their cohort values and
    move only their online and away seconds (floor.py `_row`, `_team`)."""
    figures = asyncio.run(quiet_rounds(stack))
    team, agent = [team for team, _ in figures], [agent for _, agent in figures]
    assert agent == [200.0 + second for second in range(12)]  # online since 200 s before the first round
    # The away agent is logged in too, and the late one from 3 s on.
    assert team == [400.0 + 2 * second + max(0, second - 3) for second in range(12)]


# (agent, cohort start) from the round's first clock, in ms: written then, and nothing after.
Cohorts = list[tuple[str, int]]


async def rounds_after_cohorts(
    stack: Stack, past_minute_ms: int, cohorts: Cohorts, seconds: int
) -> list[str]:
    """Rounds a second apart from `past_minute_ms` into a minute near the wall clock (Redis
    expires by it), after `cohorts` and with no writes: the seconds the kept floor differed."""
    client = connect(stack.redis_url.rsplit("/", 1)[0] + f"/{DB}")
    await client.flushdb()
    store, policies = RedisStore(client), PolicyBook(SETTINGS)
    reader, world, cache = FloorReader(store, policies, store), World(store, policies), FloorCache()
    now = wall_clock_ms() // 60_000 * 60_000 + past_minute_ms
    for agent, offset in cohorts:
        await world.cohort(agent, now + offset, now, c=1, r=1, fs=abs(offset) // 1000)
    differences = []
    for second in range(0, seconds):
        at = now + second * 1000
        [(cached, _)] = await reader.leader_floors([SHOP], at, cache)
        if cached != await reader.floor(SHOP, at, with_sums=True):
            differences.append(f"second {second}: floors differ")
    await client.flushdb()
    await client.aclose()
    return differences


def test_kept_minutes_leave_their_windows_on_the_second_in_a_quiet_shop(stack: Stack) -> None:
    """The kept floor must let each cohort go on its second (the earliest kept minute of each
    window says when). The clock at 30 s past a minute. Leaving the hour at +10 s (in its edge
    minute: the script's seconds) and +70 s (a whole minute until +30 s), the 5m window at +100 s
    (a whole minute until +90 s), and one that stays: no two kept minutes leave on the same second."""
    cohorts = [(AGENTS[0], -ago_s * 1000) for ago_s in (3_590, 3_530, 200, 100)]
    assert asyncio.run(rounds_after_cohorts(stack, 30_000, cohorts, 110)) == []


def test_cohorts_stamped_ahead_enter_their_windows_on_the_second_in_a_quiet_shop(stack: Stack) -> None:
    """Cohorts stamped ahead of the clock (a writer's clock ahead, within the decoder's future
    tolerance): the kept floor must take each in on its second, however many minutes ahead.
    20 s past a minute: ahead in this minute, at its last second, in the next minute, and two and
    four minutes on (the tolerance is five); each agent has one, and nothing else. The last is
    past the tolerance from the round's clock: a writer's clock 45 s ahead of the leader's."""
    aheads = zip((*AGENTS, "s1:e", "s1:f"), (15, 39, 45, 130, 280, 345), strict=True)
    cohorts = [(agent, ahead_s * 1000) for agent, ahead_s in aheads]
    assert asyncio.run(rounds_after_cohorts(stack, 20_000, cohorts, 350)) == []


def _shop_ignoring_settings(
    self: FloorCache, shop: str, policy: ShopPolicy, now_ms: int
) -> floor_module._ShopState:
    """FloorCache.shop without its settings check: a new business day still starts afresh."""
    today = policy.calendar.day(now_ms)
    state = self.shops.get(shop)
    if state is None or state.today != today:
        state = self.shops[shop] = floor_module._ShopState(
            policy, today, policy.calendar.day_start_ms(today + 1)
        )
    return state


def _break(monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """Turn one invalidation off: `touch` (the index's change log), `time` (reads that stop
    holding as time passes), `settings` (a shop whose settings changed), `minutes` (a whole
    minute written since the last read, which the minute log names)."""
    state = floor_module._ShopState
    if what == "minutes":
        read = floor_module._KeptMinutes.__dict__["read"].__func__

        def unchanged(
            cls: type[floor_module._KeptMinutes],
            old: floor_module._KeptMinutes | None,
            reads: AgentReads,
            ranges: dict[str, tuple[int, int]],
        ) -> floor_module._KeptMinutes:
            if old is not None and not reads.whole_minutes and old.held.first is not None:
                first, last = old.held.first, old.held.last or 0
                kept = {m: v for m, v in reads.minutes.items() if not first <= m <= last}
                reads = dataclasses.replace(reads, minutes=kept)
            return read(cls, old, reads, ranges)

        monkeypatch.setattr(floor_module._KeptMinutes, "read", classmethod(unchanged))
    elif what == "touch":
        look = state.look
        monkeypatch.setattr(state, "look", lambda self, changes: look(self, changes) and set())
    elif what == "time":
        monkeypatch.setattr(
            state, "stale", lambda self, agent, touched, now_ms: agent not in self.agents or agent in touched
        )
    else:
        monkeypatch.setattr(FloorCache, "shop", _shop_ignoring_settings)


@pytest.mark.parametrize("what", ["touch", "time", "settings", "minutes"])
def test_the_comparison_sees_a_cache_that_misses_a_change(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """The same steps with one invalidation off: the kept reads go stale, and the comparison says so."""
    _break(monkeypatch, what)
    differences = asyncio.run(rounds(stack))
    assert differences, f"with {what} off the cache still matched: the test cannot see that miss"
    print(what, differences[:4])
