"""The floor-display data (interfaces.md `/api/v1/floor`), read from Redis for one shop."""

from __future__ import annotations

import msgspec

from agents.core.policy import PolicyBook
from agents.core.projection import (
    ASSISTED,
    ASSISTED_SALES_FEN,
    CONSULTATIONS,
    DISSATISFIED,
    FIRST_RESPONSE_MS,
    INQUIRIES,
    ORDERED,
    ORDERS,
    PAID,
    RATED,
    RATING_SCORE,
    REFUNDED_FEN,
    REPLIED,
    REPLIED_WITHIN,
    SALES_FEN,
    SATISFIED,
    SHOP_LEVEL,
    SILENT_ORDERS,
    SILENT_SALES_FEN,
    WAIT_MS,
    WAITS_ENDED,
    WIDTH,
)
from agents.core.status import StatusTime, earliest_start, status_at, status_time, window_spans
from agents.core.windows import WINDOWS, window_reads
from agents.exposure.status_values import with_status
from agents.store.protocols import FloorStore, NoStatusHistory, StatusHistory
from streams.contract.floor import AgentRow, ShopFloor, TeamWindowValues, Totals, WindowValues


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def window_values(v: list[int], targets_seconds: tuple[int, ...]) -> WindowValues:
    """One window's metrics from its summed cohort vector; `targets_seconds` name its
    replied-within slots (the shop's response_targets_seconds)."""
    return WindowValues(
        consultations=v[CONSULTATIONS],
        replied_consultations=v[REPLIED],
        inquiries=v[INQUIRIES],
        ordered_inquiries=v[ORDERED],
        paid_inquiries=v[PAID],
        reply_ratio=_ratio(v[REPLIED], v[CONSULTATIONS]),
        first_response_avg_seconds=(
            round(v[FIRST_RESPONSE_MS] / v[REPLIED] / 1000, 3) if v[REPLIED] else None
        ),
        response_avg_seconds=round(v[WAIT_MS] / v[WAITS_ENDED] / 1000, 3) if v[WAITS_ENDED] else None,
        consult_order_ratio=_ratio(v[ORDERED], v[INQUIRIES]),
        consult_pay_ratio=_ratio(v[PAID], v[INQUIRIES]),
        order_pay_ratio=_ratio(v[PAID], v[ORDERED]),
        attributed_sales_yuan=_yuan(v[SALES_FEN]),
        average_order_value_yuan=round(v[SALES_FEN] / v[PAID] / 100, 2) if v[PAID] else None,
        replied_within_ratio={
            str(target): _ratio(v[REPLIED_WITHIN + slot], v[CONSULTATIONS])
            for slot, target in enumerate(targets_seconds)
        },
        refunded_sales_yuan=_yuan(v[REFUNDED_FEN]),
        assisted_paid=v[ASSISTED],
        assisted_sales_yuan=_yuan(v[ASSISTED_SALES_FEN]),
        rated_consultations=v[RATED],
        rating_ratio=_ratio(v[RATED], v[REPLIED]),
        satisfaction_ratio=_ratio(v[SATISFIED], v[RATED]),
        dissatisfied_consultations=v[DISSATISFIED],
        average_rating_score=round(v[RATING_SCORE] / v[RATED], 3) if v[RATED] else None,
    )


def team_values(agents: list[int], shop: list[int], targets_seconds: tuple[int, ...]) -> TeamWindowValues:
    """The team's window: the agents' summed vector, and the shop-level one for its orders."""
    return TeamWindowValues(
        **msgspec.structs.asdict(window_values(agents, targets_seconds)),
        orders=shop[ORDERS],
        silent_orders=shop[SILENT_ORDERS],
        silent_share=_ratio(shop[SILENT_ORDERS], shop[ORDERS]),
        silent_sales_yuan=_yuan(shop[SILENT_SALES_FEN]),
    )


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
        vectors = await self.vectors(shop, [*agents, SHOP_LEVEL], now_ms)
        waiting = await self.store.waiting([(shop, a) for a in agents], now_ms - policy.wait_limit_ms)
        spans = window_spans(now_ms, policy.calendar)
        histories = await self.status.status_points([(shop, a) for a in agents], earliest_start(spans))
        team_status = {w: StatusTime() for w in WINDOWS}
        threshold = policy.alert_threshold_seconds
        clock = policy.clock
        in_service = clock.is_open(now_ms)
        targets = policy.response_targets_seconds
        rows: list[AgentRow] = []
        totals = {w: [0] * WIDTH for w in WINDOWS}
        for agent, windows, (count, oldest, buyer), points in zip(
            agents, vectors[:-1], waiting, histories, strict=True
        ):
            status = {w: status_time(points, *spans[w], now_ms) for w in WINDOWS}
            # The longest wait on the service clock is the one that started first: it is monotone.
            oldest_seconds = round(clock.elapsed(oldest, now_ms) / 1000, 3) if oldest is not None else 0.0
            for w in WINDOWS:
                totals[w] = [a + b for a, b in zip(totals[w], windows[w], strict=True)]
                team_status[w] += status[w]
            rows.append(
                AgentRow(
                    agent=agent,
                    name=policy.agent_names.get(agent),
                    group=policy.agent_groups.get(agent),
                    waiting_buyers=count,
                    oldest_wait_seconds=oldest_seconds,
                    alert=in_service and oldest_seconds > threshold,
                    oldest_waiting_buyer=mask_buyer(buyer) if buyer is not None else None,
                    agent_status=status_at(points, now_ms),
                    windows={w: with_status(window_values(windows[w], targets), status[w]) for w in WINDOWS},
                    sums={w: list(windows[w]) for w in WINDOWS} if with_sums else None,
                )
            )
        rows.sort(key=lambda r: (-r.oldest_wait_seconds, r.agent))
        shop_level = vectors[-1]
        return ShopFloor(
            shop=shop,
            name=policy.name,
            as_of=now_ms,
            alert_threshold_seconds=threshold,
            in_service_hours=in_service,
            response_targets_seconds=list(targets),
            agents=rows,
            totals=Totals(
                waiting_buyers=sum(r.waiting_buyers for r in rows),
                oldest_wait_seconds=max((r.oldest_wait_seconds for r in rows), default=0.0),
                windows={
                    w: with_status(team_values(totals[w], shop_level[w], targets), team_status[w])
                    for w in WINDOWS
                },
            ),
        )
