"""The v3 panels (satisfaction, agent status): on the dashboards, with the dashboards' variables,
built from counts, and naming only series the worker exports."""

from __future__ import annotations

import re

from tests.deploy.promql import metric_names
from tests.deploy.test_grafana import by_title, exprs
from tests.deploy.tools import exported_series_names

SATISFACTION = {
    "kefu_rated_consultations",
    "kefu_satisfaction_ratio",
    "kefu_rating_ratio",
    "kefu_dissatisfied_consultations",
    "kefu_average_rating_score",
}
STATUS = {"kefu_agent_status", "kefu_online_seconds", "kefu_away_seconds"}
OF_AGENT_IN_WINDOW = '{shop="$shop", agent="$agent", window="$window"}'


def v3_exprs(title: str) -> list[str]:
    return [e for e in exprs(by_title(title)) if metric_names(e) & (SATISFACTION | STATUS)]


def test_team_overview_shows_the_teams_satisfaction_from_counts_and_who_is_online() -> None:
    text = "\n".join(v3_exprs("Team overview"))
    # satisfied / rated over the team: a ratio of sums, never an average of the agents' ratios.
    assert re.search(
        r'sum\(max by \(agent\) \(kefu_satisfaction_ratio\{shop="\$shop", window="\$window"\}\) \* '
        r'max by \(agent\) \(kefu_rated_consultations\{shop="\$shop", window="\$window"\}\)\) / '
        r'sum\(max by \(agent\) \(kefu_rated_consultations\{shop="\$shop", window="\$window"\}\)\)',
        text,
    ), text
    assert 'sum by (status) (max by (agent, status) (kefu_agent_status{shop="$shop"}))' in text
    assert 'max by (agent) (kefu_online_seconds{shop="$shop", window="$window"})' in text
    assert 'max by (agent) (kefu_away_seconds{shop="$shop", window="$window"})' in text


def test_agent_detail_shows_every_v3_figure_of_the_selected_agent() -> None:
    text = "\n".join(v3_exprs("Agent detail"))
    for metric in sorted(SATISFACTION | STATUS - {"kefu_agent_status"}):
        assert f"max({metric}{OF_AGENT_IN_WINDOW})" in text, metric
    assert 'max by (status) (kefu_agent_status{shop="$shop", agent="$agent"}) == 1' in text


def test_the_v3_panels_name_only_series_the_worker_exports() -> None:
    used = set().union(*(metric_names(e) for t in ("Team overview", "Agent detail") for e in v3_exprs(t)))
    assert used == SATISFACTION | STATUS  # all of them, and nothing misspelt beside them
    assert used - exported_series_names() == set()
