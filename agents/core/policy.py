"""Per-shop rules resolved from the settings: time zone, filters, thresholds, attribution."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from agents.core.service_clock import ServiceClock
from config.calendar import MS_PER_DAY, MS_PER_HOUR, BusinessCalendar, calendar_for
from config.settings import (
    DEFAULT_DETAILS_DAYS,
    Settings,
    ShopSettings,
    parse_attribution_window,
    parse_service_hours,
)

AttributionRule = Literal["first", "last", "all"]
AttributionWindow = int | Literal["same_day", "next_day"]
JudgingMoment = Literal["created", "paid", "created_first"]


@dataclass(frozen=True, slots=True)
class ShopPolicy:
    shop_id: str
    name: str | None
    calendar: BusinessCalendar
    alert_threshold_seconds: float
    after_sale_ms: int
    attribution_window: AttributionWindow
    attribution_rule: AttributionRule
    block: re.Pattern[str] | None
    aftersale_agents: frozenset[str]
    clock: ServiceClock  # response latencies count only service hours (metrics.md v2)
    response_targets_seconds: tuple[int, ...]
    response_targets_ms: tuple[int, ...]
    judge: JudgingMoment
    deduct_refunds: bool
    retention_days: int  # day buckets are kept this many business days (reports)
    details_days: int  # the drill-down lists are kept this many (at most retention_days)
    # A wait still open this long leaves the live queue unanswered (processing.wait_limit_hours).
    wait_limit_ms: int = 24 * MS_PER_HOUR
    # A rating rates a consultation that started at most this many business days before it
    # (events.md v3).
    rating_days: int = 3
    agent_names: dict[str, str] = field(default_factory=dict)
    agent_groups: dict[str, str] = field(default_factory=dict)  # the floor's `?group=` teams

    def is_blocked(self, buyer_id: str) -> bool:
        return self.block is not None and self.block.match(buyer_id) is not None


def _compile_block(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def resolve_policy(settings: Settings, shop_id: str) -> ShopPolicy:
    defaults = settings.defaults
    shop = settings.shops.get(shop_id, ShopSettings())
    attribution = shop.attribution.over(defaults.attribution) if shop.attribution else defaults.attribution
    after_sale_days = defaults.after_sale_days if shop.after_sale_days is None else shop.after_sale_days
    calendar = calendar_for(shop.timezone or defaults.timezone)
    hours = shop.service_hours or defaults.service_hours
    targets = defaults.response_targets_seconds
    if shop.response_targets_seconds is not None:
        targets = shop.response_targets_seconds
    return ShopPolicy(
        shop_id=shop_id,
        name=shop.name,
        calendar=calendar,
        alert_threshold_seconds=shop.alert_threshold_seconds or defaults.alert_threshold_seconds,
        after_sale_ms=after_sale_days * MS_PER_DAY,
        attribution_window=parse_attribution_window(attribution.window),
        attribution_rule=attribution.rule,
        clock=ServiceClock(calendar, *parse_service_hours(hours)) if hours else ServiceClock(calendar),
        response_targets_seconds=tuple(targets),
        response_targets_ms=tuple(seconds * 1000 for seconds in targets),
        judge=attribution.judge,
        deduct_refunds=attribution.deduct_refunds,
        retention_days=shop.retention_days or defaults.retention_days,
        details_days=min(
            shop.details_days or defaults.details_days or DEFAULT_DETAILS_DAYS,
            shop.retention_days or defaults.retention_days,
        ),
        block=_compile_block(shop.block),
        aftersale_agents=frozenset(a for a, s in shop.agents.items() if s.group == "aftersale"),
        wait_limit_ms=int(settings.processing.wait_limit_hours * MS_PER_HOUR),
        rating_days=shop.rating_days or defaults.rating_days,
        agent_names={a: s.name for a, s in shop.agents.items() if s.name},
        agent_groups={a: s.group for a, s in shop.agents.items() if s.group},
    )


# Unconfigured shops whose policy is kept ready: more than the metrics export (max_shops), so
# the shops that send traffic stay in; ids that only HTTP clients named push each other out.
UNCONFIGURED_KEPT = 256


class PolicyBook:
    """Resolved policies: one per configured shop, built lazily; any other shop takes the
    defaults, resolved once and copied with its id. Shop ids come from events and HTTP requests
    too, so at most UNCONFIGURED_KEPT of those copies are kept, the oldest dropped first."""

    def __init__(self, settings: Settings) -> None:
        self.update(settings)

    def update(self, settings: Settings) -> None:
        """New shop rules (block lists, groups, thresholds) for events processed from now on."""
        self.settings = settings
        self._policies: dict[str, ShopPolicy] = {}
        self._unconfigured: dict[str, ShopPolicy] = {}
        self._defaults = resolve_policy(settings, "")

    def __len__(self) -> int:
        """How many policies are kept: the configured shops' and the unconfigured copies."""
        return len(self._policies) + len(self._unconfigured)

    def __call__(self, shop_id: str) -> ShopPolicy:
        policy = self._policies.get(shop_id) or self._unconfigured.get(shop_id)
        if policy is not None:
            return policy
        if shop_id in self.settings.shops:
            policy = self._policies[shop_id] = resolve_policy(self.settings, shop_id)
            return policy
        if len(self._unconfigured) >= UNCONFIGURED_KEPT:
            del self._unconfigured[next(iter(self._unconfigured))]
        policy = self._unconfigured[shop_id] = replace(self._defaults, shop_id=shop_id)
        return policy
