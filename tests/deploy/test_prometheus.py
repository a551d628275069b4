"""The shipped Prometheus rules and configuration, through Debian's promtool (Prometheus 2.42)."""

from __future__ import annotations

import re

from tests.deploy.tools import DEPLOY, RULES, assert_succeeded, load_yaml, run_tool

RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
SPEC_ALERTS = {"BuyerWaitingTooLong", "FirstResponseSlow"}  # metrics.md, "Alerts"
HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


def alert_rules() -> list[dict[str, object]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    result = run_tool("promtool", "check", "rules", str(RULES))
    assert_succeeded(result)
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool unit tests under deploy/prometheus/tests"
    result = run_tool("promtool", "test", "rules", *map(str, RULE_TESTS))
    assert_succeeded(result)
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_every_alert_has_a_firing_case_in_the_unit_tests() -> None:
    """An alert nobody expects to fire is untested, however many quiet cases pass."""
    expected_firing = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    expected_firing.add(check["alertname"])
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names >= SPEC_ALERTS
    assert names - expected_firing == set()


def test_spec_alerts_compare_with_the_exported_threshold_now() -> None:
    for rule in alert_rules():
        if rule["alert"] not in SPEC_ALERTS:
            continue
        expr = str(rule["expr"])
        assert "kefu_alert_threshold_seconds" in expr and "group_left" in expr
        assert not re.search(r"(?<![\w.])15(?![\w.])", expr), "a hard-coded default threshold"
        assert "for" not in rule, "metrics.md says 'now': no pending period"


def test_alerts_carry_severity_and_bilingual_annotations() -> None:
    for rule in alert_rules():
        labels = rule.get("labels")
        annotations = rule.get("annotations")
        assert isinstance(labels, dict) and isinstance(annotations, dict), rule["alert"]
        assert labels.get("severity") in {"critical", "warning", "info"}, rule["alert"]
        for key in ("summary", "description"):
            text = str(annotations[key])
            assert HAN.search(text) and LATIN_WORD.search(text), f"{rule['alert']} {key}: {text}"
        if rule["alert"] in SPEC_ALERTS:
            assert {"shop", "agent"} <= set(re.findall(r"\$labels\.(\w+)", str(annotations["summary"])))


def test_the_service_alerts_are_evaluated_as_often_as_the_workers_are_scraped() -> None:
    """At the global 15 s, a wait of 16-30 s could start and end between two evaluations and
    never alert, where the worker's kefu.alerts fired (found in review). promtool's tests run
    every group at the file's interval, so short_wait_test.yml models this interval."""
    groups = {group["name"]: group for group in load_yaml(RULES)["groups"]}
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert groups["kefu-pulse.service"]["interval"] == jobs["kefu-pulse"]["scrape_interval"] == "5s"
    short = load_yaml(DEPLOY / "prometheus" / "tests" / "short_wait_test.yml")
    assert short["evaluation_interval"] == groups["kefu-pulse.service"]["interval"]


def test_promtool_checks_the_compose_configuration() -> None:
    """check config also loads rule_files relative to the file: the rules the container mounts."""
    config = DEPLOY / "prometheus" / "prometheus.yml"
    result = run_tool("promtool", "check", "config", str(config))
    assert_succeeded(result)
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout
