"""The report page (日报/周报/月报): one self-contained HTML file a shop manager can open,
mail and print, with the team against the previous period, the ranked agents and three charts."""

from __future__ import annotations

import re
import warnings
from datetime import date

import msgspec
import pytest

from agents.core.policy import resolve_policy
from agents.core.projection import DAY_FIELDS
from agents.core.report_range import DayRange
from agents.exposure.report import assemble_report
from config.settings import settings_from_yaml
from streams.contract.floor import TeamWindowValues
from streams.contract.report import PreviousPeriod, Report
from streams.render.charts import within_share
from streams.render.page import (
    HEADLINES,
    headline,
    money,
    percent,
    period_kind,
    previous_name,
    render_report_page,
    seconds,
)
from tests.report_samples import FIRST_DAY, SHOP_YAML, sample_report

# Anything that would make the browser fetch: a URL outside an xmlns declaration (which names
# a namespace, never fetched), or a tag's src/href or a CSS url() that is not a fragment of the
# page itself (the charts' glyphs are `<use xlink:href="#...">`).
EXTERNAL = re.compile(
    r"""(?<!xmlns=")(?<!xmlns:xlink=")https?://"""
    r"""|<[^>]*\s(?:xlink:)?(?:src|href)\s*=\s*(?!["']?#)|url\(\s*(?!["']?#)"""
)


def silent_report(days: int = 3) -> Report:
    """A range without any traffic: all zeros, every ratio and average absent."""
    policy = resolve_policy(settings_from_yaml(SHOP_YAML), "s1")
    agents = ["s1:A", "s1:B"]
    span = DayRange(FIRST_DAY, FIRST_DAY + days - 1)
    empty = [0] * len(DAY_FIELDS)
    return assemble_report(policy, span, 1, agents, [[empty] * days for _ in agents], [empty] * days)


@pytest.fixture(scope="module")
def week() -> Report:
    return sample_report(days=7, agents=5)


@pytest.fixture(scope="module")
def previous() -> TeamWindowValues:
    return sample_report(days=7, agents=4).totals.metrics


@pytest.fixture(scope="module")
def page(week: Report, previous: TeamWindowValues) -> str:
    return render_report_page(week, PreviousPeriod(from_="2026-10-25", to="2026-10-31", team=previous))


def test_values_are_formatted_as_managers_read_them() -> None:
    assert percent(3 / 274) == "1.09%"  # metrics.md's worked example
    assert money(1234.5) == "¥1,234.50"
    assert seconds(9.75) == "9.8 秒"
    assert percent(None) == money(None) == seconds(None) == "—"


def test_the_title_names_the_period() -> None:
    assert period_kind(date(2026, 11, 3), date(2026, 11, 3)) == "日报"
    assert period_kind(date(2026, 11, 2), date(2026, 11, 8)) == "周报"
    assert period_kind(date(2026, 11, 1), date(2026, 11, 30)) == "月报"
    assert period_kind(date(2028, 2, 1), date(2028, 2, 29)) == "月报"
    assert period_kind(date(2026, 11, 2), date(2026, 12, 1)) == "报表"  # 30 days, not a month
    assert period_kind(date(2026, 11, 1), date(2026, 11, 10)) == "报表"


def test_the_week_page_has_its_title_headings_and_team_numbers(page: str, week: Report) -> None:
    assert '<html lang="zh-CN">' in page and '<meta charset="utf-8">' in page
    assert "@page { size: A4; margin: 12mm; }" in page
    assert "旗舰店（s1） 周报" in page
    assert "2026-11-01 至 2026-11-07" in page and "Asia/Shanghai" in page
    assert "生成于 2025-12-03 02:26:40" in page  # as_of in the shop's zone, UTC+8
    for heading in (
        "团队概览",
        "客服排名",
        "图表",
        "咨询人数",
        "回复率",
        "首次响应",
        "15秒回复率",
        "180秒回复率",
    ):
        assert heading in page
    for heading in ("询单人数", "付款人数", "询单转化率", "客服销售额", "退款金额", "协助付款", "静默下单"):
        assert heading in page
    team = week.totals.metrics
    assert f"{team.consultations:,}" in page
    assert f"{team.reply_ratio * 100:.2f}%" in page  # type: ignore[operator]
    assert f"¥{team.attributed_sales_yuan:,.2f}" in page
    assert f">{team.silent_orders}<" in page
    assert page.count("<svg") == 4
    for chart in ("chart-agents", "chart-daily", "chart-satisfaction", "chart-histogram"):
        assert f'id="{chart}"' in page


def test_agents_are_ranked_by_sales_with_the_team_row_last(page: str, week: Report) -> None:
    by_sales = sorted(week.agents, key=lambda row: -row.metrics.attributed_sales_yuan)
    assert re.findall(r'<tr data-agent="([^"]+)">', page) == [row.agent for row in by_sales]
    assert by_sales[0].agent != week.agents[0].agent  # the fixture's id order is not the ranking
    body = page.split("<tbody>")[1]
    assert body.index("团队合计") > body.index(by_sales[-1].agent)
    assert "小美" in body and "s1:E" in body  # named and unnamed agents


def test_the_page_fetches_nothing(page: str) -> None:
    assert EXTERNAL.findall(page) == []
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert EXTERNAL.search('<img src="x.png">') and EXTERNAL.search('<a href="https://cdn.example">')
    assert EXTERNAL.search('<use xlink:href="http://x/g.svg#a"/>') and EXTERNAL.search("url(x.woff2)")
    assert not EXTERNAL.search('<svg xmlns="http://www.w3.org/2000/svg"><use xlink:href="#g1"/>')
    assert not EXTERNAL.search('<p>&lt;img src=x&gt;</p><g clip-path="url(#p1)">')


