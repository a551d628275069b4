"""The example Alertmanager configuration, through amtool and a real Alertmanager (0.25)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from streams.commands.notify import DEFAULT_PORT as NOTIFY_PORT
from tests.deploy.tools import (
    DEPLOY,
    RULES,
    assert_succeeded,
    free_port,
    load_yaml,
    load_yaml_documents,
    run_tool,
    wait_until,
)

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def test_amtool_accepts_the_configuration() -> None:
    result = run_tool("amtool", "check-config", str(CONFIG))
    assert_succeeded(result)
    assert "SUCCESS" in result.stdout


def route(*labels: str) -> list[str]:
    result = run_tool("amtool", "config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert_succeeded(result)
    return result.stdout.split()


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=BuyerWaitingTooLong", "shop=shop0", "agent=shop0:agent0"), "shop0-floor"),
        (("alertname=FirstResponseSlow", "shop=shop1", "agent=shop1:agent3"), "shop1-floor"),
        (("alertname=BuyerWaitingTooLong", "shop=shop42", "agent=shop42:a"), "kefu-floor"),
    ],
)
def test_shop_alerts_go_to_their_shop(labels: tuple[str, ...], receiver: str) -> None:
    assert route(*labels) == [receiver]


def test_every_worker_health_alert_goes_to_the_operators() -> None:
    names = [
        rule["alert"]
        for group in load_yaml(RULES)["groups"]
        for rule in group["rules"]
        if rule.get("alert", "").startswith("Kefu")
    ]
    assert names
    # notify's own health reaches the operators without notify too (a review found it went
    # only through notify: never delivered while notify was down).
    about_notify = {"KefuNotifyDown", "KefuNotificationsLost"}
    assert about_notify <= set(names)
    for name in names:
        expected = ["kefu-ops-direct,kefu-ops"] if name in about_notify else ["kefu-ops"]
        assert route(f"alertname={name}", "job=kefu-pulse", "instance=w1") == expected, name


def test_inhibition_names_alerts_the_rules_define() -> None:
    alerts = {rule.get("alert") for group in load_yaml(RULES)["groups"] for rule in group["rules"]}
    (rule,) = load_yaml(CONFIG)["inhibit_rules"]
    assert rule["source_matchers"] == ['alertname="BuyerWaitingTooLong"']
    assert rule["target_matchers"] == ['alertname="FirstResponseSlow"']
    assert {"BuyerWaitingTooLong", "FirstResponseSlow"} <= alerts
    assert set(rule["equal"]) == {"shop", "agent"}


def test_webhooks_reach_notify_in_compose_and_kubernetes_and_wecom_uses_wechat_configs() -> None:
    receivers = load_yaml(CONFIG)["receivers"]
    hooks = [hook for receiver in receivers for hook in receiver.get("webhook_configs", [])]
    assert {receiver["name"] for receiver in receivers if "webhook_configs" in receiver} == {
        "kefu-floor",
        "shop0-floor",
        "shop1-floor",
        "kefu-ops",
    }
    assert all(hook["send_resolved"] is True for hook in hooks)
    (url,) = {urlsplit(hook["url"]) for hook in hooks}
    assert (url.hostname, url.port, url.path) == ("notify", NOTIFY_PORT, "/alertmanager")
    wechats = [config for receiver in receivers for config in receiver.get("wechat_configs", [])]
    assert {receiver["name"] for receiver in receivers if "wechat_configs" in receiver} == {
        "shop0-floor",
        "kefu-ops-direct",
    }
    for wechat in wechats:
        assert {"corp_id", "agent_id", "to_party", "api_secret"} <= set(wechat)
        assert all(
            str(wechat[key]).startswith("<") for key in ("corp_id", "agent_id", "to_party", "api_secret")
        )

    compose = load_yaml(DEPLOY / "compose.yaml")["services"]
    assert compose["notify"]["command"] == ["kefu-pulse", "notify", "--port", str(url.port)]
    assert str(url.port) in compose["notify"]["expose"]
    manifests = {
        (d["kind"], d["metadata"]["name"]): d for d in load_yaml_documents(DEPLOY / "k8s" / "notify.yaml")
    }
    (service_port,) = manifests[("Service", url.hostname)]["spec"]["ports"]
    (container,) = manifests[("Deployment", "kefu-pulse-notify")]["spec"]["template"]["spec"]["containers"]
    assert service_port["port"] == url.port
    assert container["args"] == ["kefu-pulse", "notify", "--port", str(url.port)]
    assert [p["containerPort"] for p in container["ports"]] == [url.port]


class Alertmanager:
    def __init__(self, binary: str, tmp: Path) -> None:
        self.port = free_port()
        self.log = (tmp / "alertmanager.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={CONFIG}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip port: one instance, no collisions
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ready, timeout=30, describe=lambda: "alertmanager ready")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v2{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("alertmanager is not installed (Debian package prometheus-alertmanager)")
    manager = Alertmanager(binary, tmp_path)
    try:
        yield manager
    finally:
        manager.close()


def test_a_waiting_buyer_silences_the_same_agents_slow_first_response(alertmanager: Alertmanager) -> None:
    def alert(name: str, agent: str) -> dict[str, Any]:
        return {"labels": {"alertname": name, "shop": "shop0", "agent": agent, "severity": "warning"}}

    alertmanager.api(
        "/alerts",
        [
            alert("BuyerWaitingTooLong", "shop0:agent0"),
            alert("FirstResponseSlow", "shop0:agent0"),
            alert("FirstResponseSlow", "shop0:agent1"),
        ],
    )

    def states() -> dict[tuple[str, str], str]:
        return {
            (a["labels"]["alertname"], a["labels"]["agent"]): a["status"]["state"]
            for a in alertmanager.api("/alerts")
        }

    expected = {
        ("BuyerWaitingTooLong", "shop0:agent0"): "active",
        ("FirstResponseSlow", "shop0:agent0"): "suppressed",
        ("FirstResponseSlow", "shop0:agent1"): "active",
    }
    wait_until(lambda: states() == expected, timeout=15, describe=lambda: f"want {expected}, have {states()}")
