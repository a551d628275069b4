"""The batch input path under rebalances and kills, on the real stack. Workers are
slowed down where a test needs a batch in flight (slow_worker.py), so that each fault provably
lands mid-batch on a worker of any speed; every run must equal one uninterrupted worker's."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from streams.simulation.traffic import SimRecord
from streams.wire.batch_consumer import BATCH_IN_FLIGHT
from tests.integration.differential import numbers
from tests.integration.harness import Deployment, Stack, wait_for
from tests.integration.slow_worker import OUTBOX_PENDING


def applied(deployment: Deployment, last: dict[tuple[str, int], int]) -> int:
    return sum(offset + 1 for tp, offset in deployment.applied_offsets().items() if tp in last)


def log_of(deployment: Deployment, index: int) -> str:
    return (deployment.tmp / f"worker-{deployment.name}-{index}.log").read_text(errors="replace")


def started(deployment: Deployment, records: list[SimRecord]) -> tuple[dict[tuple[str, int], int], int]:
    deployment.create_topics()
    last = deployment.produce((r.kind, r.key, r.value) for r in records)
    return last, sum(offset + 1 for offset in last.values())


def kill_then_finish(
    deployment: Deployment,
    proc: subprocess.Popen[bytes],
    last: dict[tuple[str, int], int],
    total: int,
    reference: dict[str, Any],
) -> None:
    """SIGKILL `proc` now, check work remained, let a fresh worker finish: numbers as uninterrupted."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deployment.workers.remove(proc)
    assert applied(deployment, last) < total, "killed after the last batch: the test proves nothing"
    deployment.start_worker()
    deployment.wait_applied(last, timeout=240)
    assert numbers(deployment) == reference


def test_a_worker_joining_while_a_batch_is_in_flight_changes_no_number(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=9)
    try:
        last, total = started(deployment, records)
        deployment.start_worker(batch_seconds=1.0, batch_records=500)  # about 12 batches of a second
        wait_for(lambda: applied(deployment, last) > 0, timeout=60, what="the first batch applied")
        deployment.start_worker(batch_seconds=1.0, batch_records=500)  # joins: partitions move
        wait_for(lambda: BATCH_IN_FLIGHT in log_of(deployment, 0), timeout=60, what="a revocation mid-batch")
        assert applied(deployment, last) < total, "the rebalance came after the last batch"
        deployment.wait_applied(last, timeout=240)
        assert numbers(deployment) == reference
    finally:
        deployment.close()


def test_scaling_one_two_one_repeatedly_applies_every_offset_exactly_once(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=8)
    try:
        last, total = started(deployment, records)
        # 100-record fetches of 0.3 s each: over half a minute of work for one worker.
        slow = {"batch_seconds": 0.3, "batch_records": 50}
        deployment.start_worker(**slow)
        for round_ in range(3):
            second, _ = deployment.start_worker(**slow)
            time.sleep(3)  # a few batches on two workers: observation, not synchronisation
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
            assert second.returncode == 0, f"round {round_}: the leaving worker did not stop cleanly"
            deployment.workers.remove(second)
            assert applied(deployment, last) < total, f"round {round_} came after the last batch"
        deployment.wait_applied(last, timeout=240)
        assert numbers(deployment) == reference
        assert applied(deployment, last) == total  # no gap, and the offsets end exactly at the end
    finally:
        deployment.close()


def test_sigkill_between_a_commit_and_its_outbox_apply(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=11)
    try:
        last, total = started(deployment, records)
        proc, _ = deployment.start_worker(outbox_seconds=30)
        wait_for(lambda: OUTBOX_PENDING in log_of(deployment, 0), timeout=60, what="a committed batch")
        kill_then_finish(deployment, proc, last, total, reference)
    finally:
        deployment.close()


def test_sigkill_mid_batch(
    stack: Stack, records: list[SimRecord], reference: dict[str, Any], tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=6)
    try:
        last, total = started(deployment, records)
        proc, _ = deployment.start_worker(batch_seconds=1.0, batch_records=500)
        wait_for(lambda: applied(deployment, last) > 0, timeout=60, what="the first batch applied")
        time.sleep(0.5)  # inside the next batch's second: observation, not synchronisation
        kill_then_finish(deployment, proc, last, total, reference)
    finally:
        deployment.close()


def test_a_failing_batch_stops_the_worker_with_the_error(deployment: Deployment) -> None:
    """An exception in processing (not a Redis outage, which is retried) ends the worker."""
    deployment.create_topics()
    proc, _ = deployment.start_worker(failing=True)
    deployment.produce([("messages", b"s1:b1", b'{"not": "used"}')])
    proc.wait(timeout=60)
    deployment.workers.remove(proc)
    assert proc.returncode != 0
    assert "processing a batch of 1 records failed, stopping" in log_of(deployment, 0)


def test_under_full_load_the_web_endpoints_and_leader_duties_keep_working(deployment: Deployment) -> None:
    """The fast path at full speed must leave the event loop to the timers and views: every
    probe below answers while the worker is saturated, and the leader's once-a-second floor
    refresh keeps moving the gauges."""
    import itertools
    import re

    from streams.simulation.traffic import TrafficModel, TrafficShape
    from tests.integration.harness import http_get, http_status

    start = time.time_ns() // 1_000_000 - 3 * 3_600_000
    model = TrafficModel(TrafficShape(shops=3, agents=6, rate=500), seed=5)
    big = [(r.kind, r.key, r.value) for r in itertools.islice(model.records(start), 150_000)]
    deployment.create_topics()
    last = deployment.produce(big)
    total = sum(offset + 1 for offset in last.values())
    _, port = deployment.start_worker()
    gauge = re.compile(r'^kefu_consultations\{agent="shop0:agent0",shop="shop0",window="28d"\} (\S+)$', re.M)
    seen: list[float] = []
    probes = 0
    while applied(deployment, last) < total * 0.9:
        assert http_status(port, "/healthz") == 200, "healthz failed under load"
        assert http_status(port, "/api/v1/floor?shop=shop0") == 200, "the floor API failed under load"
        found = gauge.search(http_get(port, "/metrics"))
        if found:
            seen.append(float(found.group(1)))
        probes += 1
        time.sleep(0.5)
    assert probes >= 3, "the load was over before it could be probed: the test would prove nothing"
    assert len(set(seen)) >= 2, f"the leader's gauges did not move under load: {seen}"
    deployment.wait_applied(last, timeout=240)
    log = log_of(deployment, 0)
    for warning in ("Stream stopped processing", "Has not committed", "Drain messages raised"):
        assert warning not in log, warning  # Faust's livelock detector and fetcher stay quiet
    # mode logs a 1 s timer that woke more than 0.3 s late; the leader's refresh must keep time.
    late = re.findall(r"Timer \S*publish_floor\S* woke up too late", log)
    assert not late, f"the leader's 1 s timer woke up too late {len(late)} time(s) under load"
