"""A Redis outage while partitions are assigned does not stop the worker.

Two workers share the partitions; Redis is stopped; one worker leaves, so the other is
assigned every partition and resumes each from Redis, which is down. It must wait (counting
kefu_redis_errors_total), resume once Redis is back, and apply what arrives, exactly.
Redis db 13."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.integration.harness import (
    STACK,
    STACK_PREFIX,
    Deployment,
    Stack,
    chat_message,
    http_get,
    wait_for,
)

OUTAGE_SEEN = "resuming from Redis failed"


def redis_service(action: str) -> None:
    subprocess.run([str(STACK), f"{action}-redis", "--prefix", STACK_PREFIX], check=True, capture_output=True)


def buyers_wait(deployment: Deployment, first: int, count: int) -> dict[tuple[str, int], int]:
    return deployment.produce(chat_message(f"e{i}", f"tb_{i}") for i in range(first, first + count))


def log_of(deployment: Deployment, worker: int) -> str:
    return (deployment.tmp / f"worker-{deployment.name}-{worker}.log").read_text(errors="replace")


def test_a_worker_assigned_partitions_while_redis_is_down_waits_and_resumes(
    stack: Stack, tmp_path: Path
) -> None:
    deployment = Deployment(stack, tmp_path, redis_db=13)
    try:
        deployment.create_topics()
        survivor, port = deployment.start_worker()
        leaving, _ = deployment.start_worker()
        deployment.wait_applied(buyers_wait(deployment, 0, 200))
        redis_service("stop")
        try:
            leaving.send_signal(signal.SIGTERM)  # idle: it leaves at once, and the group rebalances
            leaving.wait(timeout=30)
            wait_for(
                lambda: OUTAGE_SEEN in log_of(deployment, 0) or survivor.poll() is not None,
                timeout=90,
                what="the remaining worker to resume its new partitions while Redis is down",
            )
            assert survivor.poll() is None, f"the worker stopped:\n{log_of(deployment, 0)[-3000:]}"
        finally:
            redis_service("start")
        deployment.wait_applied(buyers_wait(deployment, 200, 100), timeout=120)
        assert survivor.poll() is None
        floor = json.loads(http_get(port, "/api/v1/floor?shop=s1"))
        assert floor["totals"]["windows"]["today"]["consultations"] == 300
        assert floor["totals"]["waiting_buyers"] == 300
        errors = [
            float(line.rsplit(" ", 1)[1])
            for line in http_get(port, "/metrics").splitlines()
            if line.startswith("kefu_redis_errors_total ")
        ]
        assert errors and errors[0] >= 1
    finally:
        deployment.close()
