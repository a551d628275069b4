"""The local Redis Cluster (deploy/local/redis-cluster) for tests, and deployments on it."""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from agents.store.connect import cluster_nodes
from tests.integration.harness import ROOT, Deployment

CLUSTER = ROOT / "deploy" / "local" / "redis-cluster"


def cluster_up(prefix: str) -> str:
    """Start or reuse the three-master cluster beside the stack `prefix`; its URL."""
    out = subprocess.run(
        [str(CLUSTER), "up", "--prefix", prefix], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export ")
    )
    return exports["KEFU_REDIS_CLUSTER_URL"]


def sync_client(url: str) -> RedisCluster:
    first, nodes = cluster_nodes(url)
    return RedisCluster.from_url(first, startup_nodes=[ClusterNode(host, port) for host, port in nodes])


def masters(client: RedisCluster) -> list[redis.Redis]:
    """A plain client per master, to look at what each one holds."""
    return [redis.Redis(node.host, node.port) for node in client.get_primaries()]


def keys_per_master(client: RedisCluster, pattern: str) -> list[int]:
    counts = []
    for master in masters(client):
        counts.append(sum(1 for _ in master.scan_iter(pattern, count=1000)))
        master.close()
    return counts


def slots_used(client: RedisCluster, pattern: str) -> Counter[int]:
    return Counter(client.keyslot(key) for key in client.scan_iter(pattern, count=1000))


def clear(client: RedisCluster) -> None:
    for master in masters(client):
        master.flushall()
        master.close()


@dataclass
class ClusterDeployment(Deployment):
    """A Deployment whose workers and CLI use the Redis Cluster at `cluster_url`.

    The cluster has one database, so a deployment empties the whole cluster: run one at a time.
    """

    cluster_url: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()  # topics, config; it also opened the stack's single Redis
        self.redis.close()
        self.redis_url = self.cluster_url
        self.redis: Any = sync_client(self.cluster_url)  # Deployment's readers work on either
        clear(self.redis)
