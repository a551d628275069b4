"""The daily digest (日报): its markdown from a sample report, and which digests go when."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from config.settings import settings_from_yaml
from streams.contract.floor import TeamWindowValues
from streams.contract.report import PreviousPeriod, Report, ReportRequestError, ReportRow
from streams.notify.digest import digest_plans, digests_due_now, report_fetcher
from streams.notify.ledger import ClaimResult
from streams.notify.schedule import DigestScheduler
from streams.render.digest import RANKINGS, digest_notice, ranked_agents, report_link
from streams.render.formats import PAGE_STYLE, Kind, show
from streams.render.notices import Notice
from tests.report_samples import sample_report

LINK = "http://wall.example:6066/report?shop=s1&from=2026-11-01&to=2026-11-01"
MINUTE, HOUR = 60_000, 3_600_000


def one_day(agents: int = 3) -> Report:
    return sample_report(days=1, agents=agents)


def day_before() -> TeamWindowValues:
    # The sample's numbers grow with the day: two days added up stand in for a bigger day before.
    return sample_report(days=2, agents=3).totals.metrics


def team_lines(notice: Notice) -> list[str]:
    block = notice.markdown.split("\n\n")[1]
    return block.split("\n")


def test_the_headline_gives_each_team_number_against_the_day_before_with_its_change() -> None:
    notice = digest_notice(one_day(), day_before(), LINK, "旗舰店")
    assert notice.title == "【客服日报】旗舰店 · 2026-11-01"
    assert notice.markdown.startswith("**【客服日报】旗舰店 · 2026-11-01**")
    assert team_lines(notice) == [
        "**团队**",
        "- 咨询人数：81（前一天 171，▼ -90（-52.6%） · 减少）",
        "- 接待人数：75（前一天 159，▼ -84（-52.8%） · 减少）",
        "- 回复率：92.59%（前一天 92.98%，▼ -0.39 个百分点 · 变差）",
        "- 首次响应时间：6.9 秒（前一天 6.9 秒，▲ +0.0 秒 · 变差）",
        "- 询单人数：69（前一天 147，▼ -78（-53.1%） · 减少）",
        "- 询单转化率：8.70%（前一天 10.20%，▼ -1.51 个百分点 · 变差）",
        "- 客服销售额：¥820.70（前一天 ¥2,041.75，▼ −¥1,221.05（-59.8%） · 变差）",
    ]
    assert "满意度" not in notice.markdown  # no ratings that day: no satisfaction line


def test_without_the_day_before_the_numbers_stand_alone() -> None:
    lines = team_lines(digest_notice(one_day(), None, LINK, "旗舰店"))
    assert lines[1] == "- 咨询人数：81"
    assert lines[-1] == "- 前一天无数据，不作比较"
    assert not any("▲" in line or "▼" in line for line in lines)


def test_satisfaction_is_a_headline_when_the_day_had_ratings() -> None:
    report = one_day()
    rated = msgspec.structs.replace(
        report.totals.metrics, rated_consultations=20, satisfaction_ratio=0.9, rating_ratio=0.25
    )
    report.totals = msgspec.structs.replace(report.totals, metrics=rated)
    before = msgspec.structs.replace(day_before(), rated_consultations=10, satisfaction_ratio=0.8)
    lines = team_lines(digest_notice(report, before, None, "旗舰店"))
    assert lines[-1] == "- 满意度：90.00%（前一天 80.00%，▲ +10.00 个百分点 · 改善）"


def test_the_link_to_the_report_page_is_in_both_variants() -> None:
    link = report_link("http://wall.example:6066/", "s1", "2026-11-01")
    assert link == LINK
    notice = digest_notice(one_day(), day_before(), link, "旗舰店")
    assert notice.link == LINK
    assert f"({LINK})" in notice.markdown.splitlines()[-1]
    assert notice.text.splitlines()[-1].endswith(LINK)
    assert report_link(None, "s1", "2026-11-01") is None
    assert "report?" not in digest_notice(one_day(), None, None, "旗舰店").markdown


def ranking_block(notice: Notice, title: str) -> list[str]:
    block = next(b for b in notice.markdown.split("\n\n") if b.startswith(f"**{title}**"))
    return block.split("\n")[1:]


def expected_order(report: Report, key: str, higher_better: bool) -> list[tuple[str, str]]:
    """Independently of the renderer: (name, shown value) by `key`, best first, ties by agent id."""
    rows = [r for r in report.agents if getattr(r.metrics, key) is not None]
    sign = -1 if higher_better else 1
    rows.sort(key=lambda r: (sign * getattr(r.metrics, key), r.agent))
    kind: Kind = "percent" if higher_better else "seconds"
    return [(r.name or r.agent, show(getattr(r.metrics, key), kind, PAGE_STYLE)) for r in rows]


@pytest.mark.parametrize(
    ("title", "key", "better"),
    [("询单转化率", "consult_pay_ratio", True), ("首次响应时间", "first_response_avg_seconds", False)],
)
def test_the_top_three_and_the_bottom_three_agents_each_by_rank(title: str, key: str, better: bool) -> None:
    report = one_day(agents=8)
    order = [
        f"{rank}. {name} {value}" for rank, (name, value) in enumerate(expected_order(report, key, better), 1)
    ]
    lines = ranking_block(digest_notice(report, None, None, "旗舰店"), title)
    assert lines == [
        f"- 8 位客服{'有询单' if better else '有接待'}",
        f"- 前三：{'、'.join(order[:3])}",
        f"- 后三：{'、'.join(order[5:])}",
    ]


def test_the_first_response_ranking_shows_seconds_and_the_conversion_ranking_percents() -> None:
    notice = digest_notice(one_day(agents=8), None, None, "旗舰店")
    assert (
        ranking_block(notice, "首次响应时间")[1] == "- 前三：1. 小美 4.0 秒、2. 阿强 6.5 秒、3. 小周 9.0 秒"
    )
    assert ranking_block(notice, "询单转化率")[1].endswith("%")


def without(report: Report, *agents: str) -> Report:
    """`report` where `agents` had no inquiry and no reply that day."""

    def idle(row: ReportRow) -> ReportRow:
        values = msgspec.structs.replace(
            row.metrics,
            replied_consultations=0,
            inquiries=0,
            reply_ratio=0.0,
            first_response_avg_seconds=None,
            consult_pay_ratio=None,
        )
        return msgspec.structs.replace(row, metrics=values)

    report.agents = [idle(row) if row.agent in agents else row for row in report.agents]
    return report


def test_agents_without_inquiries_or_replies_are_left_out_and_said_so() -> None:
    report = without(one_day(agents=4), "s1:A", "s1:C")
    notice = digest_notice(report, None, None, "旗舰店")
    assert ranking_block(notice, "询单转化率") == [
        "- 2 位客服有询单，2 位无询单不参与排名",
        "- 有询单的客服不足三位",
        "- 排名：1. s1:D 11.43%、2. 阿强 8.70%",
    ]
    assert ranking_block(notice, "首次响应时间")[:2] == [
        "- 2 位客服有接待，2 位无接待不参与排名",
        "- 有接待的客服不足三位",
    ]
    ranked, left_out = ranked_agents(RANKINGS[0], report.agents)
    assert ([r.name for r in ranked], left_out) == (["s1:D", "阿强"], 2)


# --- which digests go when ----------------------------------------------------------------

SHOPS_YAML = """
defaults:
  notify:
    channels:
      - {type: dingtalk, url_env: KEFU_TEST_DING_URL}
    floor_url: http://wall.example:6066
