"""Event builders and an in-memory aggregate for exercising the pure core."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from agents.core.buyer import BuyerState
from agents.core.engine import Horizon, apply_buyer_events
from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import WIDTH, Counter, replied_within
from agents.core.values import team_values, window_values
from agents.core.windows import WINDOW_DAYS, WINDOWS
from config.settings import MAX_RESPONSE_TARGETS, Settings, settings_from_yaml
from streams.contract.events import Event, Message, Order, Rating, Transfer
from streams.contract.floor import AgentRow, ShopFloor, Totals

# 2025-11-25 00:00:00 Asia/Shanghai = 2025-11-24T16:00:00Z
DAY0 = 1764000000000 - (1764000000000 + 8 * 3600_000) % 86_400_000
_ids = itertools.count()
TARGETS = (15, 180)  # the default response_targets_seconds


def at(hours: float = 0, minutes: float = 0, seconds: float = 0, day: int = 0) -> int:
    return DAY0 + day * 86_400_000 + int((hours * 3600 + minutes * 60 + seconds) * 1000)


def wire_message(**changes: object) -> dict[str, object]:
    """A message event as a producer writes it (events.md), with `changes` applied."""
    return {
        "event_id": "m1",
        "type": "message",
        "shop_id": "s1",
        "buyer_id": "b1",
        "agent_id": "s1:a",
        "sender": "buyer",
        "ts": DAY0,
    } | changes


def buyer_msg(
    ts: int, agent: str = "s1:a", buyer: str = "b1", shop: str = "s1", event_id: str | None = None
) -> Message:
    return Message(event_id or f"m{next(_ids)}", shop, buyer, ts, agent, "buyer")


def agent_msg(
    ts: int,
    agent: str = "s1:a",
    buyer: str = "b1",
    shop: str = "s1",
    auto: bool = False,
    event_id: str | None = None,
) -> Message:
    return Message(event_id or f"m{next(_ids)}", shop, buyer, ts, agent, "agent", auto)


def transfer(ts: int, src: str, dst: str, buyer: str = "b1", shop: str = "s1") -> Transfer:
    return Transfer(f"t{next(_ids)}", shop, buyer, ts, src, dst)


def rating(
    ts: int, score: int, agent: str = "s1:a", buyer: str = "b1", shop: str = "s1", event_id: str | None = None
) -> Rating:
    return Rating(event_id or f"r{next(_ids)}", shop, buyer, ts, agent, score)


def order(
    ts: int, order_id: str, status: str, fen: int | None = 10000, buyer: str = "b1", shop: str = "s1"
) -> Order:
    return Order(f"o{next(_ids)}", shop, buyer, ts, order_id, status, fen)  # type: ignore[arg-type]


def settings(yaml_text: str = "") -> Settings:
    return settings_from_yaml(yaml_text)


@dataclass(frozen=True)
class Counts:
    """One cohort vector by name (agents/core/projection.py's layout)."""

    consultations: int
    replied: int
    first_response_ms: int
    waits_ended: int
    wait_ms: int
    inquiries: int
    ordered: int
    paid: int
    sales_fen: int
    orders: int
    silent_orders: int
    silent_sales_fen: int
    refunded_fen: int
    assisted: int
    assisted_sales_fen: int
    replied_within: tuple[int, ...]  # per target slot
    rated: int = 0
    satisfied: int = 0
    dissatisfied: int = 0
    rating_score: int = 0

    @classmethod
    def of(cls, v: list[int]) -> Counts:
        return cls(
            consultations=v[Counter.CONSULTATIONS],
            replied=v[Counter.REPLIED],
            first_response_ms=v[Counter.FIRST_RESPONSE_MS],
            waits_ended=v[Counter.WAITS_ENDED],
            wait_ms=v[Counter.WAIT_MS],
            inquiries=v[Counter.INQUIRIES],
            ordered=v[Counter.ORDERED],
            paid=v[Counter.PAID],
            sales_fen=v[Counter.SALES_FEN],
            orders=v[Counter.ORDERS],
            silent_orders=v[Counter.SILENT_ORDERS],
            silent_sales_fen=v[Counter.SILENT_SALES_FEN],
            refunded_fen=v[Counter.REFUNDED_FEN],
            assisted=v[Counter.ASSISTED],
            assisted_sales_fen=v[Counter.ASSISTED_SALES_FEN],
            replied_within=tuple(v[replied_within(slot)] for slot in range(MAX_RESPONSE_TARGETS)),
            rated=v[Counter.RATED],
            satisfied=v[Counter.SATISFIED],
            dissatisfied=v[Counter.DISSATISFIED],
            rating_score=v[Counter.RATING_SCORE],
        )


@dataclass
class Ledger:
    """Applies events the way the worker does, keeping cohort sums per (agent, day) in memory."""

    settings: Settings = field(default_factory=Settings)
    now_ms: int = at(23, 59, 59)
    states: dict[tuple[str, str], BuyerState] = field(default_factory=dict)
    by_day: dict[tuple[str, str, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * WIDTH)
    )
    by_start: dict[tuple[str, str, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * WIDTH)
    )
    waits: dict[tuple[str, str], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    histogram: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    outcomes: list[str] = field(default_factory=list)
    # As `rebuild` does (agents/processing/batch.py): each shop's retention_days, not the `28d` window.
    restore_history: bool = False

    def __post_init__(self) -> None:
        self.policies = PolicyBook(self.settings)

    def policy(self, shop: str = "s1") -> ShopPolicy:
        return self.policies(shop)

    def apply(self, *events: Event) -> Ledger:
        """Each event as its own batch, in the given order."""
        for event in events:
            self.apply_batch([event])
        return self

    def apply_batch(self, events: list[Event]) -> Ledger:
        groups: dict[tuple[str, str], list[Event]] = {}
        for event in events:
            groups.setdefault((event.shop_id, event.buyer_id), []).append(event)
        for (shop, buyer), group in groups.items():
            policy = self.policies(shop)
            state = self.states.setdefault((shop, buyer), BuyerState())
            days = policy.retention_days if self.restore_history else WINDOW_DAYS
            delta = apply_buyer_events(state, group, policy, Horizon.at(policy, self.now_ms, days))
            self.outcomes.extend(o.value for o in delta.outcomes)
            for (agent, start), vector in delta.cohorts.items():
                day = policy.calendar.day(start)
                for i in range(WIDTH):
                    self.by_day[(shop, agent, day)][i] += vector[i]
                    self.by_start[(shop, agent, start)][i] += vector[i]
            for agent, start in delta.waits.items():
                if start is None:
                    self.waits[(shop, agent)].pop(buyer, None)
                else:
                    self.waits[(shop, agent)][buyer] = start
            for (agent, bucket), n in delta.histogram.items():
                self.histogram[(shop, agent, bucket)] += n
        return self

    def apply_live(self, *events: Event) -> Ledger:
        """Each event as its own batch at its own time, as a live worker meets it."""
        for event in events:
            self.now_ms = max(self.now_ms, event.ts)
            self.apply_batch([event])
        return self

    def day(self, agent: str = "s1:a", shop: str = "s1", day: int = 0) -> Counts:
        policy = self.policies(shop)
        vector = self.by_day.get((shop, agent, policy.calendar.day(at(day=day))), [0] * WIDTH)
        return Counts.of(vector)


def agent_row(
    agent: str, oldest_wait_seconds: float = 0.0, first_response_5m: float | None = None
) -> AgentRow:
    """A floor row with empty windows, but for the values the alerts judge."""
    windows = {w: window_values([0] * WIDTH, TARGETS) for w in WINDOWS}
    windows["5m"].first_response_avg_seconds = first_response_5m
    return AgentRow(
        agent=agent,
        name=None,
        waiting_buyers=0,
        oldest_wait_seconds=oldest_wait_seconds,
        alert=False,
        oldest_waiting_buyer=None,
        agent_status="unknown",
        windows=windows,
    )


def shop_floor(
    shop: str, threshold: float, agents: list[AgentRow], *, in_service_hours: bool = True
) -> ShopFloor:
    return ShopFloor(
        shop=shop,
        name=None,
        as_of=0,
        alert_threshold_seconds=threshold,
        in_service_hours=in_service_hours,
        response_targets_seconds=list(TARGETS),
        agents=agents,
        totals=Totals(
            waiting_buyers=0,
            oldest_wait_seconds=0.0,
            windows={w: team_values([0] * WIDTH, [0] * WIDTH, TARGETS) for w in WINDOWS},
        ),
    )
