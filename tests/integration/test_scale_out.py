"""Scale out: three workers on a three-master Redis Cluster, one SIGKILLed mid-run and restarted,
must give exactly the numbers of one worker on a single Redis, on the same records: the
response scenario, the 274/3 worked example and simulated traffic, all at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from agents.store import keys
from streams.simulation.traffic import SimRecord
from tests.integration import cluster, scenario
from tests.integration.differential import SHOPS, comparable, dataset
from tests.integration.harness import MID_RUN, STACK_PREFIX, Deployment, Stack, http_get, wait_for
from tests.integration.test_conversion_end_to_end import worked_example

PARTITIONS = 6  # two a worker, two a master
ALL_SHOPS = ("s1", *SHOPS)
GAUGE = 'kefu_consultations{agent="s1:a",shop="s1",window="28d"} 4.0'

Produced = list[dict[str, Any] | tuple[str, bytes | None, bytes]]
# Its records and reference run are the module's, with today's numbers: ~90 s with its one test.
pytestmark = pytest.mark.one_business_day(seconds=240)


def records(now_ms: int, simulated: list[SimRecord]) -> Produced:
    events, invalid, _ = scenario.build(now_ms)
    messages, orders = worked_example(now_ms)
    out: Produced = [*orders, *messages, *events]  # orders first: the late side arrives last
    out += [("messages", b"s1:b1", raw.encode()) for raw in invalid]
    out += [(r.kind, r.key, r.value) for r in simulated]
    return out


def numbers(deployment: Deployment) -> dict[str, Any]:
    return {shop: comparable(deployment.stats(shop)) for shop in ALL_SHOPS}


def applied(deployment: Deployment, last: dict[tuple[str, int], int]) -> int:
    return sum(o + 1 for tp, o in deployment.applied_offsets().items() if tp in last)


def exports_gauges(port: int) -> bool:
    """Only the leader exports the window gauges; the others clear theirs every second."""
    try:
        return "kefu_consultations{" in http_get(port, "/metrics")
    except OSError:
        return False


@pytest.fixture(scope="module")
def produced() -> Produced:
    return records(time.time_ns() // 1_000_000, dataset())


@pytest.fixture(scope="module")
def reference(stack: Stack, produced: Produced, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One worker, one Redis server."""
    deployment = Deployment(
        stack,
        tmp_path_factory.mktemp("single"),
        partitions=PARTITIONS,
        redis_db=4,
        shops_yaml=scenario.SHOP_YAML,
    )
    try:
        deployment.create_topics()
        last = deployment.produce(produced)
        deployment.start_worker()
        deployment.wait_applied(last, timeout=240)
        return numbers(deployment)
    finally:
        deployment.close()


def test_three_workers_on_a_redis_cluster_with_one_killed_equal_one_worker_on_one_redis(
    stack: Stack, produced: Produced, reference: dict[str, Any], tmp_path: Path
) -> None:
    url = cluster.cluster_up(STACK_PREFIX)
    deployment = cluster.ClusterDeployment(
        stack, tmp_path, partitions=PARTITIONS, shops_yaml=scenario.SHOP_YAML, cluster_url=url
    )
    try:
        assert len(deployment.redis.get_primaries()) == 3
        deployment.create_topics()
        workers = dict(deployment.start_worker(**MID_RUN) for _ in range(3))  # process -> web port
        last = deployment.produce(produced)
        total = sum(offset + 1 for offset in last.values())

        # Kill the leader mid-run: its partitions and its leader duties must move.
        wait_for(lambda: applied(deployment, last) >= total * 0.2, timeout=120, what="20 % applied")
        wait_for(lambda: any(exports_gauges(p) for p in workers.values()), timeout=30, what="a leader")
        leader = next(proc for proc, port in workers.items() if exports_gauges(port))
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        at_kill = applied(deployment, last)
        del workers[leader]
        deployment.workers.remove(leader)
        assert at_kill < total, "the workers finished before the kill: the test would prove nothing"
        wait_for(
            lambda: any(exports_gauges(p) for p in workers.values()),
            timeout=60,
            what="a surviving worker to take the leader's duties over",
        )
        proc, port = deployment.start_worker()
        workers[proc] = port
        deployment.wait_applied(last, timeout=240)

        cluster_numbers = numbers(deployment)
        assert cluster_numbers == reference
        assert reference["shop0"]["_totals"]["consultations"] > 100  # the comparison is not vacuous
        expect_the_worked_examples(deployment)

        # Leader duties stay single across the workers: one exports the gauges, with the numbers.
        wait_for(lambda: any(GAUGE in http_get(p, "/metrics") for p in workers.values()), 30, GAUGE)
        assert sum(exports_gauges(p) for p in workers.values()) == 1

        # The state really is spread: buyer states and agent keys on every master.
        assert all(n > 0 for n in cluster.keys_per_master(deployment.redis, keys.BUYER_KEY_PATTERN))
        assert all(n > 0 for n in cluster.keys_per_master(deployment.redis, "kp:{[0-9]*"))

        # `rebuild` on a cluster: it must empty every master before re-reading the topics.
        deployment.stop_workers()
        rebuilt = deployment.rebuild()
        assert numbers(deployment) == reference, rebuilt.stderr
    finally:
        deployment.close()


def expect_the_worked_examples(deployment: Deployment) -> None:
    floor = deployment.stats("s1")
    rows = {row["agent"]: row for row in floor["agents"]}
    for agent, expected in scenario.EXPECTED_28D.items():
        assert {k: rows[agent]["windows"]["28d"][k] for k in expected} == expected, agent
    assert rows["s1:a"]["waiting_buyers"] == 1
    window = rows["s1:A"]["windows"]["28d"]
    assert (window["inquiries"], window["paid_inquiries"], window["ordered_inquiries"]) == (274, 3, 4)
    assert round(window["consult_pay_ratio"] * 100, 2) == 1.09
    assert window["attributed_sales_yuan"] == 1282.49
    totals = floor["totals"]["windows"]["28d"]
    assert (totals["orders"], totals["silent_orders"], totals["silent_sales_yuan"]) == (5, 1, 5.0)