shops:
  cn: {name: 旗舰店, timezone: Asia/Shanghai}
  us: {name: 纽约店, timezone: America/New_York}
  quiet: {name: 不要日报, timezone: Asia/Shanghai, notify: {digest_at: null}}
"""


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


class Reports:
    """A fetch over the sample report: records what was asked, can fail on demand."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.failures: list[BaseException] = []

    async def __call__(self, shop: str, day: int) -> tuple[Report, TeamWindowValues | None]:
        self.asked.append((shop, date.fromordinal(day).isoformat()))
        if self.failures:
            raise self.failures.pop(0)
        report = one_day()
        report.shop = shop
        report.from_ = report.to = date.fromordinal(day).isoformat()
        return report, day_before()


class Claims:
    def __init__(self) -> None:
        self.taken: set[tuple[str, int]] = set()

    async def __call__(self, shop: str, day: int) -> ClaimResult:
        if (shop, day) in self.taken:
            return "sent"
        self.taken.add((shop, day))
        return "claimed"


def scheduler_at(now: int, claims: Claims | None = None) -> DigestScheduler:
    return DigestScheduler(digest_plans(settings_from_yaml(SHOPS_YAML)), claims or Claims(), now)


def walk(scheduler: DigestScheduler, reports: Reports, start: int, end: int) -> list[tuple[int, str, Notice]]:
    async def minutes() -> list[tuple[int, str, Notice]]:
        sent = []
        for now in range(start, end, MINUTE):
            due_now = await digests_due_now(scheduler, reports, now)
            sent += [(now, due.shop, notice) for due, notice in due_now]
        return sent

    return asyncio.run(minutes())


def test_the_digest_goes_at_nine_in_each_shops_own_zone_across_new_yorks_dst_change() -> None:
    start, end = utc_ms(2026, 3, 7, 0), utc_ms(2026, 3, 9, 0)
    sent = walk(scheduler_at(start), Reports(), start, end)
    assert [(now, shop, notice.title) for now, shop, notice in sent] == [
        (utc_ms(2026, 3, 7, 1), "cn", "【客服日报】旗舰店 · 2026-03-06"),  # 09:00 in Shanghai
        (utc_ms(2026, 3, 7, 14), "us", "【客服日报】纽约店 · 2026-03-06"),  # 09:00 EST
        (utc_ms(2026, 3, 8, 1), "cn", "【客服日报】旗舰店 · 2026-03-07"),
        (
            utc_ms(2026, 3, 8, 13),
            "us",
            "【客服日报】纽约店 · 2026-03-07",
        ),  # 09:00 EDT, an hour earlier in UTC
    ]
    assert all(shop != "quiet" for _, shop, _ in sent)  # digest_at: null
    assert "/report?shop=us&from=2026-03-07&to=2026-03-07" in sent[-1][2].markdown


