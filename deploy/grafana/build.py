"""The three kefu-pulse dashboards, generated so they stay consistent and reviewable.

    .venv/bin/python -m deploy.grafana.build           rewrite deploy/grafana/dashboards/*.json
    .venv/bin/python -m deploy.grafana.build --check   exit 1 if the committed JSON is stale

Only the Faust leader exports the floor gauges, and leadership moves between workers, so
every per-agent query aggregates `instance` away with `max by (...)`: one line per agent,
unbroken across a leader change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy.grafana.panels import (
    JSON,
    Layout,
    Query,
    bar_gauge,
    dashboard,
    datasource_variable,
    query_variable,
    stat,
    table,
    timeseries,
    window_variable,
)

DASHBOARDS_DIR = Path(__file__).with_name("dashboards")

SHOP_VARIABLE = query_variable("shop", "店铺 Shop", "label_values(kefu_alert_threshold_seconds, shop)")
AGENT_VARIABLE = query_variable(
    "agent", "客服 Agent", 'label_values(kefu_waiting_buyers{shop="$shop"}, agent)'
)
IN_SHOP = 'shop="$shop"'
IN_WINDOW = 'shop="$shop", window="$window"'
OF_AGENT = 'shop="$shop", agent="$agent"'
OF_AGENT_IN_WINDOW = 'shop="$shop", agent="$agent", window="$window"'
THRESHOLD = Query(f"max(kefu_alert_threshold_seconds{{{IN_SHOP}}})", "阈值 threshold")
# The default response targets (response_targets_seconds): the seed's 15 s and the platforms' 3 min.
WITHIN_15 = 'within="15"'
WITHIN_180 = 'within="180"'


STATUS_LEGEND = "{{status}}"


def per_agent(metric: str, selector: str = IN_WINDOW) -> Query:
    return Query(f"max by (agent) ({metric}{{{selector}}})", "{{agent}}")


def of_agent(metric: str, legend: str) -> Query:
    """The selected agent's value in the selected window, one series across leader changes."""
    return Query(f"max({metric}{{{OF_AGENT_IN_WINDOW}}})", legend)


def team_satisfaction() -> Query:
    """The team's 满意度 from the agents' counts (satisfied / rated), never a mean of their ratios."""
    rated = f"max by (agent) (kefu_rated_consultations{{{IN_WINDOW}}})"
    satisfied = f"max by (agent) (kefu_satisfaction_ratio{{{IN_WINDOW}}}) * {rated}"
    return Query(f"sum({satisfied}) / sum({rated})", "满意度 satisfaction")


def agents_by_status() -> Query:
    """How many agents are in each status now (0 for a status nobody is in)."""
    return Query(f"sum by (status) (max by (agent, status) (kefu_agent_status{{{IN_SHOP}}}))", STATUS_LEGEND)


def team_v3(layout: Layout) -> None:
    """Satisfaction and who is online (metrics.md v3)."""
    layout.row()
    layout.add(
        stat(
            "满意度 Satisfaction ($window)",
            [team_satisfaction()],
            unit="percentunit",
            description="Ratings of 4 or 5 among the team's rated consultations that started in the window.",
        ),
        width=6,
        height=4,
    )
    layout.add(
        stat(
            "差评 Dissatisfied ($window)",
            [Query(f"sum(max by (agent) (kefu_dissatisfied_consultations{{{IN_WINDOW}}}))")],
            description="Consultations rated 1 or 2.",
        ),
        width=6,
        height=4,
    )
    layout.add(
        stat(
            "在线 / 挂起 Online / away now",
            [agents_by_status()],
            description="Agents per status from the login feed; unknown: no status event yet.",
        ),
        width=12,
        height=4,
    )
    layout.add(
        timeseries(
            "在线与挂起 Agents online and away",
            [
                Query(
                    f"sum by (status) (max by (agent, status) (kefu_agent_status{{{IN_SHOP}, {status}}}))",
                    STATUS_LEGEND,
                )
                for status in ('status="online"', 'status="away"')
            ],
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "在线时长 Online time ($window)",
            [
                per_agent("kefu_online_seconds"),
                Query(f"max by (agent) (kefu_away_seconds{{{IN_WINDOW}}})", "{{agent}} 挂起 away"),
            ],
            unit="s",
            description="Seconds online or away (挂起 included) in the window, and seconds away.",
        ),
        width=12,
    )


