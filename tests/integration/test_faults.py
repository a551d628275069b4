"""Faults against the real stack. Each run is compared with an uninterrupted
run of the same records; the difference in final numbers must be zero."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from streams.simulation.traffic import SimRecord
from tests.integration.differential import SHOPS, numbers, run
from tests.integration.harness import MID_RUN, ROOT, STACK, STACK_PREFIX, Deployment, Stack, wait_for


def applied(deployment: Deployment) -> int:
    return sum(offset + 1 for offset in deployment.applied_offsets().values())


def total(last: dict[tuple[str, int], int]) -> int:
    return sum(offset + 1 for offset in last.values())


def detail_rows(deployment: Deployment) -> dict[Any, Any]:
    """Every drill-down hash (agents/core/details.py) whole, by key."""
    return {key: deployment.redis.hgetall(key) for key in deployment.redis.scan_iter(match="kp:*:x:*")}


def test_state_lost_then_rebuild_from_retention(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=14)
    try:
        assert run(deployment, records) == reference
        live_rows = detail_rows(deployment)
        assert sum(len(rows) for rows in live_rows.values()) > 100
        deployment.stop_workers()
        deployment.redis.flushdb()  # Redis state lost
        rebuilt = deployment.rebuild()
        assert numbers(deployment) == reference, rebuilt.stderr
        assert detail_rows(deployment) == live_rows  # `rebuild` restores the lists too
    finally:
        deployment.close()


def test_state_lost_while_stopped_workers_resume_from_redis(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    """Kafka's committed offsets are at the end, Redis is empty: a restarted worker must re-read
    from the beginning (it resumes from Redis), not trust Kafka."""
    deployment = Deployment(stack, tmp_path, redis_db=15)
    try:
        assert run(deployment, records) == reference
        deployment.stop_workers()
        deployment.redis.flushdb()
        deployment.start_worker()
        wait_for(
            lambda: all(deployment.knows_shop(s) for s in SHOPS) and numbers(deployment) == reference,
            timeout=120,
            what="numbers rebuilt by a plain restart",
        )
    finally:
        deployment.close()


def test_sigterm_finishes_the_batch_and_exits_within_10s(
    deployment: Deployment, records: list[SimRecord], reference: dict[str, Any]
) -> None:
    deployment.create_topics()
    last = deployment.produce((r.kind, r.key, r.value) for r in records)
    proc, _ = deployment.start_worker(**MID_RUN)
    wait_for(lambda: deployment.applied_offsets(), timeout=60, what="the worker to apply something")
    assert applied(deployment) < len(records), "finished before the signal: the test would prove nothing"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert time.monotonic() - started < 10
    # The stopped worker makes no progress, so this proves the signal landed mid-run.
    assert applied(deployment) < total(last), "the worker finished before SIGTERM took effect"
    deployment.workers.clear()
    deployment.start_worker()
    deployment.wait_applied(last, timeout=120)
    assert numbers(deployment) == reference


def test_several_sigkills_in_one_run(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    """Killed without warning three times, at different points of the same replay, each time
    mid-batch as far as the worker knows: the numbers equal an uninterrupted run."""
    deployment = Deployment(stack, tmp_path, redis_db=8)
    try:
        deployment.create_topics()
        last = deployment.produce((r.kind, r.key, r.value) for r in records)
        records_total = total(last)
        kills = 0
        for share in (0.2, 0.45, 0.7):
            deployment.start_worker(**MID_RUN)
            wait_for(
                lambda share=share: applied(deployment) >= records_total * share,
                timeout=120,
                what=f"{share:.0%} of the records applied",
            )
            if applied(deployment) >= records_total:
                break
            deployment.stop_workers(signal.SIGKILL)
            # Nothing applies after a SIGKILL: work remaining now was remaining at the kill.
            assert applied(deployment) < records_total, f"kill {kills + 1} landed after the replay finished"
            kills += 1
        assert kills == 3, "the replay finished before the third kill: the test would prove less"
        deployment.start_worker()
        deployment.wait_applied(last, timeout=180)
        assert numbers(deployment) == reference
    finally:
        deployment.close()


@pytest.mark.parametrize(("service", "redis_db", "timeout"), [("redis", 9, 180), ("kafka", 6, 240)])
def test_restart_mid_stream(
    stack: Stack,
    records: list[SimRecord],
    reference: dict[str, Any],
    tmp_path: Path,
    service: str,
    redis_db: int,
    timeout: float,
) -> None:
    """Redis (with AOF) or the Kafka broker restarted while the worker is applying: it retries
    with backoff, commits nothing Redis does not hold, resumes, and the numbers are exact."""
    deployment = Deployment(stack, tmp_path, redis_db=redis_db)
    try:
        deployment.create_topics()
        last = deployment.produce((r.kind, r.key, r.value) for r in records)
        deployment.start_worker(**MID_RUN)
        wait_for(lambda: deployment.applied_offsets(), timeout=60, what="the worker to apply something")
        assert applied(deployment) < len(records), "finished before the restart: the test would prove nothing"
        subprocess.run(
            [str(STACK), f"restart-{service}", "--prefix", STACK_PREFIX], check=True, capture_output=True
        )
        # Applied offsets only grow: work remaining after the restart was remaining during it.
        assert applied(deployment) < total(last), f"the worker finished before {service} went away"
        deployment.wait_applied(last, timeout=timeout)
        assert numbers(deployment) == reference
    finally:
        deployment.close()


def test_bad_input_at_volume_and_late_events(deployment: Deployment, records: list[SimRecord]) -> None:
    """10 % invalid records mixed in: every one is dead-lettered with its reason, the valid ones
    give the numbers of a clean run, and events older than every window count as `late`."""
    import json
    import random

    from tests.integration.harness import http_get

    rng = random.Random(3)
    valid = [r for r in records if r.value.startswith(b"{") and r.value.endswith(b"}")][:6000]
    bad_values = [
        b"{not json",
        b"\xff\xfe",
        b'{"type": "message"}',
        b"[]",
        b'{"type": "order", "event_id": "x"}',
    ]
    mixed: list[tuple[str, bytes | None, bytes]] = []
    bad = 0
    for record in valid:
        mixed.append((record.kind, record.key, record.value))
        if rng.random() < 0.11:
            mixed.append(("messages", record.key, rng.choice(bad_values)))
            bad += 1
    old = int(time.time() * 1000) - 40 * 86_400_000
    late = {
        "event_id": "late-1",
        "type": "message",
        "shop_id": "shop0",
        "buyer_id": "tb_old",
        "agent_id": "shop0:agent0",
        "sender": "buyer",
        "ts": old,
    }
    mixed.append(("messages", b"shop0:tb_old", json.dumps(late).encode()))
    deployment.create_topics()
    _, port = deployment.start_worker()
    deployment.wait_applied(deployment.produce(mixed), timeout=180)
    letters = deployment.read_topic("deadletter", expected=bad, timeout=60)
    assert len(letters) == bad
    assert all(json.loads(r.value)["reason"] for r in letters)
    metrics = http_get(port, "/metrics")
    rejected = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("kefu_events_rejected_total{")
    )
    assert rejected == bad
    assert f'kefu_events_total{{outcome="late",topic="{deployment.topics["messages"]}"}} 1.0' in metrics

    clean = Deployment(deployment.stack, deployment.tmp, redis_db=5)
    try:
        clean.create_topics()
        clean.start_worker()
        clean.wait_applied(clean.produce((r.kind, r.key, r.value) for r in valid), timeout=180)
        assert numbers(deployment) == numbers(clean)
    finally:
        clean.close()


def test_backpressure_when_redis_stalls(deployment: Deployment) -> None:
    """With Redis paused, the worker stops fetching instead of buffering without bound, and
    finishes exactly once Redis is back. 150k records are ~24 MB of JSON (far more as Python
    objects): buffering them all would show in the worker's memory."""
    import itertools
    import os

    from streams.simulation.traffic import TrafficModel, TrafficShape

    start = time.time_ns() // 1_000_000 - 3 * 3_600_000
    model = TrafficModel(TrafficShape(shops=3, agents=6, rate=500), seed=11)
    big = [(r.kind, r.key, r.value) for r in itertools.islice(model.records(start), 150_000)]
    assert sum(len(v) for _, _, v in big) > 20_000_000
    deployment.create_topics()
    last = deployment.produce(big)
    proc, _ = deployment.start_worker()
    wait_for(lambda: deployment.applied_offsets(), timeout=60, what="the worker to apply something")
    redis_pid = int((ROOT / ".stack" / STACK_PREFIX / "redis.pid").read_text())
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        time.sleep(5)  # observation windows while Redis is stalled, not synchronisation
        rss_before = rss_mb(proc.pid)
        time.sleep(10)
        growth = rss_mb(proc.pid) - rss_before
        assert growth < 25, f"the worker kept buffering while Redis was stalled (+{growth:.0f} MB)"
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    # Applied offsets only grow: lag now means lag during the stall.
    assert applied(deployment) < total(last), "the worker had finished before Redis was stalled"
    deployment.wait_applied(last, timeout=300)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