def test_the_change_against_the_previous_period_is_shown(page: str, previous: TeamWindowValues) -> None:
    assert "与前 7 天（2026-10-25 至 2026-10-31）对比" in page
    assert f"上期 {previous.consultations:,}" in page
    assert "个百分点" in page and ("▲" in page or "▼" in page)


def test_lower_first_response_is_better_and_said_in_words(previous: TeamWindowValues) -> None:
    spec = next(spec for spec in HEADLINES if spec[2] == "first_response_avg_seconds")
    slower = msgspec.structs.replace(previous, first_response_avg_seconds=20.0)
    faster = msgspec.structs.replace(previous, first_response_avg_seconds=8.0)
    card = headline(spec, faster, slower, 15)
    assert (card.arrow, card.tone, card.change) == ("▼", "better", "-12.0 秒 · 改善")
    card = headline(spec, slower, faster, 15)
    assert (card.arrow, card.tone, card.change) == ("▲", "worse", "+12.0 秒 · 变差")


def test_without_a_previous_period_nothing_is_compared(week: Report) -> None:
    page = render_report_page(week, None)
    assert "无上期数据，不作对比" in page
    assert page.count("上期 —") == len(HEADLINES)
    assert "▲" not in page and "▼" not in page


def test_a_one_day_report_is_a_daily_report_and_draws_its_chinese_labels() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Glyph ... missing from font" among them
        page = render_report_page(sample_report(days=1, agents=3), None)
    assert "旗舰店（s1） 日报" in page and "（1 天）" in page
    assert page.count("<svg") == 4


def test_a_range_without_traffic_shows_absent_values_not_zeros() -> None:
    report = silent_report()
    assert sum(report.totals.first_response_buckets.values()) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the "—" and "≤" of absent values and buckets are drawn too
        page = render_report_page(
            report, PreviousPeriod(from_=report.from_, to=report.to, team=report.totals.metrics)
        )
    assert page.count("<svg") == 4
    team_row = page.split('<tr class="team">')[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">([^<]*)</td>', team_row) == [
        "0", "0", "—", "—", "—", "—", "0", "0", "—", "¥0.00", "¥0.00", "0", "—", "0", "0h00m",
    ]  # fmt: skip
    assert "无可比数据" in page


def test_html_in_an_agent_name_is_escaped(week: Report) -> None:
    hostile = '<img src=x onerror="alert(1)">&amp;'
    rows = [msgspec.structs.replace(week.agents[0], name=hostile), *week.agents[1:]]
    page = render_report_page(msgspec.structs.replace(week, agents=rows), None)
    assert hostile not in page and "<img" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;" in page
    assert EXTERNAL.findall(page) == []


def test_the_share_within_the_threshold_counts_whole_buckets() -> None:
    buckets = {"1": 1, "3": 2, "6": 3, "10": 4, "15": 5, "30": 6, "60": 0, "120": 0, "300": 0, "+Inf": 9}
    assert within_share(buckets, 15.0) == (15.0, 15, 30)
    assert within_share(buckets, 20.0) == (15.0, 15, 30)  # a bucket is never split
    assert within_share({}, 15.0) == (0.0, 0, 0)


def test_the_replied_within_headline_follows_the_shops_targets_not_its_alert_threshold(week: Report) -> None:
    """interfaces.md's shop0 alerts at 10 s with targets [15, 180]: the card shows 15秒回复率."""
    page = render_report_page(week, None, threshold_seconds=10.0)
    assert "15秒回复率" in page and "10秒回复率" not in page
    thirty = msgspec.structs.replace(week, response_targets_seconds=[30, 180])
    assert "30秒回复率" in render_report_page(thirty, None)


def test_a_cjk_font_installed_after_matplotlib_cached_its_list_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo before `./test` builds matplotlib's font cache before fonts-noto-cjk is there:
    the charts must still find the font on disk rather than draw empty boxes."""
    from matplotlib import font_manager

    from streams.render import charts as report_charts

    on_disk = [p for p in font_manager.findSystemFonts() if "cjk" in p.lower()]
    if not on_disk:
        pytest.skip("no CJK font installed here (./test installs fonts-noto-cjk)")
    cached_without_cjk = [
        e for e in font_manager.fontManager.ttflist if e.name not in report_charts.CJK_FAMILIES
    ]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", cached_without_cjk)
    report_charts.font_families.cache_clear()
    try:
        assert report_charts.font_families()[0] in report_charts.CJK_FAMILIES
    finally:
        report_charts.font_families.cache_clear()


@pytest.mark.parametrize(
    ("first", "last", "name"),
    [
        ("2026-10-01", "2026-10-31", "上月（2026-10-01 至 2026-10-31）"),
        ("2026-02-01", "2026-02-28", "上月（2026-02-01 至 2026-02-28）"),
        ("2026-07-01", "2026-09-30", "前 3 个月（2026-07-01 至 2026-09-30）"),
        ("2026-11-23", "2026-11-23", "前一天（2026-11-23）"),
        ("2026-11-16", "2026-11-22", "上周（2026-11-16 至 2026-11-22，周一至周日）"),
        ("2026-11-18", "2026-11-24", "前 7 天（2026-11-18 至 2026-11-24）"),
        ("2026-11-10", "2026-11-24", "前 15 天（2026-11-10 至 2026-11-24）"),
    ],
)
def test_the_page_names_the_period_it_compares_with(first: str, last: str, name: str, week: Report) -> None:
    team = week.totals.metrics
    assert previous_name(PreviousPeriod(from_=first, to=last, team=team)) == name
    page = render_report_page(week, PreviousPeriod(from_=first, to=last, team=team))
    assert f"与{name}对比" in page
