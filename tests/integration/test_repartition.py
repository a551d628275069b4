"""Adding input partitions, by the procedure of docs/operations.md, on real Kafka: drain and stop
the workers, add partitions to both topics, set kafka.partitions, `kefu-pulse repartition`,
start again. The numbers must equal those of a deployment that had the new count all along."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient, NewPartitions

from streams.simulation.traffic import SimRecord
from tests.integration.differential import SHOPS, comparable, dataset
from tests.integration.harness import Deployment, Stack, wait_for

BEFORE, AFTER = 4, 6


def numbers(deployment: Deployment) -> dict[str, Any]:
    return {shop: comparable(deployment.stats(shop)) for shop in SHOPS}


def produce(deployment: Deployment, records: list[SimRecord]) -> dict[tuple[str, int], int]:
    return deployment.produce((r.kind, r.key, r.value) for r in records)


def test_adding_partitions_then_repartition_keeps_the_numbers(stack: Stack, tmp_path: Path) -> None:
    records = dataset()[:6000]
    half = len(records) // 2

    (tmp_path / "reference").mkdir()
    reference = Deployment(stack, tmp_path / "reference", partitions=AFTER, redis_db=2)
    try:
        reference.create_topics()
        reference.start_worker()
        reference.wait_applied(produce(reference, records))
        expected = numbers(reference)
    finally:
        reference.close()

    deployment = Deployment(stack, tmp_path, partitions=BEFORE, redis_db=3)
    try:
        deployment.create_topics()
        deployment.start_worker()
        deployment.wait_applied(produce(deployment, records[:half]))
        deployment.stop_workers()

        admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap, **deployment.kafka_client_kwargs())
        admin.create_partitions({deployment.topics[k]: NewPartitions(AFTER) for k in ("messages", "orders")})
        admin.close()
        refused = deployment.cli("repartition")
        assert refused.returncode == 1 and f"kafka.partitions is {BEFORE}" in refused.stderr

        deployment.config.write_text(
            deployment.config.read_text().replace(f"partitions: {BEFORE}", f"partitions: {AFTER}")
        )
        results = []

        def repartitioned() -> bool:
            results.append(deployment.cli("repartition"))
            return "worker(s)" not in results[-1].stderr  # the group empties once the worker left

        wait_for(repartitioned, timeout=60, what="the consumer group to empty")
        assert results[-1].returncode == 0, results[-1].stderr
        assert " moved 0," not in results[-1].stdout, results[-1].stdout

        deployment.start_worker()
        last = produce(deployment, records[half:])
        assert {p for _, p in last} >= {4, 5}, "the new partitions receive records"
        deployment.wait_applied(last)
        assert numbers(deployment) == expected
    finally:
        deployment.close()