def team_overview() -> JSON:
    layout = Layout()
    layout.add(
        table(
            "客服一览 Agents ($window)",
            [
                (per_agent("kefu_consultations"), "咨询 Consultations", "short"),
                (per_agent("kefu_replied_consultations"), "接待 Replied", "short"),
                (per_agent("kefu_reply_ratio"), "回复率 Reply ratio", "percentunit"),
                (per_agent("kefu_first_response_avg_seconds"), "首次响应 First response", "s"),
                (
                    per_agent("kefu_replied_within_ratio", f"{IN_WINDOW}, {WITHIN_15}"),
                    "15秒回复率 Replied ≤15 s",
                    "percentunit",
                ),
                (
                    per_agent("kefu_replied_within_ratio", f"{IN_WINDOW}, {WITHIN_180}"),
                    "3分钟回复率 Replied ≤3 min",
                    "percentunit",
                ),
                (per_agent("kefu_inquiries"), "询单 Inquiries", "short"),
                (per_agent("kefu_consult_pay_ratio"), "询单转化率 Consult→pay", "percentunit"),
                (per_agent("kefu_attributed_sales_yuan"), "客服销售额 Sales", "currencyCNY"),
                (per_agent("kefu_satisfaction_ratio"), "满意度 Satisfaction", "percentunit"),
                (per_agent("kefu_waiting_buyers", IN_SHOP), "等待中 Waiting", "short"),
            ],
            "Every agent of the shop in the selected window. A ratio with no denominator is blank, not 0.",
        ),
        width=24,
        height=9,
    )
    layout.add(
        timeseries(
            "首次响应时间 First response (avg)",
            [per_agent("kefu_first_response_avg_seconds"), THRESHOLD],
            unit="s",
            description="Mean first response over replied consultations that started in the window.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "平均响应时间 Response (avg)", [per_agent("kefu_response_avg_seconds"), THRESHOLD], unit="s"
        ),
        width=12,
    )
    layout.add(
        timeseries("回复率 Reply ratio", [per_agent("kefu_reply_ratio")], unit="percentunit"), width=12
    )
    layout.add(
        timeseries(
            "15秒回复率 Replied within 15 s",
            [per_agent("kefu_replied_within_ratio", f"{IN_WINDOW}, {WITHIN_15}")],
            unit="percentunit",
            description="Consultations first replied within 15 s on the service clock, of all that started.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "3分钟回复率 Replied within 3 min",
            [per_agent("kefu_replied_within_ratio", f"{IN_WINDOW}, {WITHIN_180}")],
            unit="percentunit",
            description="The platforms' three-minute response rate: first replies within 180 s, of all.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "询单转化率 Consult → pay ratio", [per_agent("kefu_consult_pay_ratio")], unit="percentunit"
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "客服销售额 Attributed sales", [per_agent("kefu_attributed_sales_yuan")], unit="currencyCNY"
        ),
        width=12,
    )
    layout.add(timeseries("等待中 Waiting buyers", [per_agent("kefu_waiting_buyers", IN_SHOP)]), width=12)
    layout.add(
        timeseries(
            "最长等待 Oldest wait",
            [per_agent("kefu_oldest_wait_seconds", IN_SHOP), THRESHOLD],
            unit="s",
            description="BuyerWaitingTooLong fires for an agent whose line is above the threshold.",
        ),
        width=24,
    )
    layout.add(
        stat("店铺订单 Shop orders", [Query(f"max(kefu_shop_orders{{{IN_WINDOW}}})")]), width=6, height=4
    )
    layout.add(
        stat("静默下单 Silent orders", [Query(f"max(kefu_silent_orders{{{IN_WINDOW}}})")]), width=6, height=4
    )
    layout.add(
        stat(
            "静默下单占比 Silent share",
            [Query(f"max(kefu_silent_share{{{IN_WINDOW}}})")],
            unit="percentunit",
            description="Orders credited to no inquiry, as a share of all orders.",
        ),
        width=6,
        height=4,
    )
    layout.add(
        stat(
            "静默销售额 Silent sales",
            [Query(f"max(kefu_silent_sales_yuan{{{IN_WINDOW}}})")],
            unit="currencyCNY",
        ),
        width=6,
        height=4,
    )
    team_v3(layout)
    return dashboard(
        "kefu-team-overview",
        "团队总览 Team overview",
        ["team"],
        [datasource_variable(), SHOP_VARIABLE, window_variable()],
        layout,
    )


def first_response_quantile(q: float) -> Query:
    return Query(
        f"histogram_quantile({q}, sum by (le) "
        f"(rate(kefu_first_response_seconds_bucket{{{OF_AGENT}}}[$__rate_interval])))",
        f"p{round(q * 100)}",
    )


