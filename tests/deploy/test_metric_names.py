"""Every metric name the rules and dashboards use is one the worker's code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agents.exposure.collector import SHOP_GAUGES, WINDOW_GAUGES
from tests.deploy.promql import metric_names, variable_query_metric_names
from tests.deploy.tools import DEPLOY, PROMETHEUS_SERIES, RULES, exported_series_names, load_yaml

_TEMPLATE_QUERY = re.compile(r'printf\s+"((?:[^"\\]|\\.)*)"')


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'max by (shop, agent) (kefu_a{window="5m"}) > on (shop) group_left () max(kefu_b)',
            {"kefu_a", "kefu_b"},
        ),
        (
            'histogram_quantile(0.9, sum by (le) (rate(kefu_h_bucket{x="y"}[$__rate_interval])))',
            {"kefu_h_bucket"},
        ),
        ("sum(rate(kefu_c_total[5m])) / sum without (reason) (kefu_d) > 1e-3", {"kefu_c_total", "kefu_d"}),
        ('up{job="kefu-pulse"} == 0 unless kefu_e offset 5m', {"up", "kefu_e"}),
        ("count by (job) (kefu_f) unless on (job) count(kefu_g)", {"kefu_f", "kefu_g"}),
    ],
)
def test_metric_names_finds_exactly_the_metrics(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_label_values_yields_the_metric_not_the_label() -> None:
    assert variable_query_metric_names('label_values(kefu_x{shop="$shop"}, agent)') == {"kefu_x"}


def test_exported_names_come_from_the_code() -> None:
    exported = exported_series_names()
    for _, name, _ in (*WINDOW_GAUGES, *SHOP_GAUGES):
        assert name in exported
    # Suffixes of the exposition format: counters and histograms.
    assert {"kefu_events_total", "kefu_events_rejected_total", "kefu_consumer_lag"} <= exported
    assert {"kefu_first_response_seconds_bucket", "kefu_batch_seconds_count"} <= exported
    assert "kefu_events" not in exported and "kefu_first_response_seconds" not in exported


def rule_metric_names() -> dict[str, set[str]]:
    out = {}
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            for text in rule.get("annotations", {}).values():
                for query in _TEMPLATE_QUERY.findall(text):
                    names |= metric_names(query.replace("%q", '""'))
            out[rule.get("alert") or rule["record"]] = names
    return out


def dashboard_metric_names() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                out[f"{path.name} ${variable['name']}"] = variable_query_metric_names(variable["definition"])
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.setdefault(f"{path.name} {panel['title']}", set()).update(metric_names(target["expr"]))
    return out


def assert_all_exported(used: dict[str, set[str]]) -> None:
    assert used and all(used.values()), "nothing found: the extraction itself is broken"
    known = exported_series_names() | PROMETHEUS_SERIES
    unknown = {where: sorted(names - known) for where, names in used.items() if names - known}
    assert not unknown, f"metrics the worker does not export: {unknown}"


def test_every_metric_the_rules_use_is_exported() -> None:
    assert_all_exported(rule_metric_names())


def test_every_metric_the_dashboards_use_is_exported() -> None:
    assert_all_exported(dashboard_metric_names())


def test_the_spec_exposure_table_is_covered() -> None:
    """metrics.md's Exposure table, as the code exports it, is what the deploy files build on."""
    spec = Path(__file__).resolve().parents[3] / "shared" / "spec" / "metrics.md"
    if not spec.exists():
        pytest.skip("shared/spec is not beside the repository")
    table = re.findall(r"^\| `(kefu_\w+)` \| (\w+)", spec.read_text(encoding="utf-8"), re.MULTILINE)
    exported = exported_series_names()
    suffix = {"gauge": "", "counter": "", "histogram": "_bucket"}
    missing = [name for name, kind in table if name + suffix[kind] not in exported]
    assert table and not missing
