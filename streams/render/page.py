"""The date-range report (日报/周报/月报) as one self-contained HTML page for shop managers.

Everything the page shows is in the file: inline CSS, charts as inline SVG with the glyphs as
paths, no script and no URL, so it can be mailed, archived, opened offline and printed on A4.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache, partial
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, Template, select_autoescape
from markupsafe import Markup

from streams.contract.floor import TeamWindowValues
from streams.contract.report import PreviousPeriod, Report
from streams.render.charts import (
    agent_sales_chart,
    daily_response_chart,
    first_response_histogram,
    ranked,
    satisfaction_chart,
)
from streams.render.formats import DASH, PAGE_STYLE, Kind, headline_target, show


def percent(value: float | None) -> str:
    return show(value, "percent", PAGE_STYLE)


def money(value: float | None) -> str:
    return show(value, "money", PAGE_STYLE)


def seconds(value: float | None) -> str:
    return show(value, "seconds", PAGE_STYLE)


def count(value: float | None) -> str:
    return show(value, "count", PAGE_STYLE)


def duration(value: float | None) -> str:
    return show(value, "duration", PAGE_STYLE)


@dataclass(frozen=True)
class Headline:
    label: str
    english: str
    value: str
    previous: str
    arrow: str  # ▲ ▼ ＝, or "" when there is nothing to compare
    change: str  # the change in words: the page never relies on colour alone
    tone: str  # better, worse, neutral: the colour
    link: str = ""  # the list behind the number (/details?...), "" when it has none or no server


# (label, English, field, kind, whether higher is better: None for volumes, neither good nor bad)
HEADLINES: tuple[tuple[str, str, str, Kind, bool | None], ...] = (
    ("咨询人数", "consultations", "consultations", "count", None),
    ("回复率", "reply ratio", "reply_ratio", "percent", True),
    ("首次响应", "first response", "first_response_avg_seconds", "seconds", False),
    ("{n}秒回复率", "replied within {n} s", "within", "percent", True),
    ("询单人数", "inquiries", "inquiries", "count", None),
    ("询单转化率", "consult→pay", "consult_pay_ratio", "percent", True),
    ("客服销售额", "attributed sales", "attributed_sales_yuan", "money", True),
    ("满意度", "satisfaction", "satisfaction_ratio", "percent", True),
    ("静默下单", "silent orders", "silent_orders", "count", None),
)


# The list (明细) behind each number of the page: the field, the kind of its list. A ratio links
# to the list of what it misses (a reply ratio to the unreplied), a count to its own rows.
LISTS: dict[str, str] = {
    "reply_ratio": "unreplied",
    "within": "slow",
    "consult_pay_ratio": "lost",
    "ordered_inquiries": "ordered_unpaid",
    "paid_inquiries": "paid",
    "attributed_sales_yuan": "paid",
    "refunded_sales_yuan": "refunded",
    "assisted_paid": "assisted",
    "dissatisfied_consultations": "dissatisfied",
    "silent_orders": "silent_orders",
}


def list_link(report: Report, field: str, agent: str | None = None, over: str | None = None) -> str:
    """The address of the list behind `field` (an agent's, or the team's), relative to the
    worker that served the page: the report's own shop and days, nothing else."""
    kind = LISTS.get(field)
    if kind is None:
        return ""
    query = [("shop", report.shop)]
    if agent is not None:
        query.append(("agent", agent))
    query += [("kind", kind), ("from", report.from_), ("to", report.to)]
    if kind == "slow" and over is not None:
        query.append(("over", over))
    return "/details?" + urlencode(query)


def _no_link(field: str, agent: str | None = None, over: str | None = None) -> str:
    return ""


def _field(values: TeamWindowValues, field: str, threshold_key: str) -> float | None:
    if field == "within":
        return values.replied_within_ratio.get(threshold_key)
    value: float | None = getattr(values, field)
    return value


def _change(kind: Kind, now: float, before: float) -> str:
    # A change, signed, in the page's units: a ratio's in percentage points.
    delta = now - before
    if kind == "percent":
        return f"{delta * 100:+.2f} 个百分点"
    if kind == "seconds":
        return f"{delta:+.1f} 秒"
    relative = f"（{delta / before:+.1%}）" if before else ""
    if kind == "money":
        return f"{'+' if delta >= 0 else '−'}¥{abs(delta):,.2f}{relative}"
    return f"{delta:+,.0f}{relative}"


def headline(
    spec: tuple[str, str, str, Kind, bool | None],
    team: TeamWindowValues,
    previous: TeamWindowValues | None,
    within_target: int | None,
) -> Headline:
    """`within_target`: the replied-within target the headline shows (15 s, else the shop's first)."""
    label, english, field, kind, higher_better = spec
    key = DASH if within_target is None else str(within_target)
    now = _field(team, field, key)
    before = None if previous is None else _field(previous, field, key)
    names = (label.format(n=key), english.format(n=key))
    shown = (show(now, kind, PAGE_STYLE), show(before, kind, PAGE_STYLE))
    if now is None or before is None:
        return Headline(*names, *shown, "", "无可比数据", "neutral")
    text = _change(kind, now, before)
    if abs(now - before) < 1e-9:
        return Headline(*names, *shown, "＝", "持平", "neutral")
    arrow = "▲" if now > before else "▼"
    if higher_better is None:
        tone, verdict = "neutral", "增加" if now > before else "减少"
    else:
        tone = "better" if (now > before) == higher_better else "worse"
        verdict = "改善" if tone == "better" else "变差"
    return Headline(*names, *shown, arrow, f"{text} · {verdict}", tone)


def period_kind(first: date, last: date) -> str:
    """日报 for a day, 周报 for seven days, 月报 for one whole calendar month, else 报表."""
    length = (last - first).days + 1
    if length == 1:
        return "日报"
    whole_month = first.day == 1 and (first.year, first.month) == (last.year, last.month)
    if whole_month and last.day == calendar.monthrange(last.year, last.month)[1]:
        return "月报"
    return "周报" if length == 7 else "报表"


def local_time(as_of_ms: int, zone_name: str) -> str:
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone, zone_name = ZoneInfo("UTC"), "UTC"
    moment = datetime.fromtimestamp(as_of_ms / 1000, tz=zone)
    return f"{moment:%Y-%m-%d %H:%M:%S}（{zone_name}）"


@cache
def _template() -> Template:
    environment = Environment(
        loader=PackageLoader("streams.render", "templates"), autoescape=select_autoescape(), trim_blocks=True
    )
    environment.filters.update(percent=percent, money=money, seconds=seconds, count=count, duration=duration)
    return environment.get_template("report.html")


def render_report_page(
    report: Report,
    previous: PreviousPeriod | None,
    *,
    threshold_seconds: float = 15.0,
    lists_from: str | None = None,
) -> str:
    """The report as one HTML page; `previous` is the team over the period it compares with
    (the month before a 月报, else as many days just before), None when it is not available
    (then nothing is compared). `lists_from` is the oldest day the lists keep (the page a worker
    serves): when the report starts on or after it, every number that a list explains links to
    it, and otherwise the page says why not; a file written by `report --format html` has no
    server behind it, so it has no links."""
    first, last = date.fromisoformat(report.from_), date.fromisoformat(report.to)
    length = (last - first).days + 1
    team = report.totals.metrics
    before = previous.team if previous is not None else None
    within_target = headline_target(report.response_targets_seconds)
    linked = lists_from is not None and report.from_ >= lists_from  # ISO days order as text
    link = partial(list_link, report) if linked else _no_link
    charts = [
        agent_sales_chart(report.agents),
        daily_response_chart(report.days, threshold_seconds=threshold_seconds),
        satisfaction_chart(report.agents),
        first_response_histogram(report.totals.first_response_buckets, threshold_seconds=threshold_seconds),
    ]
    return _template().render(
        report=report,
        kind=period_kind(first, last),
        shop_label=f"{report.name}（{report.shop}）" if report.name else report.shop,
        length=length,
        previous_name=previous_name(previous) if previous is not None else "",
        has_previous=previous is not None,
        generated=local_time(report.as_of, report.timezone),
        headlines=[
            replace(
                headline(spec, team, before, within_target),
                link=link(spec[2], None, None if within_target is None else str(within_target)),
            )
            for spec in HEADLINES
        ],
        link=link,
        has_links=linked,
        lists_from=lists_from,
        targets=[str(target) for target in report.response_targets_seconds],
        rows=ranked(report.agents),
        team=team,
        charts=[Markup(chart) for chart in charts],  # our own SVG, its text drawn as paths
    )


def previous_name(previous: PreviousPeriod) -> str:
    """The compared period as a manager says it: 上月（2026-10-01 至 2026-10-31）, 前一天, 上周…"""
    first, last = date.fromisoformat(previous.from_), date.fromisoformat(previous.to)
    days = (last - first).days + 1
    span = f"{first} 至 {last}"
    if first.day == 1 and (last + timedelta(days=1)).day == 1:
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        return f"上月（{span}）" if months == 1 else f"前 {months} 个月（{span}）"
    if days == 1:
        return f"前一天（{first}）"
    if days == 7 and first.weekday() == 0:
        return f"上周（{span}，周一至周日）"
    return f"前 {days} 天（{span}）"
