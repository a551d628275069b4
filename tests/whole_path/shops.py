"""The simulated shops: one `Rules` each (tests/reference.py), and the configuration they make.

The default set covers every judge × rule pair once, every attribution window, both refund
settings, service hours in two other time zones (one with a half-hour offset, one with a
daylight-saving change inside the run), an after-sale group, a block list, and one shop with
more agents than `max_agents_per_shop` (its gauges fold into `_other`). `grid=True` adds a shop
for every judge × rule × window (the longer run).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from tests.reference import Rules

JUDGES = ("created", "paid", "created_first")
RULES = ("last", "first", "all")
ATTRIBUTION_WINDOWS = ("same_day", "next_day", "24h", "3d")
# Small on purpose: the shop `big` has more agents, so its gauges and alerts meet the cap.
MAX_AGENTS_PER_SHOP = 4
ALERT_THRESHOLD_S = 15.0
PARTITIONS = 4
MESSAGES_TOPIC = "sim.messages"
ORDERS_TOPIC = "sim.orders"


@dataclass(frozen=True)
class ShopPlan:
    shop: str
    rules: Rules
    agents: tuple[str, ...]  # who answers the shop's buyers
    configured: bool = False  # listed (with names) in the configuration, so always on the floor
    buyers_per_day: int = 6

    @property
    def aftersale(self) -> tuple[str, ...]:
        return tuple(sorted(self.rules.aftersale_agents))

    @property
    def everyone(self) -> tuple[str, ...]:
        return (*self.agents, *self.aftersale)

    def agent_name(self, agent: str) -> str | None:
        return f"name of {agent}" if self.configured else None

    def agent_group(self, agent: str) -> str | None:
        return "aftersale" if agent in self.rules.aftersale_agents else None


def _plan(shop: str, agents: int = 3, **rules: object) -> ShopPlan:
    configured = bool(rules.pop("configured", False))
    buyers = int(rules.pop("buyers_per_day", 6))  # type: ignore[call-overload]
    names = tuple(f"{shop}:a{i}" for i in range(agents))
    return ShopPlan(shop, Rules(**rules), names, configured, buyers)  # type: ignore[arg-type]


def default_shops() -> tuple[ShopPlan, ...]:
    return (
        _plan("big", agents=6, judge="created", rule="last", window="same_day", buyers_per_day=9),
        _plan(
            "sh",
            judge="created",
            rule="first",
            window="next_day",
            deduct_refunds=True,
            aftersale_agents=frozenset({"sh:after"}),
            configured=True,
        ),
        _plan("c3", judge="created", rule="all", window="3d", targets=(1, 60, 15, 180)),
        _plan("pl", judge="paid", rule="last", window="24h", deduct_refunds=True, after_sale_days=1),
        _plan(
            "la",
            zone="America/Los_Angeles",
            service_hours="08:00-22:30",
            judge="paid",
            rule="first",
            window="same_day",
            targets=(30,),
        ),
        _plan("pa", judge="paid", rule="all", window="next_day", blocked_buyers=frozenset({"pa-b0"})),
        _plan(
            "in",
            zone="Asia/Kolkata",
            service_hours="09:30-24:00",
            judge="created_first",
            rule="last",
            window="3d",
            deduct_refunds=True,
        ),
        _plan("cf", judge="created_first", rule="first", window="24h", after_sale_days=0),
        _plan(
            "ca",
            service_hours="00:00-10:00",
            judge="created_first",
            rule="all",
            window="same_day",
            deduct_refunds=True,
            targets=(),
        ),
    )


def grid_shops() -> tuple[ShopPlan, ...]:
    """One more shop per judge × rule × window, with modest traffic each."""
    extra = tuple(
        _plan(f"g{n}", judge=judge, rule=rule, window=window, deduct_refunds=n % 2 == 0, buyers_per_day=3)
        for n, (judge, rule, window) in enumerate(itertools.product(JUDGES, RULES, ATTRIBUTION_WINDOWS))
    )
    return default_shops() + extra


def settings_yaml(plans: tuple[ShopPlan, ...]) -> str:
    """The worker's configuration for these shops (JSON is YAML)."""
    shops = {}
    for plan in plans:
        rules = plan.rules
        agents: dict[str, dict[str, str | None]] = {a: {"group": "aftersale"} for a in plan.aftersale}
        if plan.configured:
            agents |= {a: {"name": plan.agent_name(a)} for a in plan.agents}
            agents |= {a: {"name": plan.agent_name(a), "group": "aftersale"} for a in plan.aftersale}
        shops[plan.shop] = {
            "timezone": rules.zone,
            "after_sale_days": rules.after_sale_days,
            "service_hours": rules.service_hours,
            "response_targets_seconds": list(rules.targets),
            "alert_threshold_seconds": ALERT_THRESHOLD_S,
            "attribution": {
                "window": rules.window,
                "rule": rules.rule,
                "judge": rules.judge,
                "deduct_refunds": rules.deduct_refunds,
            },
            "block": sorted(rules.blocked_buyers),
            "agents": agents,
        }
    config = {
        "kafka": {"partitions": PARTITIONS, "topics": {"messages": MESSAGES_TOPIC, "orders": ORDERS_TOPIC}},
        "processing": {"max_agents_per_shop": MAX_AGENTS_PER_SHOP},
        "shops": shops,
    }
    return json.dumps(config)
