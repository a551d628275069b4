"""Agent status (v3) through real Kafka and a real worker: status events on kefu.agents become
the floor's `agent_status` and online time and `kefu_agent_status`; bad ones are dead-lettered
with their reason; a SIGKILL between applying a batch and raising its offsets changes no number;
a Kafka without the topic still runs v2 and says so once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient

from tests.integration.harness import ROOT, Deployment, Stack, free_port, http_get, http_status, wait_for
from tests.integration.slow_status_worker import STATUS_APPLIED

STATUS_DB = 11  # see test_status_store.py
MIN = 60_000


@pytest.fixture
def deployment(stack: Stack, tmp_path: Path) -> Any:
    deployment = Deployment(stack, tmp_path, redis_db=STATUS_DB)
    try:
        yield deployment
    finally:
        deployment.close()


def status(event_id: str, agent: str, state: str, ts: int) -> tuple[str, bytes, bytes]:
    event = {
        "event_id": event_id,
        "type": "agent_status",
        "shop_id": "s1",
        "agent_id": agent,
        "status": state,
        "ts": ts,
    }
    return ("agents", f"s1:{agent}".encode(), json.dumps(event).encode())


def history(now: int) -> list[tuple[str, bytes, bytes]]:
    """Two agents' last two hours, ending offline, with a late event and a duplicate: their `28d`
    figures no longer move. s1:a online 40 min (10 of them away), s1:b online 60 (20 away)."""
    return [
        status("a1", "s1:a", "online", now - 100 * MIN),
        status("b1", "s1:b", "online", now - 90 * MIN),
        status("a2", "s1:a", "away", now - 80 * MIN),
        status("a3", "s1:a", "online", now - 70 * MIN),
        status("a4", "s1:a", "offline", now - 60 * MIN),
        status("b3", "s1:b", "offline", now - 30 * MIN),
        status("b2", "s1:b", "away", now - 50 * MIN),  # late: produced after the offline it precedes
        status("a3", "s1:a", "offline", now - 65 * MIN),  # a duplicate event id, edited: nothing
    ]


EXPECTED = {"s1:a": ("offline", 2400.0, 600.0, 1), "s1:b": ("offline", 3600.0, 1200.0, 1)}


def floor_status(port: int) -> dict[str, tuple[str, float, float, int]]:
    floor = json.loads(http_get(port, "/api/v1/floor?shop=s1"))
    return {
        row["agent"]: (
            row["agent_status"],
            row["windows"]["28d"]["online_seconds"],
            row["windows"]["28d"]["away_seconds"],
            row["windows"]["28d"]["logins"],
        )
        for row in floor["agents"]
    }


def start_slow_worker(deployment: Deployment, raise_seconds: float) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = deployment.tmp / f"slow-status-{deployment.name}.log"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.slow_status_worker", "worker", "-l", "info"],
        env=deployment.env(
            KEFU_WEB_PORT=str(port), KEFU_TEST_RAISE_SECONDS=str(raise_seconds), PYTHONPATH=str(ROOT)
        ),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=deployment.tmp,
        start_new_session=True,
    )
    deployment.workers.append(proc)
    wait_for(lambda: http_status(port, "/healthz") == 200, timeout=60, what="worker /healthz")
    return proc, log_path


def test_status_events_reach_the_floor_and_metrics_and_bad_ones_the_dead_letters(
    deployment: Deployment,
) -> None:
    deployment.create_topics()
    now = time.time_ns() // 1_000_000
    bad = [
        (
            "agents",
            b"s1:s1:a",
            json.dumps({**json.loads(status("x1", "s1:a", "online", now)[2]), "status": "busy"}).encode(),
        ),
        ("agents", b"s1:s1:zz", status("x2", "s1:a", "online", now)[2]),
    ]
    last = deployment.produce([*history(now), *bad, status("c1", "s1:c", "away", now - 5 * MIN)])
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    expected = EXPECTED | {"s1:c": ("away", None, None, 1)}

    def shown() -> bool:
        found = floor_status(port)
        return {a: v if a != "s1:c" else (v[0], None, None, v[3]) for a, v in found.items()} == expected

    wait_for(shown, timeout=30, what=f"the floor's agent status {expected}")
    c_5m = json.loads(http_get(port, "/api/v1/floor?shop=s1"))["agents"]
    c_row = next(row for row in c_5m if row["agent"] == "s1:c")["windows"]["5m"]
    assert c_row["away_seconds"] == c_row["online_seconds"] and 290 <= c_row["online_seconds"] <= 300 + 60

    def metric(agent: str, state: str) -> str:
        return f'kefu_agent_status{{agent="{agent}",shop="s1",status="{state}"}} '

    wait_for(
        lambda: metric("s1:c", "away") + "1.0" in http_get(port, "/metrics"),
        timeout=30,
        what="kefu_agent_status",
    )
    text = http_get(port, "/metrics")
    assert metric("s1:a", "offline") + "1.0" in text and metric("s1:a", "online") + "0.0" in text
    assert 'kefu_events_rejected_total{reason="unknown_status"} 1.0' in text
    assert 'kefu_events_rejected_total{reason="bad_key"} 1.0' in text
    assert f'kefu_events_total{{outcome="duplicate",topic="{deployment.topics["agents"]}"}} 1.0' in text
    letters = [json.loads(r.value) for r in deployment.read_topic("deadletter", expected=2)]
    assert sorted((d["reason"], d["topic"]) for d in letters) == [
        ("bad_key", deployment.topics["agents"]),
        ("unknown_status", deployment.topics["agents"]),
    ]


def test_sigkill_after_applying_before_raising_the_offsets_changes_no_number(deployment: Deployment) -> None:
    deployment.create_topics()
    now = time.time_ns() // 1_000_000
    last = deployment.produce(history(now))
    proc, log_path = start_slow_worker(deployment, raise_seconds=120)
    wait_for(
        lambda: STATUS_APPLIED in log_path.read_text(errors="replace"),
        timeout=60,
        what="a status batch applied",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deployment.workers.clear()
    applied = deployment.applied_offsets()
    assert all(applied.get(tp, -1) < offset for tp, offset in last.items()), (
        "killed after the raise: proves nothing"
    )
    points_at_kill = {k: deployment.redis.zcard(k) for k in deployment.redis.scan_iter("kp:*:st")}
    assert points_at_kill, "killed before applying: proves less"
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    wait_for(lambda: floor_status(port) == EXPECTED, timeout=30, what=f"the floor's agent status {EXPECTED}")
    points = {k: deployment.redis.zcard(k) for k in deployment.redis.scan_iter("kp:*:st")}
    # The killed batch may hold one agent's partition only (the first fetch after an assignment
    # need not bring every partition): what it applied is applied again, and changes nothing.
    assert {k: points[k] for k in points_at_kill} == points_at_kill
    assert sum(points.values()) == 7  # 8 events, one duplicate


def test_without_the_topic_a_worker_runs_v2_and_says_so_once(deployment: Deployment) -> None:
    deployment.create_topics()
    admin = KafkaAdminClient(bootstrap_servers=deployment.stack.bootstrap, **deployment.kafka_client_kwargs())
    try:
        admin.delete_topics([deployment.topics["agents"]])
        wait_for(
            lambda: deployment.topics["agents"] not in admin.list_topics(), timeout=30, what="topic deleted"
        )
        deployment.start_worker()
        last = deployment.produce(
            [
                (
                    "messages",
                    b"s1:tb_1",
                    json.dumps(
                        {
                            "event_id": "m1",
                            "type": "message",
                            "shop_id": "s1",
                            "buyer_id": "tb_1",
                            "agent_id": "s1:a",
                            "sender": "buyer",
                            "ts": time.time_ns() // 1_000_000,
                        }
                    ).encode(),
                )
            ]
        )
        deployment.wait_applied(last)
        assert deployment.topics["agents"] not in admin.list_topics(), "the worker had the topic created"
    finally:
        admin.close()
    deployment.stop_workers()
    log = next(deployment.tmp.glob(f"worker-{deployment.name}-0.log")).read_text(errors="replace")
    assert log.count("v3 agent status") == 1, log[-3000:]


def test_rebuild_restores_the_status_history(deployment: Deployment) -> None:
    deployment.create_topics()
    last = deployment.produce(history(time.time_ns() // 1_000_000))
    result = deployment.rebuild()  # no worker ever read kefu.agents: only rebuild can
    assert result.returncode == 0, result.stderr
    assert all(deployment.applied_offsets().get(tp, -1) >= offset for tp, offset in last.items())
    _, port = deployment.start_worker()
    wait_for(lambda: floor_status(port) == EXPECTED, timeout=30, what=f"the floor's agent status {EXPECTED}")
