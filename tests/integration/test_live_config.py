"""Block lists change while running: the change applies to events processed after it."""

from __future__ import annotations

import time

from tests.integration.harness import Deployment, chat_message, wait_for


def test_block_list_change_applies_to_later_events(deployment: Deployment) -> None:
    deployment.create_topics()
    deployment.start_worker()
    now = time.time_ns() // 1_000_000
    deployment.wait_applied(deployment.produce([chat_message("m1", "vip_1", ts=now - 5000)]))
    deployment.config.write_text(deployment.config.read_text() + "shops: {s1: {block: ['vip_*']}}\n")
    log = next(deployment.tmp.glob("worker-*.log"))
    wait_for(lambda: "configuration reloaded" in log.read_text(), timeout=30, what="the worker to reload")
    deployment.wait_applied(
        deployment.produce([chat_message("m2", "vip_2", ts=now - 4000), chat_message("m3", "b_3", ts=now)])
    )
    agents = {r["agent"]: r for r in deployment.stats("s1")["agents"]}
    # vip_1 was counted before the change and stays counted; vip_2 came after it.
    assert agents["s1:a"]["windows"]["today"]["consultations"] == 2
    assert agents["s1:a"]["waiting_buyers"] == 2
