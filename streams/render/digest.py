"""The daily digest (日报) as one robot message: yesterday's team against the day before, the
agents at the top and the bottom, and the link to the whole report page.

The headline's values and changes are the report page's own (streams/render/page.py), in the
page's units (streams/render/formats.py): a lead reads the same numbers in the group chat as on
the printed page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from streams.contract.floor import TeamWindowValues
from streams.contract.report import Report, ReportRow
from streams.render.formats import METRICS, PAGE_STYLE, Kind, Metric, show
from streams.render.notices import Notice, chat_safe
from streams.render.page import Headline, headline

DIGEST_HEAD = "【客服日报】"
TOP = 3  # agents named at the top and at the bottom of each ranking
_COUNT_WORDS = "一二三"

_BY_KEY: dict[str, Metric] = {metric.key: metric for metric in METRICS}
# The team's numbers, in the report's order, and whether higher is better (None: a volume).
HEADLINE_FIELDS: tuple[tuple[str, bool | None], ...] = (
    ("consultations", None),
    ("replied_consultations", None),
    ("reply_ratio", True),
    ("first_response_avg_seconds", False),
    ("inquiries", None),
    ("consult_pay_ratio", True),
    ("attributed_sales_yuan", True),
)
SATISFACTION_FIELD: tuple[str, bool | None] = ("satisfaction_ratio", True)  # when ratings exist


@dataclass(frozen=True, slots=True)
class Ranking:
    """One way of ranking agents: who has no value for it is left out (and counted)."""

    key: str
    title: str
    counted: str  # who takes part: "有询单"
    left_out: str  # who does not: "无询单"
    higher_better: bool


RANKINGS: tuple[Ranking, ...] = (
    Ranking("consult_pay_ratio", "询单转化率", "有询单", "无询单", higher_better=True),
    Ranking("first_response_avg_seconds", "首次响应时间", "有接待", "无接待", higher_better=False),
)


@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int  # 1 is the best
    name: str
    value: float


def report_link(floor_url: str | None, shop: str, day: str) -> str | None:
    """`{floor_url}/report?shop=ID&from=D&to=D`, or None when no floor URL is configured."""
    if not floor_url:
        return None
    return f"{floor_url.rstrip('/')}/report?shop={quote(shop, safe='')}&from={day}&to={day}"


def digest_notice(
    report: Report, previous: TeamWindowValues | None, link: str | None, shop_name: str
) -> Notice:
    """The digest of a one-day `report`; `previous` is the team the day before (None: not kept,
    then nothing is compared)."""
    title = f"{DIGEST_HEAD}{chat_safe(shop_name)} · {report.from_}"
    team_lines = [_headline_line(h, previous is not None) for h in team_headlines(report, previous)]
    if previous is None:
        team_lines.append("前一天无数据，不作比较")
    blocks = [("团队", team_lines)]
    blocks += [(ranking.title, ranking_lines(ranking, report.agents)) for ranking in RANKINGS]
    english = f"Daily report {report.from_}: the team against the day before, agents at the top and bottom"
    markdown = [f"**{title}**"]
    text = [title]
    for heading, lines in blocks:
        markdown.append("\n".join([f"**{heading}**", *(f"- {line}" for line in lines)]))
        text.append("\n".join([f"【{heading}】", *(f"- {line}" for line in lines)]))
    markdown.append(f"> {english}")
    text.append(english)
    if link:
        markdown.append(f"[打开日报页面 / open the report]({link})")
        text.append(f"日报页面 / report: {link}")
    return Notice(
        shop=report.shop,
        title=title,
        markdown="\n\n".join(markdown),
        text="\n\n".join(text),
        link=link,
    )


def team_headlines(report: Report, previous: TeamWindowValues | None) -> list[Headline]:
    """The team's numbers, each against `previous`, as the report page computes them."""
    team = report.totals.metrics
    fields = [*HEADLINE_FIELDS, *([SATISFACTION_FIELD] if team.rated_consultations else [])]
    return [headline(_spec(key, better), team, previous, None) for key, better in fields]


def _spec(key: str, higher_better: bool | None) -> tuple[str, str, str, Kind, bool | None]:
    metric = _BY_KEY[key]
    return (metric.zh, metric.key, metric.key, metric.kind, higher_better)


def _headline_line(line: Headline, compared: bool) -> str:
    if not compared:
        return f"{line.label}：{line.value}"
    change = f"{line.arrow} {line.change}".strip()
    return f"{line.label}：{line.value}（前一天 {line.previous}，{change}）"


def ranked_agents(ranking: Ranking, rows: Sequence[ReportRow]) -> tuple[list[Ranked], int]:
    """The agents with a value, best first (ties by agent id), and how many had none."""
    valued = [(row, getattr(row.metrics, ranking.key)) for row in rows]
    kept = [(row, value) for row, value in valued if value is not None]
    sign = -1.0 if ranking.higher_better else 1.0
    kept.sort(key=lambda pair: (sign * pair[1], pair[0].agent))
    ranked = [Ranked(i, row.name or row.agent, value) for i, (row, value) in enumerate(kept, start=1)]
    return ranked, len(valued) - len(kept)


def ranking_lines(ranking: Ranking, rows: Sequence[ReportRow]) -> list[str]:
    """The top three and, apart from them, the bottom three; everyone once, with their rank."""
    ranked, left_out = ranked_agents(ranking, rows)
    kind = _BY_KEY[ranking.key].kind
    lines = [
        f"{len(ranked)} 位客服{ranking.counted}"
        + (f"，{left_out} 位{ranking.left_out}不参与排名" if left_out else "")
    ]
    if len(ranked) < TOP:
        lines.append(f"{ranking.counted}的客服不足三位")
    top, bottom = ranked[:TOP], ranked[TOP:][-TOP:]
    if top:
        lines.append(f"{'前三' if len(top) == TOP else '排名'}：{_listed(top, kind)}")
    if bottom:
        lines.append(f"后{_COUNT_WORDS[len(bottom) - 1]}：{_listed(bottom, kind)}")
    return lines


def _listed(agents: Sequence[Ranked], kind: Kind) -> str:
    return "、".join(
        f"{agent.rank}. {chat_safe(agent.name)} {show(agent.value, kind, PAGE_STYLE)}" for agent in agents
    )
