"""`kefu-pulse notify` on the real stack, against the stand-in robots (tests/robots.py).

Alert events are produced straight onto the deployment's alerts topic (no 15 s waits). The
deployment's `retry_seconds` is 6: a robot down 3 s gets its message, one down longer gives a
dead letter. Redis db 14 (pinned here; conftest.py's fixtures cycle through 1-4 and 7).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.integration.harness import KEFU, ROOT, Deployment, Stack, free_port, http_status, wait_for
from tests.robots import RobotServer

SECRETS = {"dingtalk": "SECdingtalk0a1b2c3d4e5f60718293a4b5c6d7e8f9", "webhook": "hook-secret-5d1e9a7c3b"}
# No daily digest: started within two hours after 09:00 Shanghai time (01:00-03:00 UTC), notify
# sends the day's digest late, a third message the tests here do not expect
# (test_notify_digest.py tests the digests).
SHOPS_YAML = """defaults:
  notify:
    retry_seconds: 6
    digest_at: null
    channels:
      - {type: dingtalk, url_env: KEFU_TEST_ROBOT_DINGTALK_URL, secret_env: KEFU_TEST_ROBOT_DINGTALK_SECRET}
      - {type: webhook, url_env: KEFU_TEST_ROBOT_WEBHOOK_URL, secret_env: KEFU_TEST_ROBOT_WEBHOOK_SECRET}
shops:
  s1:
    name: 旗舰店
    agents:
      a: {name: 小美}
