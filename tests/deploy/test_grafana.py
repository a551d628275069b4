"""Dashboards: generated, committed, complete, and every query runnable by Prometheus 2.42."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.grafana import build, panel_queries
from tests.deploy.tools import DEPLOY, assert_succeeded, run_tool

DASHBOARDS = DEPLOY / "grafana" / "dashboards"
GRAFANA_BUILT_INS = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s"}
VARIABLE_REFERENCE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
HAN = re.compile(r"[\u4e00-\u9fff]")


def boards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))
    }


def by_title(title_part: str) -> dict[str, Any]:
    (board,) = [b for b in boards().values() if title_part in b["title"]]
    return board


def exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_committed_json_is_what_build_generates() -> None:
    generated = build.dashboards()
    assert set(generated) == set(boards()), "dashboards/ holds files build.py does not make, or misses some"
    for name, board in generated.items():
        committed = (DASHBOARDS / name).read_text(encoding="utf-8")
        assert committed == build.render(board), f"{name} is stale: run python -m deploy.grafana.build"


def test_titles_are_chinese_and_english() -> None:
    titles = {board["title"] for board in boards().values()}
    assert titles == {"团队总览 Team overview", "客服详情 Agent detail", "服务健康 Service health"}
    for board in boards().values():
        for panel in board["panels"]:
            assert HAN.search(panel["title"]) and re.search(r"[A-Za-z]{2,}", panel["title"]), panel["title"]


def test_team_overview_shows_the_agents_metrics_per_shop_and_window() -> None:
    board = by_title("Team overview")
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"shop", "window"} <= variables
    text = "\n".join(exprs(board))
    for metric in (
        "kefu_first_response_avg_seconds",
        "kefu_reply_ratio",
        "kefu_consult_pay_ratio",
        "kefu_attributed_sales_yuan",
        "kefu_waiting_buyers",
    ):
        assert re.search(rf'max by \(agent\) \({metric}\{{shop="\$shop"', text), metric


def test_agent_detail_has_first_response_quantiles_and_averages() -> None:
    text = "\n".join(exprs(by_title("Agent detail")))
    assert "histogram_quantile(0.9, sum by (le) (rate(kefu_first_response_seconds_bucket{" in text
    assert "kefu_response_avg_seconds" in text and "kefu_first_response_avg_seconds" in text


def test_service_health_covers_events_rejections_lag_and_batches() -> None:
    text = "\n".join(exprs(by_title("Service health")))
    assert "sum by (outcome) (rate(kefu_events_total" in text
    assert "sum by (reason) (rate(kefu_events_rejected_total" in text
    assert "kefu_consumer_lag" in text
    assert "rate(kefu_batch_seconds_bucket" in text


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, board in boards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, f"{name}: {panel['title']} overlaps another panel"
            cells |= area


def test_every_variable_used_is_defined() -> None:
    for name, board in boards().items():
        defined = {v["name"] for v in board["templating"]["list"]} | GRAFANA_BUILT_INS
        texts = [p["title"] for p in board["panels"]]
        texts += [json.dumps(p.get("datasource")) for p in board["panels"]]
        texts += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        texts += [v.get("definition", "") for v in board["templating"]["list"]]
        used = {next(g for g in m.groups() if g) for text in texts for m in VARIABLE_REFERENCE.finditer(text)}
        assert used - defined == set(), name


def test_panel_queries_lists_every_target_of_every_dashboard() -> None:
    listed = panel_queries.panel_queries()
    expected = [
        (board["title"], panel["title"], target["expr"])
        for board in boards().values()
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    assert sorted(listed) == sorted(expected) and len(listed) >= 30
    assert all(panel.get("targets") for board in boards().values() for panel in board["panels"])


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('x{shop="$shop",agent="${agent}",window="[[window]]"}', 'x{shop="s1",agent="s1:a",window="5m"}'),
        ("rate(x[$__rate_interval]) + increase(y[$__range])", "rate(x[1m]) + increase(y[1h])"),
        ('x{shop="${shop:raw}"}', 'x{shop="s1"}'),
    ],
)
def test_substitute_replaces_grafana_variables(expr: str, expected: str) -> None:
    assert panel_queries.substitute(expr, shop="s1", agent="s1:a", window="5m") == expected


def test_substitute_refuses_an_unknown_variable() -> None:
    with pytest.raises(KeyError, match="team"):
        panel_queries.substitute('x{team="$team"}', shop="s1", agent="a", window="5m")


def test_every_panel_query_parses_in_prometheus(tmp_path: Path) -> None:
    """promtool has no query parser of its own; recording rules go through Prometheus's."""
    rules = [
        {"record": f"kefu:panel_{index}", "expr": panel_queries.substitute(expr, "s1", "s1:a", "today")}
        for index, (_, _, expr) in enumerate(panel_queries.panel_queries())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = run_tool("promtool", "check", "rules", str(path))
    assert_succeeded(result)
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_v2_panels_show_replied_within_assists_and_refunds() -> None:
    team = "\n".join(exprs(by_title("Team overview")))
    for within in ("15", "180"):
        assert (
            f'max by (agent) (kefu_replied_within_ratio{{shop="$shop", window="$window", within="{within}"}})'
            in team
        )
    agent = "\n".join(exprs(by_title("Agent detail")))
    for metric in ("kefu_assisted_paid", "kefu_assisted_sales_yuan", "kefu_refunded_sales_yuan"):
        assert f'max({metric}{{shop="$shop", agent="$agent", window="$window"}})' in agent, metric
    assert "max by (within) (kefu_replied_within_ratio{" in agent
