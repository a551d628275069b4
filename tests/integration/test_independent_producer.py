"""Records written by a client that shares no code with kefu-pulse (kcat, on librdkafka), as a
shop's connector would: valid events are applied, every invalid one reaches the dead-letter
topic with its reason, and the valid events around the invalid ones are not disturbed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

from tests.integration.harness import Deployment, chat_message, http_get, wait_for

KCAT = shutil.which("kcat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="Debian package kcat is not installed")


def kcat_produce(deployment: Deployment, kind: str, lines: list[tuple[str, str]]) -> None:
    """One record per (key, value) line. librdkafka's default partitioner is CRC32; the contract
    (events.md) is Kafka's murmur2, which librdkafka calls `murmur2_random`."""
    payload = "".join(f"{key}\t{value}\n" for key, value in lines)
    subprocess.run(
        [
            str(KCAT),
            "-P",
            "-b",
            deployment.stack.bootstrap,
            "-t",
            deployment.topics[kind],
            "-K",
            "\t",
            "-X",
            "partitioner=murmur2_random",
        ],
        input=payload.encode(),
        check=True,
        timeout=60,
    )


def test_kcat_records_are_applied_and_invalid_ones_dead_lettered(deployment: Deployment) -> None:
    deployment.create_topics()
    now = time.time_ns() // 1_000_000
    future = now + 3_600_000
    good = [
        chat_message("k1", "tb_1", "buyer", now - 20_000),
        chat_message("k2", "tb_1", "agent", now - 14_000),
        chat_message("k3", "tb_2", "buyer", now - 10_000),
        chat_message("k4", "tb_2", "agent", now - 6_000),
    ]
    messages = [
        ("s1:tb_1", json.dumps(good[0])),
        ("s1:tb_1", "{this is not json"),
        ("s1:tb_1", json.dumps(good[1])),
        ("s1:tb_2", json.dumps(good[2])),
        ("s1:tb_2", json.dumps({k: v for k, v in good[3].items() if k != "sender"})),
        ("s1:tb_2", json.dumps(chat_message("k5", "tb_2", "buyer", future))),
        ("s1:tb_2", json.dumps(good[3])),
    ]
    orders = [
        (
            "s1:tb_2",
            json.dumps(
                {
                    "event_id": "o1",
                    "type": "order",
                    "shop_id": "s1",
                    "buyer_id": "tb_2",
                    "order_id": "T1",
                    "status": "paid",
                    "amount": "-3.00",
                    "ts": now - 5_000,
                }
            ),
        )
    ]
    kcat_produce(deployment, "messages", messages)
    kcat_produce(deployment, "orders", orders)
    _, port = deployment.start_worker()

    letters = [json.loads(r.value) for r in deployment.read_topic("deadletter", expected=4, timeout=60)]
    assert sorted(letter["reason"] for letter in letters) == [
        "bad_amount",
        "future_ts",
        "invalid_json",
        "missing_field",
    ]
    assert {letter["raw"] for letter in letters} >= {"{this is not json"}
    assert all(letter["topic"] in deployment.topics.values() and letter["offset"] >= 0 for letter in letters)

    def applied_floor() -> dict[str, Any]:
        return next(r for r in deployment.stats("s1")["agents"] if r["agent"] == "s1:a")

    wait_for(
        lambda: applied_floor()["windows"]["28d"]["replied_consultations"] == 2,
        timeout=60,
        what="both kcat conversations applied",
    )
    window = applied_floor()["windows"]["28d"]
    assert (window["consultations"], window["first_response_avg_seconds"]) == (2, 5.0)  # (6 s + 4 s) / 2
    metrics = http_get(port, "/metrics")
    for reason in ("invalid_json", "missing_field", "future_ts", "bad_amount"):
        assert f'kefu_events_rejected_total{{reason="{reason}"}} 1.0' in metrics
