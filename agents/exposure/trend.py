"""The floor's trends (`/api/v1/floor/trend`): the team's last hour minute by minute, and each
agent's first response this hour against the hour before, read from the second and minute
buckets in one script call per agent (lua/trend_sums.lua)."""

from __future__ import annotations

from collections.abc import Sequence

from agents.core.projection import Counter
from agents.core.trend import TREND_COUNTERS, TREND_FIELDS, TREND_POINTS, average_seconds, direction, ratio
from agents.exposure.floor import FloorReader
from agents.store.protocols import TrendStore
from streams.contract.floor import AgentTrend, ShopTrend, TrendPoints

# Where each counter sits in a trend vector (TREND_COUNTERS' order).
CONSULTED, REPLIED, FIRST_MS, INQUIRED, PAID = (
    TREND_COUNTERS.index(counter)
    for counter in (
        Counter.CONSULTATIONS,
        Counter.REPLIED,
        Counter.FIRST_RESPONSE_MS,
        Counter.INQUIRIES,
        Counter.PAID,
    )
)


def _team(vectors: Sequence[Sequence[Sequence[int]]], point: int) -> list[int]:
    return [sum(agent[point][field] for agent in vectors) for field in range(len(TREND_FIELDS))]


def _first_response(vector: Sequence[int]) -> float | None:
    return average_seconds(vector[FIRST_MS], vector[REPLIED])


def _sum_points(points: Sequence[Sequence[int]]) -> list[int]:
    return [sum(point[field] for point in points) for field in range(len(TREND_FIELDS))]


class TrendReader:
    def __init__(self, store: TrendStore, floors: FloorReader) -> None:
        self.store = store
        self.floors = floors

    async def trend(self, shop: str, now_ms: int) -> ShopTrend:
        agents = await self.floors.agents(shop, now_ms)
        now_s = now_ms // 1000
        vectors = await self.store.trend_vectors([(shop, a) for a in agents], now_s)
        team = [_team(vectors, point) for point in range(TREND_POINTS)]
        minutes = [now_ms // 60_000 - TREND_POINTS + 1 + i for i in range(TREND_POINTS)]
        points = TrendPoints(
            consultations=[p[CONSULTED] for p in team],
            first_response_avg_seconds=[_first_response(p) for p in team],
            consult_pay_ratio=[ratio(p[PAID], p[INQUIRED]) for p in team],
            waiting_buyers=await self.store.waiting_samples(shop, minutes),
        )
        trends = {}
        for agent, agent_vectors in zip(agents, vectors, strict=True):
            last_hour = _first_response(_sum_points(agent_vectors[:TREND_POINTS]))
            hour_before = _first_response(agent_vectors[TREND_POINTS])
            trends[agent] = AgentTrend(
                last_hour=last_hour, hour_before=hour_before, direction=direction(last_hour, hour_before)
            )
        return ShopTrend(shop=shop, as_of=now_ms, minutes=TREND_POINTS, points=points, agents=trends)
