"""The one number formatter and the one list of metric fields every report format reads.

A value has a kind (a count, a ratio shown as a percent, seconds, money, a score, a duration);
each output writes the kinds in its own style, side by side below, with one rule for all: an
absent value (a ratio or an average over an empty denominator) is `DASH`, never 0. The XLSX
keeps numbers as numbers (streams/render/sheets.py gives Excel's own number formats).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from streams.contract.floor import TeamWindowValues, WindowValues

DASH = "—"  # an absent value: never shown as 0

Kind = Literal["count", "percent", "seconds", "money", "score", "duration", "text"]
Cell = str | int | float | None  # None: absent (an empty ratio, a team-only value on an agent)

WIDE_TERMINAL = 120  # below this many columns a table keeps only what a lead looks at first
FULL_TERMINAL = 200  # from this many on `stats` shows v3's satisfaction and status too


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How one output writes one kind of number."""

    decimals: int | None = None  # None: the number exactly as the API writes it (`12.345`, `7`)
    percent: bool = False  # a ratio: times 100, with a % sign
    grouped: bool = False  # thousands separated by commas
    prefix: str = ""
    suffix: str = ""

    def __call__(self, value: float) -> str:
        if self.decimals is None:
            digits = str(value)
        else:
            scaled = value * 100 if self.percent else value
            digits = f"{scaled:{',' if self.grouped else ''}.{self.decimals}f}"
        return f"{self.prefix}{digits}{'%' if self.percent else ''}{self.suffix}"


def hours_minutes(seconds: float) -> str:
    """A time in a status as a lead reads it: `7h05m`, `0h00m`."""
    minutes = int(seconds) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"


Style = Mapping[Kind, Callable[[float], str]]

# `stats`: the floor API's numbers as they are (it rounds averages to a millisecond and money
# to a fen already), a ratio as a percent.
STATS_STYLE: Style = {
    "count": NumberFormat(),
    "percent": NumberFormat(decimals=2, percent=True),
    "seconds": NumberFormat(),
    "money": NumberFormat(),
    "score": NumberFormat(),
    "duration": hours_minutes,
}
# `report --format table` and the XLSX's column widths: fixed decimals so a column lines up,
# money grouped in thousands; no unit, the header says it.
TABLE_STYLE: Style = {
    "count": NumberFormat(),
    "percent": NumberFormat(decimals=2, percent=True),
    "seconds": NumberFormat(decimals=1),
    "money": NumberFormat(decimals=2, grouped=True),
    "score": NumberFormat(decimals=2),
    "duration": hours_minutes,
}
# The report page: a cell stands without its header on a printed card, so it carries its unit.
PAGE_STYLE: Style = {
    "count": NumberFormat(decimals=0, grouped=True),
    "percent": NumberFormat(decimals=2, percent=True),
    "seconds": NumberFormat(decimals=1, suffix=" 秒"),
    "money": NumberFormat(decimals=2, grouped=True, prefix="¥"),
    "score": NumberFormat(decimals=2),
    "duration": hours_minutes,
}


def show(value: Cell, kind: Kind, style: Style) -> str:
    """A value as people read it in `style`: `DASH` when absent, text as it is."""
    if value is None:
        return DASH
    if isinstance(value, str):
        return value
    return style[kind](value)


@dataclass(frozen=True, slots=True)
class Metric:
    """One number of an agent's or the team's window, and how each table heads it."""

    key: str  # the field of the floor and /api/v1/report: the report's English header too
    kind: Kind
    zh: str  # the full name shops know from their performance tools: the report's header
    short: str | None = None  # the `stats` header; None: `stats` leaves it out
    stats_from: int = 0  # `stats` shows it in a terminal at least this wide
    compact: bool = False  # kept in a narrow report table
    team_only: bool = False  # the shop's own numbers: absent on an agent's row
    target: int | None = None  # a replied-within column: its target in seconds

    def read(self, values: WindowValues) -> Cell:
        if self.target is not None:
            return values.replied_within_ratio.get(str(self.target))
        if self.team_only and not isinstance(values, TeamWindowValues):
            return None
        value: Cell = getattr(values, self.key)
        return value


def within(target: int, *, compact: bool = False) -> Metric:
    """The share replied within one of the shop's response targets (a column per target)."""
    header = f"{target}秒回复率"
    return Metric(f"replied_within_{target}s", "percent", header, header, 0, compact, target=target)


def headline_target(targets: Sequence[int]) -> int | None:
    """The replied-within target people look at first: 15 s, else the shop's first one."""
    if 15 in targets:
        return 15
    return targets[0] if targets else None


WIDE, FULL = WIDE_TERMINAL, FULL_TERMINAL  # short, so that each metric stays on one line below
# In the report's order: key, kind, the report's header, then `stats`' header and the width
# from which it shows. The replied-within columns, one per target, are not listed: each table
# puts them where its readers look for them (`within`).
METRICS: tuple[Metric, ...] = (
    Metric("consultations", "count", "咨询人数", "咨询", WIDE),
    Metric("replied_consultations", "count", "接待人数", "接待", WIDE),
    Metric("reply_ratio", "percent", "回复率", "回复率", 0, compact=True),
    Metric("first_response_avg_seconds", "seconds", "首次响应时间", "首响 s", 0, compact=True),
    Metric("response_avg_seconds", "seconds", "平均响应时间", "平均响应 s", WIDE),
    Metric("inquiries", "count", "询单人数", "询单", WIDE, compact=True),
    Metric("ordered_inquiries", "count", "询单→下单人数"),
    Metric("paid_inquiries", "count", "询单→付款人数"),
    Metric("consult_order_ratio", "percent", "询单→下单转化率"),
    Metric("consult_pay_ratio", "percent", "询单转化率", "询单转化率", 0, compact=True),
    Metric("order_pay_ratio", "percent", "付款转化率"),
    Metric("attributed_sales_yuan", "money", "客服销售额", "销售额", WIDE, compact=True),
    Metric("average_order_value_yuan", "money", "客单价"),
    Metric("refunded_sales_yuan", "money", "退款金额", "退款", WIDE),
    Metric("assisted_paid", "count", "协助付款人数", "协助", WIDE),
    Metric("assisted_sales_yuan", "money", "协助销售额"),
    Metric("rated_consultations", "count", "评价数"),
    Metric("rating_ratio", "percent", "评价率"),
    Metric("satisfaction_ratio", "percent", "满意度", "满意度", FULL, compact=True),
    Metric("dissatisfied_consultations", "count", "差评数", "差评", FULL),
    Metric("average_rating_score", "score", "平均评分"),
    Metric("online_seconds", "duration", "在线时长", "在线", FULL),
    Metric("away_seconds", "duration", "挂起时长", "挂起", FULL),
    Metric("logins", "count", "登录次数"),
    Metric("orders", "count", "全店订单数", team_only=True),
    Metric("silent_orders", "count", "静默下单数", team_only=True),
    Metric("silent_share", "percent", "静默下单占比", team_only=True),
    Metric("silent_sales_yuan", "money", "静默销售额", team_only=True),
)


def inserted_after(key: str, metrics: Sequence[Metric], extra: Sequence[Metric]) -> list[Metric]:
    """`metrics` with `extra` right after the one named `key`."""
    at = next(i for i, metric in enumerate(metrics) if metric.key == key) + 1
    return [*metrics[:at], *extra, *metrics[at:]]
