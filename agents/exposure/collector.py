"""Window gauges and the first-response histogram, exposed from the latest floor snapshot.

The leader refreshes the snapshot once a second; other workers hold an empty one, so a
series is never exported twice. Ratios with an empty denominator yield no sample.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.core.projection import FIRST_RESPONSE_BUCKETS, WIDTH
from agents.core.statuses import STATUSES
from agents.core.values import window_values
from agents.core.windows import WINDOWS
from streams.contract.floor import AgentRow, ShopFloor, WindowValues

WINDOW_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("consultations", "kefu_consultations", "Consultations (咨询人数) that started in the window."),
    ("inquiries", "kefu_inquiries", "Inquiries (询单人数): replied, not after-sale consultations."),
    ("replied_consultations", "kefu_replied_consultations", "Replied consultations (接待人数)."),
    ("reply_ratio", "kefu_reply_ratio", "Replied / consultations (回复率)."),
    ("first_response_avg_seconds", "kefu_first_response_avg_seconds", "Mean first response (首次响应时间)."),
    ("response_avg_seconds", "kefu_response_avg_seconds", "Mean response over ended waits (平均响应时间)."),
    ("consult_order_ratio", "kefu_consult_order_ratio", "Ordered / inquiries (询单→下单)."),
    ("consult_pay_ratio", "kefu_consult_pay_ratio", "Paid / inquiries (询单转化率)."),
    ("order_pay_ratio", "kefu_order_pay_ratio", "Paid / ordered (付款转化率)."),
    (
        "attributed_sales_yuan",
        "kefu_attributed_sales_yuan",
        "Credited paid order amounts (客服销售额), yuan.",
    ),
    (
        "refunded_sales_yuan",
        "kefu_refunded_sales_yuan",
        "Refunded of the credited paid orders (退款金额), yuan.",
    ),
    ("assisted_paid", "kefu_assisted_paid", "Inquiries that assisted a paid order (协助付款人数)."),
    (
        "assisted_sales_yuan",
        "kefu_assisted_sales_yuan",
        "Amounts of the paid orders assisted (协助销售额), yuan.",
    ),
    ("rated_consultations", "kefu_rated_consultations", "Consultations rated by their buyer (评价数)."),
    ("satisfaction_ratio", "kefu_satisfaction_ratio", "Rated 4 or 5 / rated (满意度)."),
    ("rating_ratio", "kefu_rating_ratio", "Rated / replied consultations (评价率)."),
    ("dissatisfied_consultations", "kefu_dissatisfied_consultations", "Rated 1 or 2 (差评数)."),
    ("average_rating_score", "kefu_average_rating_score", "Mean score of the rated (平均评分)."),
    ("online_seconds", "kefu_online_seconds", "Seconds online or away in the window (在线时长)."),
    ("away_seconds", "kefu_away_seconds", "Seconds away in the window (挂起时长)."),
)
SHOP_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("orders", "kefu_shop_orders", "Orders created in the window (shop level)."),
    ("silent_orders", "kefu_silent_orders", "Orders credited to no inquiry (静默下单)."),
    ("silent_share", "kefu_silent_share", "Silent orders / all orders."),
    ("silent_sales_yuan", "kefu_silent_sales_yuan", "Paid amounts of silent orders, yuan."),
)
WITHIN_HELP = "Consultations first replied within `within` seconds (service clock) / all (N秒回复率)."
WAITING_HELP = "Buyers waiting for a reply now (等待中)."
OLDEST_HELP = "Age of the oldest unanswered wait (最长等待)."
THRESHOLD_HELP = "The shop's wait alert threshold."
SERVICE_OPEN_HELP = "1 inside the shop's service hours, 0 outside: no wait alert fires outside them."
HISTOGRAM_HELP = "First response per replied consultation."
UNEXPORTED_HELP = "Shops past processing.max_shops: no floor gauges and no alerts for them."
OVERFLOW_AGENT = "_other"
# The enum pattern (prometheus_client's Enum): every status is a series, 1 for the current one.
STATUS_HELP = "The agent's status now (状态): 1 for it, 0 for the others of online, away, offline, unknown."


@dataclass
class FloorSnapshot:
    floors: list[ShopFloor] = field(default_factory=list)
    histograms: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    unexported_shops: int = 0  # shops past processing.max_shops (cap_shops)


@dataclass
class _FloorFamilies:
    """The gauge families of one collection, filled floor by floor."""

    windows: dict[str, GaugeMetricFamily]  # WINDOW_GAUGES by WindowValues field
    shops: dict[str, GaugeMetricFamily]  # SHOP_GAUGES by TeamWindowValues field
    within: GaugeMetricFamily
    waiting: GaugeMetricFamily
    oldest: GaugeMetricFamily
    status: GaugeMetricFamily
    threshold: GaugeMetricFamily
    in_service: GaugeMetricFamily

    @classmethod
    def empty(cls) -> _FloorFamilies:
        return cls(
            windows={
                key: GaugeMetricFamily(name, text, labels=["shop", "agent", "window"])
                for key, name, text in WINDOW_GAUGES
            },
            shops={
                key: GaugeMetricFamily(name, text, labels=["shop", "window"])
                for key, name, text in SHOP_GAUGES
            },
            within=GaugeMetricFamily(
                "kefu_replied_within_ratio", WITHIN_HELP, labels=["shop", "agent", "window", "within"]
            ),
            waiting=GaugeMetricFamily("kefu_waiting_buyers", WAITING_HELP, labels=["shop", "agent"]),
            oldest=GaugeMetricFamily("kefu_oldest_wait_seconds", OLDEST_HELP, labels=["shop", "agent"]),
            status=GaugeMetricFamily("kefu_agent_status", STATUS_HELP, labels=["shop", "agent", "status"]),
            threshold=GaugeMetricFamily("kefu_alert_threshold_seconds", THRESHOLD_HELP, labels=["shop"]),
            in_service=GaugeMetricFamily("kefu_service_open", SERVICE_OPEN_HELP, labels=["shop"]),
        )

    def add_floor(self, floor: ShopFloor) -> None:
        shop = floor.shop
        self.threshold.add_metric([shop], floor.alert_threshold_seconds)
        self.in_service.add_metric([shop], 1.0 if floor.in_service_hours else 0.0)
        for row in floor.agents:
            self._add_row(shop, row)
        for window in WINDOWS:
            team = floor.totals.windows[window]
            for key, family in self.shops.items():
                value = getattr(team, key)
                if value is not None:
                    family.add_metric([shop, window], value)

    def _add_row(self, shop: str, row: AgentRow) -> None:
        agent = row.agent
        self.waiting.add_metric([shop, agent], row.waiting_buyers)
        self.oldest.add_metric([shop, agent], row.oldest_wait_seconds)
        if agent != OVERFLOW_AGENT:  # `_other` is many agents: it has no one status
            for name in STATUSES:
                self.status.add_metric([shop, agent, name], 1.0 if name == row.agent_status else 0.0)
        for window in WINDOWS:
            values = row.windows[window]
            for key, family in self.windows.items():
                value = getattr(values, key)
                if value is not None:
                    family.add_metric([shop, agent, window], value)
            for target, ratio in values.replied_within_ratio.items():
                if ratio is not None:
                    self.within.add_metric([shop, agent, window, target], ratio)

    def in_order(self) -> Iterator[GaugeMetricFamily]:
        yield from self.windows.values()
        yield from self.shops.values()
        yield from (self.within, self.waiting, self.oldest, self.status, self.threshold, self.in_service)


class FloorCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = FloorSnapshot()

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        families = _FloorFamilies.empty()
        for floor in snapshot.floors:
            families.add_floor(floor)
        yield from families.in_order()
        yield self._histogram(snapshot)
        yield GaugeMetricFamily("kefu_unexported_shops", UNEXPORTED_HELP, value=snapshot.unexported_shops)

    @staticmethod
    def _histogram(snapshot: FloorSnapshot) -> HistogramMetricFamily:
        labels = ["shop", "agent"]
        family = HistogramMetricFamily("kefu_first_response_seconds", HISTOGRAM_HELP, labels=labels)
        for (shop, agent), counts in snapshot.histograms.items():
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for index, bound in enumerate(FIRST_RESPONSE_BUCKETS):
                cumulative += counts.get(str(index), 0)
                buckets.append((str(float(bound)), cumulative))
            cumulative += counts.get(str(len(FIRST_RESPONSE_BUCKETS)), 0)
            buckets.append(("+Inf", cumulative))
            family.add_metric([shop, agent], buckets, sum_value=counts.get("sum", 0) / 1000)
        return family


def cap_agents(floor: ShopFloor, max_agents: int, preferred: Collection[str] = ()) -> ShopFloor:
    """Keep label cardinality bounded: agents past `max_agents` are reported as one `_other`.

    `preferred` (the shop's configured agents) keep their own series first, so a flood of
    unknown agent ids cannot push them into `_other`; the rest go in id order (stable
    series), and an agent whose id is `_other` into `_other`. The floor must come from
    `FloorReader.floor(..., with_sums=True)`: `_other` gets the summed counts, and ratios and
    averages recomputed from the summed numerators and denominators, exactly what one agent
    with all of that traffic would show.
    """
    rows = floor.agents
    if len(rows) <= max_agents:
        return floor
    targets = tuple(floor.response_targets_seconds)
    # An agent whose id is `_other` itself (events.md allows any id) is always folded: kept, it
    # was a second series with the fold's very labels.
    ranked = sorted(rows, key=lambda r: (r.agent == OVERFLOW_AGENT, r.agent not in preferred, r.agent))
    kept, rest = ranked[: max_agents - 1], ranked[max_agents - 1 :]
    sums = {w: [0] * WIDTH for w in WINDOWS}
    for row in rest:
        if row.sums is None:
            raise ValueError("cap_agents needs a floor read with_sums=True")
        for w in WINDOWS:
            sums[w] = [a + b for a, b in zip(sums[w], row.sums[w], strict=True)]
    merged = AgentRow(
        agent=OVERFLOW_AGENT,
        name=None,
        waiting_buyers=sum(r.waiting_buyers for r in rest),
        oldest_wait_seconds=max(r.oldest_wait_seconds for r in rest),
        alert=any(r.alert for r in rest),
        oldest_waiting_buyer=None,
        agent_status="unknown",
        windows={w: _with_status_time(window_values(sums[w], targets), rest, w) for w in WINDOWS},
        sums={w: tuple(vector) for w, vector in sums.items()},
    )
    order = {row.agent: index for index, row in enumerate(rows)}  # keep the floor's own order
    return msgspec.structs.replace(floor, agents=[*sorted(kept, key=lambda r: order[r.agent]), merged])


def _with_status_time(values: WindowValues, rows: Sequence[AgentRow], window: str) -> WindowValues:
    """Time in a status is no cohort counter: `_other`'s is its agents' times added up."""
    return msgspec.structs.replace(
        values,
        online_seconds=round(sum(r.windows[window].online_seconds for r in rows), 3),
        away_seconds=round(sum(r.windows[window].away_seconds for r in rows), 3),
        logins=sum(r.windows[window].logins for r in rows),
    )


def cap_shops(shops: Sequence[str], configured: Collection[str], max_shops: int) -> tuple[list[str], int]:
    """The shops the leader watches: configured ones always, then discovered ones in id order.

    A shop id comes from event data, so a flood of new ids would otherwise add series
    (and a Redis read per shop and second) without bound. Returns (shops, how many left out).
    """
    known = sorted(s for s in shops if s in configured)
    discovered = sorted(s for s in shops if s not in configured)
    room = max(0, max_shops - len(known))
    return known + discovered[:room], max(0, len(discovered) - room)


def merge_histograms(histograms: Iterable[dict[str, int]]) -> dict[str, int]:
    """Bucket counts and sums add up exactly: the `_other` agent's first-response histogram."""
    merged: dict[str, int] = {}
    for counts in histograms:
        for key, value in counts.items():
            merged[key] = merged.get(key, 0) + value
    return merged
