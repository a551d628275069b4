"""The first hour of a new user: each mistake is told in one sentence with the fix, on the real
stack; `check` lists what is right and wrong; `stats` speaks up about a wrong shop id."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from tests.builders import wire_message
from tests.integration.harness import KEFU, Deployment, free_port, wait_for

STARTUP_LIMIT_S = 30


def run(deployment: Deployment, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """A command's exit status, everything it printed (stdout and stderr), and its seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [str(KEFU), *args],
        env=deployment.env(KEFU_WEB_PORT=str(free_port())) | (env or {}),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=deployment.tmp,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def assert_one_sentence(output: str, *fragments: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output[-3000:]
    assert "Traceback" not in output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def closed_port() -> int:
    return free_port()  # nothing listens there: free_port closed it again


def test_a_worker_with_kafka_unreachable_names_the_setting(deployment: Deployment) -> None:
    port = closed_port()
    code, output, seconds = run(
        deployment, "worker", "-l", "info", env={"KEFU_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
    )
    assert code == 1 and seconds < STARTUP_LIMIT_S
    assert_one_sentence(output, "Kafka is unreachable", f"127.0.0.1:{port}", "KEFU_KAFKA_BOOTSTRAP")


def test_a_worker_with_redis_unreachable_names_the_setting_and_hides_the_password(
    deployment: Deployment,
) -> None:
    deployment.create_topics()
    url = f"redis://:not-shown-{deployment.name}@127.0.0.1:{closed_port()}/0"
    code, output, seconds = run(deployment, "worker", "-l", "info", env={"KEFU_REDIS_URL": url})
    assert code == 1 and seconds < STARTUP_LIMIT_S
    assert_one_sentence(output, "Redis is unreachable", "KEFU_REDIS_URL", "********")
    assert f"not-shown-{deployment.name}" not in output


def test_a_cluster_url_at_a_plain_redis_is_told_in_one_sentence_by_the_worker_and_a_command(
    deployment: Deployment,
) -> None:
    """redis-py's cluster client raises its own exception class, no RedisError: it went past every
    catch as a traceback."""
    deployment.create_topics()
    if "+cluster" in deployment.redis_url:
        pytest.skip("the stack's Redis is a cluster")
    scheme, rest = deployment.redis_url.split("://", 1)
    server, _, query = rest.partition("?")  # a cluster has database 0 only
    url = f"{scheme}+cluster://{server.rsplit('/', 1)[0]}/0" + (f"?{query}" if query else "")
    for command in (("worker", "-l", "info"), ("report", "--shop", "shop0")):
        code, output, seconds = run(deployment, *command, env={"KEFU_REDIS_URL": url})
        assert code == 1 and seconds < STARTUP_LIMIT_S, output[-3000:]
        assert_one_sentence(output, "names a Redis Cluster", "not run in cluster mode", "redis://")


def test_a_worker_without_its_input_topics_says_topics_create(deployment: Deployment) -> None:
    code, output, seconds = run(deployment, "worker", "-l", "info")
    assert code == 1 and seconds < STARTUP_LIMIT_S
    assert_one_sentence(output, deployment.topics["messages"], "kefu-pulse topics create")


def test_a_worker_refuses_input_topics_that_are_not_co_partitioned(deployment: Deployment) -> None:
    admin = KafkaAdminClient(bootstrap_servers=deployment.stack.bootstrap, **deployment.kafka_client_kwargs())
    try:
        admin.create_topics(
            [NewTopic(deployment.topics["messages"], 8, 1), NewTopic(deployment.topics["orders"], 4, 1)]
        )
    finally:
        admin.close()
    code, output, seconds = run(deployment, "worker", "-l", "info")
    assert code == 1 and seconds < STARTUP_LIMIT_S
    assert_one_sentence(
        output,
        "not co-partitioned",
        f"{deployment.topics['messages']} has 8",
        f"{deployment.topics['orders']} has 4",
        f"kafka.partitions is {deployment.partitions}",
        "docs/operations.md",
    )
    code, output, _ = run(deployment, "check")
    assert code == 1 and "✗ co-partitioning: the input topics are not co-partitioned" in output


def checks(deployment: Deployment, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    code, output, _ = run(deployment, "check", "--json", env=env)
    return code, {c["name"]: c for c in json.loads(output.strip().splitlines()[-1])}


def test_check_passes_on_a_healthy_deployment_and_names_each_part(deployment: Deployment) -> None:
    deployment.create_topics()
    deployment.produce([buyer_message("s1", "b1")])
    deployment.start_worker()
    wait_for(lambda: checks(deployment)[0] == 0, timeout=60, what="every check to pass (leader seen)")
    code, output, _ = run(deployment, "check")
    lines = output.strip().splitlines()
    assert code == 0 and all(line.startswith("✓") for line in lines[:-1]), output
    for name in ("configuration", "kafka", "co-partitioning", "redis", "workers", "leader"):
        assert any(line.startswith(f"✓ {name}: ") for line in lines), name
    assert any(line.startswith(f"✓ topic {deployment.topics['deadletter']}: 4 partitions") for line in lines)
    # The broker's word for the group, as kafka-python names it (`group_state`; read as `state`, it
    # was always shown as Empty).
    workers = next(line for line in lines if line.startswith("✓ workers: "))
    assert workers.startswith("✓ workers: 1 in group") and workers.endswith("(Stable)"), output
    assert any(line.startswith(f"✓ lag {deployment.topics['messages']}: 0 records") for line in lines)
    assert "maxmemory-policy noeviction" in output and lines[-1].endswith("checks passed")
    assert "WARNING" not in output  # kafka-python's retries stay below our lines


def test_check_on_broken_deployments_says_what_is_wrong(deployment: Deployment) -> None:
    code, found = checks(deployment)  # no topics, no workers
    assert code == 1
    assert not found[f"topic {deployment.topics['messages']}"]["ok"]
    assert "kefu-pulse topics create" in found[f"topic {deployment.topics['messages']}"]["detail"]
    assert found["configuration"]["ok"] and found["kafka"]["ok"] and found["redis"]["ok"]
    assert found["workers"]["next_step"] and found["leader"]["next_step"]  # broken is the topics alone

    code, found = checks(deployment, {"KEFU_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}"})
    assert code == 1 and not found["kafka"]["ok"] and "KEFU_KAFKA_BOOTSTRAP" in found["kafka"]["detail"]

    deployment.create_topics()
    code, found = checks(deployment, {"KEFU_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    assert code == 1 and not found["redis"]["ok"] and "KEFU_REDIS_URL" in found["redis"]["detail"]


def test_check_before_the_first_worker_says_what_to_do_next_and_after_the_last_one_fails(
    deployment: Deployment,
) -> None:
    """Set up, not yet started: `check` passes with → lines naming the next step. A deployment whose
    workers ran and are gone, with records piling up, fails."""
    deployment.create_topics()
    deployment.produce([buyer_message("s1", "b1")])
    code, output, _ = run(deployment, "check")
    assert code == 0, output
    assert "→ workers: none started yet: start one with `kefu-pulse worker -l info`" in output
    assert "→ leader: none yet" in output
    assert f"✓ lag {deployment.topics['messages']}: 1 records waiting for the first worker" in output
    assert "2 waiting for you (→)" in output.strip().splitlines()[-1]

    deployment.start_worker()
    wait_for(lambda: checks(deployment)[0] == 0, timeout=60, what="every check to pass (leader seen)")
    deployment.stop_workers()
    deployment.produce([buyer_message("s1", "b2")])
    wait_for(lambda: not checks(deployment)[1]["leader"]["ok"], timeout=30, what="the leader's key to lapse")
    code, found = checks(deployment)
    assert code == 1
    assert not found["workers"]["ok"] and not found["workers"]["next_step"]
    assert not found["leader"]["next_step"]
    assert not found[f"lag {deployment.topics['messages']}"]["ok"]


def test_stats_for_an_unknown_shop_lists_the_known_ones(deployment: Deployment) -> None:
    code, output, _ = run(deployment, "stats", "--shop", "nosuchshop")
    assert code == 1
    assert_one_sentence(output, "unknown shop 'nosuchshop'", "no shop is configured")
    deployment.create_topics()
    deployment.produce([buyer_message("s1", "b1")])
    deployment.start_worker()
    wait_for(lambda: run(deployment, "stats", "--shop", "s1")[0] == 0, timeout=60, what="shop s1 known")
    code, output, _ = run(deployment, "stats", "--shop", "s2")
    assert code == 1
    assert_one_sentence(output, "unknown shop 's2'; known shops: s1")


@pytest.mark.parametrize("columns", [80, 160, 220])
def test_stats_fits_the_terminal(deployment: Deployment, columns: int) -> None:
    deployment.create_topics()
    deployment.produce([buyer_message("s1", "b1")])
    deployment.start_worker()
    wait_for(lambda: run(deployment, "stats", "--shop", "s1")[0] == 0, timeout=60, what="shop s1 known")
    code, output, _ = run(
        deployment, "stats", "--shop", "s1", "--window", "5m", env={"COLUMNS": str(columns)}
    )
    assert code == 0 and "· 5m" in output
    assert "…" not in output, output
    assert max(len(line) for line in output.splitlines()) <= columns
    for header in ("agent", "waiting", "oldest s", "回复率", "首响 s", "询单转化率"):
        assert header in output
    assert ("销售额" in output) is (columns >= 120)
    assert ("满意度" in output and "状态" in output) is (columns >= 200)  # v3


def test_library_warnings_stay_below_our_commands_output(deployment: Deployment) -> None:
    code, output, _ = run(
        deployment, "topics", "create", env={"KEFU_KAFKA_BOOTSTRAP": deployment.stack.bootstrap}
    )
    assert code == 0 and "created" in output
    assert "WARNING" not in output and "No node available" not in output


def buyer_message(shop: str, buyer: str) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000
    return wire_message(
        event_id=f"{shop}-{buyer}-1", shop_id=shop, buyer_id=buyer, agent_id=f"{shop}:a", ts=now
    )


@pytest.mark.parametrize(
    ("defaults", "key"),
    [
        ("{service_hours: '25:00-08:00'}", "$.defaults.service_hours"),
        ("{attribution: {judge: maybe}}", "$.defaults.attribution.judge"),
        ("{response_targets_seconds: [15, -1]}", "$.defaults.response_targets_seconds[1]"),
    ],
    ids=["service_hours", "judge", "negative_target"],
)
def test_a_worker_with_bad_v2_configuration_names_the_key(
    deployment: Deployment, defaults: str, key: str
) -> None:
    config = deployment.tmp / f"bad-{deployment.name}.yaml"
    config.write_text(deployment.config.read_text() + f"defaults: {defaults}\n")
    code, output, seconds = run(deployment, "worker", "-l", "info", env={"KEFU_CONFIG": str(config)})
    assert code != 0 and seconds < STARTUP_LIMIT_S
    assert_one_sentence(output, key)