"""
ROBOTS = ("dingtalk", "webhook")


@pytest.fixture(scope="module")
def robots() -> Iterator[RobotServer]:
    with RobotServer(SECRETS) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture(scope="module")
def deployment(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = Deployment(stack, tmp_path_factory.mktemp("notify"), shops_yaml=SHOPS_YAML, redis_db=14)
    deployment.create_topics()
    try:
        yield deployment
    finally:
        deployment.close()


class Notify:
    def __init__(self, deployment: Deployment, robots: RobotServer) -> None:
        self.deployment, self.robots = deployment, robots
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.port = 0  # the last started process's /metrics and /alertmanager

    def start(self) -> None:
        port = self.port = free_port()
        log = self.deployment.tmp / f"notify-{len(self.procs)}-{port}.log"
        proc = subprocess.Popen(
            [str(KEFU), "notify", "--port", str(port)],
            env=self.deployment.env(**self.robots.environ(), PYTHONPATH=str(ROOT)),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=self.deployment.tmp,
            start_new_session=True,
        )
        self.procs.append((proc, log))
        wait_for(lambda: http_status(port, "/metrics") == 200, timeout=60, what="notify /metrics")

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.procs)


@pytest.fixture
def notify(deployment: Deployment, robots: RobotServer) -> Iterator[Notify]:
    robots.clear()
    running = Notify(deployment, robots)
    try:
        yield running
    finally:
        running.stop()
        logs = running.logs()
        leaked = [s for s in [*SECRETS.values(), *robots.tokens.values()] if s in logs]
        assert leaked == [], "a robot secret or token is in notify's log"


def alert(agent: str, state: str, episode: int, value: float = 23.0, shop: str = "s1") -> dict[str, Any]:
    return {
        "alert": "BuyerWaitingTooLong",
        "state": state,
        "shop_id": shop,
        "agent_id": agent,
        "value": value,
        "threshold": 15.0,
        "ts": int(time.time() * 1000),
        "alert_id": f"BuyerWaitingTooLong|{shop}|{agent}|{episode}",
    }


def produce(deployment: Deployment, alerts: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=deployment.stack.bootstrap, linger_ms=5, **deployment.kafka_client_kwargs()
    )
    for event in alerts:
        key = f"{event['shop_id']}:{event['agent_id']}".encode()
        producer.send(deployment.topics["alerts"], key=key, value=json.dumps(event).encode())
    producer.flush()
    producer.close()


def texts(robots: RobotServer, robot: str) -> list[str]:
    return [m.text for m in robots.messages(robot)]  # type: ignore[arg-type]


def settle(robots: RobotServer, seconds: float = 2.0) -> None:
    """Nothing more arrives for `seconds` (what must not come has had its chance)."""
    count = -1
    while count != len(robots.messages()):
        count = len(robots.messages())
        time.sleep(seconds)


def test_one_firing_and_one_resolved_message_in_chinese_and_repeats_dropped_across_restarts(
    deployment: Deployment, robots: RobotServer, notify: Notify
) -> None:
    notify.start()
    episode = [alert("a", "firing", 1), alert("a", "resolved", 1)]
    produce(deployment, episode)
    wait_for(lambda: all(len(robots.messages(r)) == 2 for r in ROBOTS), 90, "both messages on both robots")  # type: ignore[arg-type]
    for robot in ROBOTS:
        first, second = texts(robots, robot)
        assert "【客服预警】旗舰店 · 小美：买家已等待 23 秒（阈值 15 秒）" in first
        assert "【客服预警】旗舰店 · 小美：已恢复" in second
    produce(deployment, episode)  # the same events again: dropped
    notify.stop()
    notify.start()  # a new process: the ledger in Redis still knows them
    produce(deployment, episode)
    settle(robots)
    assert [len(robots.messages(r)) for r in ROBOTS] == [2, 2]  # type: ignore[arg-type]


def test_two_processes_send_each_message_once(
    deployment: Deployment, robots: RobotServer, notify: Notify
) -> None:
    notify.start()
    notify.start()
    agents = [f"two{n}" for n in range(8)]
    produce(deployment, [alert(agent, "firing", 2) for agent in agents])
    wait_for(
        lambda: all(all(any(a in t for t in texts(robots, "webhook")) for a in agents) for _ in [0]),
        90,
        "all",
    )
    settle(robots)
    joined = "\n".join(texts(robots, "webhook"))
    assert [joined.count(f"{agent}：") + joined.count(f"{agent} ") for agent in agents] == [1] * 8


def test_a_flood_of_5000_alerts_is_at_most_20_messages_a_minute_naming_every_agent(
    deployment: Deployment, robots: RobotServer, notify: Notify
) -> None:
    notify.start()
    agents = [f"flood{n:04d}" for n in range(5000)]
    produce(deployment, [alert(agent, "firing", 3, value=16 + n % 40) for n, agent in enumerate(agents)])

    def named() -> bool:
        joined = "\n".join(texts(robots, "dingtalk"))
        return all(agent in joined for agent in agents)

    wait_for(named, 150, "every agent named on the DingTalk robot")
    settle(robots)
    for robot in ROBOTS:
        times = [m.at for m in robots.messages(robot)]  # type: ignore[arg-type]
        assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 20


def test_a_robot_back_within_retry_seconds_gets_it_and_one_down_longer_gives_a_dead_letter(
    deployment: Deployment, robots: RobotServer, notify: Notify
) -> None:
    notify.start()
    robots.down("dingtalk", 3)
    produce(deployment, [alert("short", "firing", 4)])
    wait_for(lambda: any("short" in t for t in texts(robots, "dingtalk")), 90, "the message after the outage")
    robots.down("dingtalk", 120)  # past retry_seconds however late a loaded machine reads it
    produce(deployment, [alert("long", "firing", 4)])
    letters: list[dict[str, Any]] = []

    def dead_lettered() -> bool:
        letters.extend(json.loads(r.value) for r in deployment.read_topic("deadletter", 1, timeout=2))
        return any("long" in letter["raw"] for letter in letters)

    wait_for(dead_lettered, 90, "the dead letter")
    robots.down("dingtalk", 0)  # back, for the tests after this one
    letter = next(letter for letter in letters if "long" in letter["raw"])
    assert letter["reason"] == "notify: robot unreachable for 6 s"
    assert letter["topic"] == deployment.topics["alerts"]
    assert all(token not in json.dumps(letter) for token in robots.tokens.values())
    assert not any("long" in t for t in texts(robots, "dingtalk"))
    assert any("long" in t for t in texts(robots, "webhook"))  # the other channel had it


def alertmanager_payload(
    status: str,
    starts_at: str,
    name: str = "AgentIdleTooLong",
    summary: str = "客服空闲过久 Agent idle: a @ s1",
) -> bytes:
    """Alertmanager 0.25's webhook body for one rule alert of shop s1's agent a (a shop's own
    rule by default)."""
    alert = {
        "status": status,
        "labels": {"alertname": name, "shop": "s1", "agent": "a", "severity": "warning"},
        "annotations": {"summary": summary},
        "startsAt": starts_at,
        "endsAt": starts_at if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"it{starts_at}",
    }
    body = {"version": "4", "receiver": "kefu-floor", "status": status, "alerts": [alert]}
    return json.dumps(
        {**body, "groupLabels": {}, "commonLabels": {}, "externalURL": "http://am:9093"}
    ).encode()


def post_alertmanager(notify: Notify, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{notify.port}/alertmanager",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_alertmanagers_webhook_reaches_the_same_robots_once_per_episode_and_state(
    robots: RobotServer, notify: Notify
) -> None:
    notify.start()
    starts_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The worker's own alerts reach the robots from kefu.alerts: the rules' copies are left out.
    worker_own = alertmanager_payload("firing", starts_at, "FirstResponseSlow", "首次响应过慢")
    assert post_alertmanager(notify, worker_own) == 200
    firing = alertmanager_payload("firing", starts_at)
    assert post_alertmanager(notify, firing) == 200
    wait_for(lambda: len(robots.messages("dingtalk")) == 1, 60, "the rule alert on the DingTalk robot")
    (first,) = texts(robots, "dingtalk")
    assert "【kefu-pulse 告警】旗舰店 · 小美 · AgentIdleTooLong：客服空闲过久" in first
    assert post_alertmanager(notify, firing) == 200  # Alertmanager's repeat_interval
    settle(robots)
    assert len(robots.messages("dingtalk")) == 1
    assert post_alertmanager(notify, alertmanager_payload("resolved", starts_at)) == 200
    wait_for(lambda: len(robots.messages("dingtalk")) == 2, 60, "the resolved notice")
    assert "AgentIdleTooLong：已恢复" in texts(robots, "dingtalk")[1]
    assert not any("FirstResponseSlow" in text for text in texts(robots, "dingtalk"))


def test_a_missing_secret_is_one_sentence_at_start_up_without_any_secret(
    deployment: Deployment, robots: RobotServer
) -> None:
    env = deployment.env(**robots.environ())
    del env["KEFU_TEST_ROBOT_WEBHOOK_SECRET"]
    result = subprocess.run(
        [str(KEFU), "notify", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "KEFU_TEST_ROBOT_WEBHOOK_SECRET" in lines[0], lines
    assert all(s not in result.stderr for s in [*SECRETS.values(), *robots.tokens.values()])


def test_notify_test_prints_each_robots_answer_and_fails_on_a_wrong_secret(
    deployment: Deployment, robots: RobotServer
) -> None:
    robots.clear()
    env = deployment.env(**robots.environ(), PYTHONPATH=str(ROOT))
    ok = subprocess.run(
        [str(KEFU), "notify", "--test", "s1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    answers = [line for line in ok.stdout.splitlines() if line.strip()]
    assert [line.split(":", 1)[0].split(" (")[1] for line in answers] == ["dingtalk)", "webhook)"], answers
    assert all(": sent" in line for line in answers), answers
    assert {m.robot for m in robots.messages()} == set(ROBOTS)
    assert all("旗舰店" in t for robot in ROBOTS for t in texts(robots, robot))

    env["KEFU_TEST_ROBOT_DINGTALK_SECRET"] = "SECwrong0000000000000000000000000000000000"
    wrong = subprocess.run(
        [str(KEFU), "notify", "--test", "s1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 1
    dingtalk = next(line for line in wrong.stdout.splitlines() if "(dingtalk)" in line)
    assert ": refused" in dingtalk, wrong.stdout
    assert "did not accept" in wrong.stderr
    printed = wrong.stdout + wrong.stderr
    assert all(s not in printed for s in [*SECRETS.values(), *robots.tokens.values(), "SECwrong"])