def agent_v3(layout: Layout) -> None:
    """Status, online time and satisfaction (metrics.md v3)."""
    status = stat(
        "状态 Status",
        [Query(f"max by (status) (kefu_agent_status{{{OF_AGENT}}}) == 1", STATUS_LEGEND)],
        description="online 在线, away 挂起, offline 离线; unknown: no status event yet.",
    )
    status["options"]["textMode"] = "name"
    layout.add(status, width=6, height=5)
    layout.add(
        stat(
            "在线时长 Online time ($window)",
            [of_agent("kefu_online_seconds", "在线 online"), of_agent("kefu_away_seconds", "挂起 away")],
            unit="s",
            description="Online counts the time away too; away alone is the second figure.",
        ),
        width=6,
        height=5,
    )
    layout.add(
        stat(
            "满意度 Satisfaction ($window)",
            [
                of_agent("kefu_satisfaction_ratio", "满意度 Satisfaction"),
                of_agent("kefu_rating_ratio", "评价率 Rated"),
            ],
            unit="percentunit",
            description="Satisfaction: rated 4 or 5 / rated. Rating ratio: rated / replied.",
        ),
        width=6,
        height=5,
    )
    layout.add(
        stat(
            "评价 Ratings ($window)",
            [
                of_agent("kefu_rated_consultations", "评价数 Rated"),
                of_agent("kefu_dissatisfied_consultations", "差评 Dissatisfied"),
                of_agent("kefu_average_rating_score", "平均评分 Average score"),
            ],
            description="Ratings count in the window their consultation started in.",
        ),
        width=6,
        height=5,
    )


def agent_detail() -> JSON:
    layout = Layout()
    layout.add(
        stat(
            "咨询漏斗 Funnel ($window)",
            [
                of_agent("kefu_consultations", "咨询 Consultations"),
                of_agent("kefu_replied_consultations", "接待 Replied"),
                of_agent("kefu_inquiries", "询单 Inquiries"),
            ],
        ),
        width=12,
        height=5,
    )
    layout.add(
        stat(
            "转化 Conversion ($window)",
            [
                of_agent("kefu_consult_order_ratio", "询单→下单 Consult→order"),
                of_agent("kefu_consult_pay_ratio", "询单→付款 Consult→pay"),
                of_agent("kefu_order_pay_ratio", "付款转化率 Order→pay"),
            ],
            unit="percentunit",
        ),
        width=12,
        height=5,
    )
    layout.add(
        stat(
            "协助 Assists ($window)",
            [
                of_agent("kefu_assisted_paid", "协助付款人数 Assisted"),
            ],
            description="Inquiries that qualified for a paid order credited to another agent (first/last).",
        ),
        width=6,
        height=5,
    )
    layout.add(
        stat(
            "协助与退款 Assisted sales and refunds ($window)",
            [
                of_agent("kefu_assisted_sales_yuan", "协助销售额 Assisted sales"),
                of_agent("kefu_refunded_sales_yuan", "退款金额 Refunded"),
            ],
            unit="currencyCNY",
            description="Refunded: of the agent's credited paid orders, what was refunded so far.",
        ),
        width=12,
        height=5,
    )
    layout.add(
        stat(
            "回复时效 Replied within ($window)",
            [
                Query(
                    f"max by (within) (kefu_replied_within_ratio{{{OF_AGENT_IN_WINDOW}}})", "≤{{within}} s"
                ),
            ],
            unit="percentunit",
        ),
        width=6,
        height=5,
    )
    agent_v3(layout)
    layout.add(
        timeseries(
            "首次响应分位数 First response quantiles",
            [first_response_quantile(0.5), first_response_quantile(0.9), first_response_quantile(0.99)],
            unit="s",
            description="From kefu_first_response_seconds: replies that happened in each interval.",
        ),
        width=12,
    )
    layout.add(
        bar_gauge(
            "首次响应分布 First response distribution",
            [
                Query(
                    f"sum by (le) (increase(kefu_first_response_seconds_bucket{{{OF_AGENT}}}[$__range]))",
                    "≤ {{le}} s",
                )
            ],
            description="Replied consultations per first-response bucket (cumulative), over the time range.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "首次响应时间（各窗口）First response by window",
            [
                Query(f"max by (window) (kefu_first_response_avg_seconds{{{OF_AGENT}}})", "{{window}}"),
                THRESHOLD,
            ],
            unit="s",
            description="FirstResponseSlow fires while the 5m line is above the threshold.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "平均响应时间（各窗口）Response by window",
            [Query(f"max by (window) (kefu_response_avg_seconds{{{OF_AGENT}}})", "{{window}}"), THRESHOLD],
            unit="s",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "等待 Waiting",
            [
                Query(f"max(kefu_oldest_wait_seconds{{{OF_AGENT}}})", "最长等待 oldest wait (s)"),
                Query(f"max(kefu_waiting_buyers{{{OF_AGENT}}})", "等待中 waiting buyers"),
                THRESHOLD,
            ],
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "客服销售额（各窗口）Attributed sales by window",
            [Query(f"max by (window) (kefu_attributed_sales_yuan{{{OF_AGENT}}})", "{{window}}")],
            unit="currencyCNY",
        ),
        width=12,
    )
    return dashboard(
        "kefu-agent-detail",
        "客服详情 Agent detail",
        ["agent"],
        [datasource_variable(), SHOP_VARIABLE, AGENT_VARIABLE, window_variable()],
        layout,
    )


