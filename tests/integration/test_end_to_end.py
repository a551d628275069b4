"""The response metrics end to end: replay file → real Kafka → real worker → Redis → stats."""

from __future__ import annotations

import json

from tests.integration import scenario
from tests.integration.harness import Deployment, http_get, wait_for


def test_scenario_through_replay_worker_and_stats(deployment: Deployment) -> None:
    deployment.config.write_text(deployment.config.read_text() + scenario.SHOP_YAML)
    deployment.create_topics()
    deployment.create_topics()  # idempotent
    events, invalid, _ = scenario.build()
    path = scenario.write_replay_file(deployment.tmp / "scenario.jsonl", events, invalid)
    replayed = deployment.cli("replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    assert "scenario.jsonl:11: skipped: not JSON" in replayed.stderr

    _, port = deployment.start_worker()
    deadletters = deployment.read_topic("deadletter", expected=2)
    assert sorted(json.loads(r.value)["reason"] for r in deadletters) == ["unknown_sender", "unknown_type"]
    letter = json.loads(deadletters[0].value)
    assert letter["topic"] == deployment.topics["messages"] and letter["raw"].startswith('{"event_id": "x')

    floor = deployment.stats("s1")
    rows = {row["agent"]: row for row in floor["agents"]}
    for agent, expected in scenario.EXPECTED_28D.items():
        got = {k: rows[agent]["windows"]["28d"][k] for k in expected}
        assert got == expected, agent
    assert rows["s1:a"]["name"] == "小美"
    assert rows["s1:a"]["waiting_buyers"] == 1 and rows["s1:a"]["oldest_wait_seconds"] >= 30
    assert rows["s1:b"]["waiting_buyers"] == 0 and rows["s1:b"]["oldest_wait_seconds"] == 0
    assert "ad_spam_1" not in json.dumps(floor)

    api = json.loads(http_get(port, "/api/v1/floor?shop=s1"))
    assert {r["agent"]: r["windows"]["28d"] for r in api["agents"]} == {
        r["agent"]: r["windows"]["28d"] for r in floor["agents"]
    }
    gauge = 'kefu_consultations{agent="s1:a",shop="s1",window="28d"} 4.0'
    wait_for(lambda: gauge in http_get(port, "/metrics"), timeout=30, what="the leader's window gauges")
    metrics = http_get(port, "/metrics")
    assert 'kefu_reply_ratio{agent="s1:b",shop="s1",window="28d"} 1.0' in metrics
    assert 'kefu_waiting_buyers{agent="s1:a",shop="s1"} 1.0' in metrics
    assert 'kefu_first_response_seconds_bucket{agent="s1:a",le="15.0",shop="s1"} 1.0' in metrics  # 12 s
    assert 'kefu_first_response_seconds_bucket{agent="s1:a",le="30.0",shop="s1"} 2.0' in metrics  # and 20 s
    # An empty denominator exports no series: s1:b had no consultation in the last 5 minutes.
    assert 'kefu_reply_ratio{agent="s1:b",shop="s1",window="5m"}' not in metrics
    assert 'kefu_events_rejected_total{reason="unknown_sender"} 1.0' in metrics
    messages = deployment.topics["messages"]
    assert f'kefu_events_total{{outcome="duplicate",topic="{messages}"}} 1.0' in metrics
    # ./test builds the native outbox encoder and requires it: the worker runs it, and says so.
    assert 'kefu_outbox_encoder_info{kind="native"' in metrics
    # Its first batch left the start-up objects out of the collector's walk (agents/worker/heap.py).
    worker_logs = deployment.tmp.glob(f"worker-{deployment.name}-*.log")
    logs = "".join(path.read_text(errors="replace") for path in worker_logs)
    assert "start-up objects left out of garbage collection" in logs