def test_a_shop_with_digest_at_null_has_no_plan() -> None:
    assert [plan.shop for plan in digest_plans(settings_from_yaml(SHOPS_YAML))] == ["cn", "us"]


def test_a_restarted_notify_does_not_send_the_days_digest_again() -> None:
    claims, fire = Claims(), utc_ms(2026, 3, 7, 1)
    assert len(walk(scheduler_at(fire - HOUR, claims), Reports(), fire - HOUR, fire + MINUTE)) == 1
    reports = Reports()
    assert walk(scheduler_at(fire + 5 * MINUTE, claims), reports, fire + 5 * MINUTE, fire + HOUR) == []
    assert reports.asked == [("cn", "2026-03-06")]  # read once, then the claim said it went


def test_an_outage_is_tried_again_next_minute_and_a_shop_without_a_report_skips_the_day() -> None:
    fire = utc_ms(2026, 3, 7, 1)
    reports = Reports()
    reports.failures = [OSError("connection refused")]
    sent = walk(scheduler_at(fire), reports, fire, fire + 3 * MINUTE)
    assert [(now, shop) for now, shop, _ in sent] == [(fire + MINUTE, "cn")]
    reports = Reports()
    reports.failures = [ReportRequestError("no data for shop cn")]
    assert walk(scheduler_at(fire), reports, fire, fire + HOUR) == []
    assert reports.asked == [("cn", "2026-03-06")]


class FakeReportService:
    def __init__(self, previous: PreviousPeriod | None) -> None:
        self.previous = previous
        self.calls: list[tuple[object, ...]] = []

    async def request(
        self, shop: str, first: str | None, last: str | None, by: str | None, now_ms: int
    ) -> tuple[Report, bool]:
        self.calls.append((shop, first, last, by, now_ms))
        return one_day(), False

    async def previous_team(self, report: Report, now_ms: int) -> PreviousPeriod | None:
        self.calls.append(("previous", now_ms))
        return self.previous


@pytest.mark.parametrize("kept", [True, False])
def test_report_fetcher_asks_for_the_one_day_and_the_team_the_day_before(kept: bool) -> None:
    team = day_before()
    service = FakeReportService(
        PreviousPeriod(from_="2026-10-31", to="2026-10-31", team=team) if kept else None
    )
    fetch = report_fetcher(service, lambda: 1_234)

    async def fetched() -> tuple[Report, TeamWindowValues | None]:
        return await fetch("s1", date(2026, 11, 1).toordinal())

    report, previous = asyncio.run(fetched())
    assert service.calls == [("s1", "2026-11-01", "2026-11-01", None, 1_234), ("previous", 1_234)]
    assert previous == (team if kept else None)
    assert report.from_ == "2026-11-01"


def test_claims_are_taken_after_every_due_report_is_read_so_none_lapses_before_it_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every shop is due at 09:00. A claim taken before the next shops' reports were read (12 s
    each) lapsed before its notice reached an outbox (where claims are kept alive), and a second
    notify process claimed and sent that digest too."""
    from agents.store.notify_store import MemoryNotifyLedger
    from streams.notify import digest as digest_module
    from streams.notify.digest import LedgerDigestClaim
    from streams.notify.schedule import DigestPlan, next_digest_ms

    now = [0]
    monkeypatch.setattr(digest_module, "digest_notice", lambda report, previous, link, name: f"notice {name}")
    ledger = MemoryNotifyLedger(lambda: now[0])
    plans = [DigestPlan(f"s{i}", "Asia/Shanghai", "09:00", f"s{i}", None) for i in range(1, 5)]
    fire = next_digest_ms(1_764_000_000_000, "Asia/Shanghai", "09:00")

    async def slow(shop: str, day: int) -> Any:
        now[0] += 12_000  # a busy store: 12 s a report
        return sample_report(), None

    async def fast(shop: str, day: int) -> Any:
        return sample_report(), None

    async def two_processes() -> tuple[list[str], list[str]]:
        now[0] = fire
        first = DigestScheduler(plans, LedgerDigestClaim(ledger), fire - 1)
        second = DigestScheduler(plans, LedgerDigestClaim(ledger), fire - 1)
        won_first = await digests_due_now(first, slow, fire)
        won_second = await digests_due_now(second, fast, now[0])
        return [d.shop for d, _ in won_first], [d.shop for d, _ in won_second]

    won_first, won_second = asyncio.run(two_processes())
    assert won_first == ["s1", "s2", "s3", "s4"] and won_second == []
