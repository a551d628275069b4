"""The floor as typed values: the output contract of interfaces.md (`/api/v1/floor`, `stats`).

As `events.py` types what comes in, this types what goes out. Values are built from the
store's sums (agents/exposure/floor.py), handed around as structs (gauges, alerts, the CLI)
and turned into JSON only at the HTTP and CLI edge, by `floor_json`.
"""

from __future__ import annotations

from typing import Any

import msgspec

# The floor's structs are plain data: nothing in them refers back to what holds them, so they
# make no reference cycle and reference counting frees them. `gc=False` leaves them out of the
# garbage collector's walk: the leader keeps the floor of every agent (10,000 agents: ~100,000
# of these), and each full collection walked every field of each one.


class WindowValues(msgspec.Struct, kw_only=True, gc=False):
    """One window's metrics, named as in metrics.md without the `kefu_` prefix.

    A ratio or an average with an empty denominator is None: absent, never 0.
    """

    consultations: int
    replied_consultations: int
    inquiries: int
    ordered_inquiries: int
    paid_inquiries: int
    reply_ratio: float | None
    first_response_avg_seconds: float | None
    response_avg_seconds: float | None
    consult_order_ratio: float | None
    consult_pay_ratio: float | None
    order_pay_ratio: float | None
    attributed_sales_yuan: float
    average_order_value_yuan: float | None
    # v2. Keyed by the target in seconds ("15"), in the shop's configured order.
    replied_within_ratio: dict[str, float | None]
    refunded_sales_yuan: float
    assisted_paid: int
    assisted_sales_yuan: float
    # v3 satisfaction, from the cohort counters like everything above.
    rated_consultations: int = 0
    rating_ratio: float | None = None
    satisfaction_ratio: float | None = None
    dissatisfied_consultations: int = 0
    average_rating_score: float | None = None
    # v3 agent status: time, not a cohort; the part of each status interval inside the window,
    # up to now (agents/core/status.py). For the team, the agents' sums.
    online_seconds: float = 0.0
    away_seconds: float = 0.0
    logins: int = 0


class TeamWindowValues(WindowValues, kw_only=True, gc=False):
    """The agents' values added up, plus what only the shop has: its orders and silent orders."""

    orders: int
    silent_orders: int
    silent_share: float | None
    silent_sales_yuan: float


class AgentRow(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    agent: str
    name: str | None
    waiting_buyers: int
    oldest_wait_seconds: float
    alert: bool
    oldest_waiting_buyer: str | None  # masked (events.md: personal data)
    # v3: online | away | offline from the login feed, `unknown` before its first event.
    agent_status: str
    windows: dict[str, WindowValues]
    group: str | None = None  # the agent's team in the configuration (`/floor?group=`)
    # The raw summed vectors per window, for the leader only: ratios cannot be merged, sums
    # can (the `_other` series). Left out of the JSON, as its default.
    sums: dict[str, tuple[int, ...]] | None = None


class Totals(msgspec.Struct, kw_only=True, gc=False):
    waiting_buyers: int
    oldest_wait_seconds: float
    windows: dict[str, TeamWindowValues]


class ShopFloor(msgspec.Struct, kw_only=True, gc=False):
    shop: str
    name: str | None
    as_of: int
    alert_threshold_seconds: float
    # Outside service hours no wait grows and nothing alerts (metrics.md v2).
    in_service_hours: bool
    response_targets_seconds: list[int]  # the keys of every window's replied_within_ratio
    agents: list[AgentRow]  # most urgent first: the oldest wait, then the agent id
    totals: Totals


def floor_json(floor: ShopFloor) -> dict[str, Any]:
    """The floor as the API's JSON object."""
    return msgspec.to_builtins(floor)


class TrendPoints(msgspec.Struct, kw_only=True):
    """The team's last hour, one value a minute, oldest first (absent: None)."""

    consultations: list[int]
    first_response_avg_seconds: list[float | None]
    consult_pay_ratio: list[float | None]
    waiting_buyers: list[int | None]  # sampled once a minute by the leader


class AgentTrend(msgspec.Struct, kw_only=True):
    """An agent's first response this hour against the hour before (lower is better)."""

    last_hour: float | None
    hour_before: float | None
    direction: str | None  # better | worse | same; None when either hour had no reply


class ShopTrend(msgspec.Struct, kw_only=True):
    """`/api/v1/floor/trend`: what the floor's sparklines and arrows draw, polled once a minute."""

    shop: str
    as_of: int
    minutes: int
    points: TrendPoints
    agents: dict[str, AgentTrend]