def quantile(histogram: str, q: float) -> Query:
    return Query(
        f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[$__rate_interval])))",
        f"p{round(q * 100)}",
    )


def batch_quantile(q: float) -> Query:
    return quantile("kefu_batch_seconds", q)


def service_health() -> JSON:
    layout = Layout()
    layout.add(
        stat(
            "在线 worker Workers reporting",
            [Query("count(kefu_batches_total)")],
            description="Workers Prometheus scrapes (every worker exports kefu_batches_total).",
        ),
        width=6,
        height=5,
    )
    layout.add(
        stat("积压 Lag (records)", [Query("sum(max by (topic, partition) (kefu_consumer_lag))")]),
        width=6,
        height=5,
    )
    layout.add(
        stat("事件/秒 Events/s", [Query("sum(rate(kefu_events_total[$__rate_interval]))")], unit="ops"),
        width=6,
        height=5,
    )
    layout.add(
        stat(
            "批次 p99 Batch p99",
            [batch_quantile(0.99)],
            unit="s",
        ),
        width=6,
        height=5,
    )
    layout.add(
        timeseries(
            "事件/秒（按结果）Events/s by outcome",
            [Query("sum by (outcome) (rate(kefu_events_total[$__rate_interval]))", "{{outcome}}")],
            unit="ops",
            description=(
                "applied, duplicate (redelivered), rejected (dead-lettered), late (too old), misrouted "
                "(applied, but not on the partition murmur2 of its key names: check the producer)."
            ),
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "拒绝原因 Rejections by reason",
            [Query("sum by (reason) (rate(kefu_events_rejected_total[$__rate_interval]))", "{{reason}}")],
            unit="ops",
            description="Records sent to the dead-letter topic, by the decoder's reason.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "消费积压 Consumer lag",
            [Query("sum by (topic) (max by (topic, partition) (kefu_consumer_lag))", "{{topic}}")],
            description="Records behind the log end that Redis does not hold yet.",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "端到端延迟 End-to-end lag",
            [quantile("kefu_event_lag_seconds", 0.5), quantile("kefu_event_lag_seconds", 0.99)],
            unit="s",
            description="From an event's time to its being applied in Redis (kefu_event_lag_seconds).",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "批处理耗时 Batch latency",
            [batch_quantile(0.5), batch_quantile(0.9), batch_quantile(0.99)],
            unit="s",
            description="Decode, compute and commit one batch (kefu_batch_seconds).",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "Redis 错误与冲突 Redis errors and conflicts",
            [
                Query("sum(rate(kefu_redis_errors_total[$__rate_interval]))", "Redis 错误 errors"),
                Query(
                    "sum(rate(kefu_commit_conflicts_total[$__rate_interval]))", "提交冲突 commit conflicts"
                ),
            ],
            unit="ops",
        ),
        width=12,
    )
    layout.add(
        timeseries(
            "告警事件 Alert events sent",
            [
                Query(
                    "sum by (alert, state) (increase(kefu_alert_events_total[$__rate_interval]))",
                    "{{alert}} {{state}}",
                )
            ],
            description="Events the leader sent to kefu.alerts.",
        ),
        width=12,
    )
    return dashboard(
        "kefu-service-health",
        "服务健康 Service health",
        ["health"],
        [datasource_variable()],
        layout,
    )


def dashboards() -> dict[str, JSON]:
    """File name → dashboard, for every dashboard this module builds."""
    return {
        "team-overview.json": team_overview(),
        "agent-detail.json": agent_detail(),
        "service-health.json": service_health(),
    }


def render(board: JSON) -> str:
    return json.dumps(board, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report whether the JSON is up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, board in dashboards().items():
        path = DASHBOARDS_DIR / name
        text = render(board)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "stale" if args.check else "written"
    for name in stale:
        print(f"{verb}: {DASHBOARDS_DIR / name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
