"""The report's columns, one table for the CSV, the XLSX and the `report` CLI table.

Headers carry the Chinese name shops know from their performance tools and the field name of
`/api/v1/report`, so a payroll sheet and the API can be matched column by column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from streams.contract.floor import TeamWindowValues, WindowValues
from streams.contract.report import TEAM, ReportRow, ReportTotals
from streams.render.floor_table import headline_target, hours_minutes

Kind = Literal["count", "ratio", "seconds", "yuan", "text", "score", "duration"]
Cell = str | int | float | None  # None: an empty cell (an absent ratio, a team-only value)
Subject = ReportRow | ReportTotals  # an agent's row or the team row


@dataclass(frozen=True, slots=True)
class ReportColumn:
    zh: str
    en: str
    kind: Kind
    get: Callable[[Subject, WindowValues], Cell]
    compact: bool = False  # kept in a narrow terminal
    team_only: bool = False  # the shop's numbers: empty on agent rows

    @property
    def header(self) -> str:
        return f"{self.zh} {self.en}"

    def value(self, subject: Subject) -> Cell:
        return self.get(subject, subject.metrics)


def _metric(zh: str, en: str, kind: Kind, compact: bool = False) -> ReportColumn:
    # The English header is the field name, so one name both labels and reads the column.
    return ReportColumn(zh, en, kind, lambda s, m: getattr(m, en), compact)


def _shop_metric(zh: str, en: str, kind: Kind) -> ReportColumn:
    def get(subject: Subject, metrics: WindowValues) -> Cell:
        return getattr(metrics, en) if isinstance(metrics, TeamWindowValues) else None

    return ReportColumn(zh, en, kind, get, team_only=True)


def _within(target: int, compact: bool) -> ReportColumn:
    key = str(target)
    return ReportColumn(
        f"{target}秒回复率",
        f"replied_within_{target}s",
        "ratio",
        lambda s, m: m.replied_within_ratio.get(key),
        compact,
    )


def _agent(subject: Subject, metrics: WindowValues) -> Cell:
    return subject.agent if isinstance(subject, ReportRow) else TEAM


def _name(subject: Subject, metrics: WindowValues) -> Cell:
    return subject.name if isinstance(subject, ReportRow) else None


def report_columns(targets: Sequence[int]) -> list[ReportColumn]:
    """Every column in order; one replied-within column per response target of the shop."""
    headline = headline_target(targets)
    return [
        ReportColumn("客服 ID", "agent", "text", _agent, compact=True),
        ReportColumn("姓名", "name", "text", _name, compact=True),
        _metric("咨询人数", "consultations", "count"),
        _metric("接待人数", "replied_consultations", "count"),
        _metric("回复率", "reply_ratio", "ratio", compact=True),
        _metric("首次响应时间", "first_response_avg_seconds", "seconds", compact=True),
        _metric("平均响应时间", "response_avg_seconds", "seconds"),
        *(_within(t, compact=t == headline) for t in targets),
        _metric("询单人数", "inquiries", "count", compact=True),
        _metric("询单→下单人数", "ordered_inquiries", "count"),
        _metric("询单→付款人数", "paid_inquiries", "count"),
        _metric("询单→下单转化率", "consult_order_ratio", "ratio"),
        _metric("询单转化率", "consult_pay_ratio", "ratio", compact=True),
        _metric("付款转化率", "order_pay_ratio", "ratio"),
        _metric("客服销售额", "attributed_sales_yuan", "yuan", compact=True),
        _metric("客单价", "average_order_value_yuan", "yuan"),
        _metric("退款金额", "refunded_sales_yuan", "yuan"),
        _metric("协助付款人数", "assisted_paid", "count"),
        _metric("协助销售额", "assisted_sales_yuan", "yuan"),
        _metric("评价数", "rated_consultations", "count"),
        _metric("评价率", "rating_ratio", "ratio"),
        _metric("满意度", "satisfaction_ratio", "ratio", compact=True),
        _metric("差评数", "dissatisfied_consultations", "count"),
        _metric("平均评分", "average_rating_score", "score"),
        _metric("在线时长", "online_seconds", "duration"),
        _metric("挂起时长", "away_seconds", "duration"),
        _metric("登录次数", "logins", "count"),
        _shop_metric("全店订单数", "orders", "count"),
        _shop_metric("静默下单数", "silent_orders", "count"),
        _shop_metric("静默下单占比", "silent_share", "ratio"),
        _shop_metric("静默销售额", "silent_sales_yuan", "yuan"),
    ]


def display(kind: Kind, value: Cell) -> str:
    """A value as people read it in a terminal: `1.09%`, `—` when absent."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if kind == "ratio":
        return f"{value * 100:.2f}%"
    if kind == "seconds":
        return f"{value:.1f}"
    if kind == "yuan":
        return f"{value:,.2f}"
    if kind == "score":
        return f"{value:.2f}"
    if kind == "duration":
        return hours_minutes(value)
    return str(value)
