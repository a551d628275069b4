"""The scale-out benchmark: events/s with 1 and 2 workers, on a single Redis and on the
three-master Redis Cluster, all in one run on the same records.

1. Brings up the local stack and the local Redis Cluster (deploy/local/redis-cluster).
2. Produces N simulated events once into fresh topics of P partitions.
3. For each (backend, workers): a fresh consumer group and an empty backend; starts the
   workers (`kefu-pulse worker`), and measures events/s while the applied offsets in Redis
   go from 10 % to 90 % of the records (start-up, the first rebalance and the tail are left
   out), then stops them. Rounds interleave the setups; each figure is the median.
Prints one JSON line. On a machine with fewer cores than Kafka + Redis + workers need (this
one has 2), a second worker competes for the same cores: its ratio shows contention, not
the capacity a second host would add.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from agents.store import keys
from agents.store.connect import cluster_nodes
from bench.dataset import produce_dataset
from bench.pipeline import stop_workers

ROOT = Path(__file__).resolve().parents[1]
KEFU = Path(sys.executable).with_name("kefu-pulse")
CONTENTION = (
    "workers, Kafka and Redis share {cpus} cores here: a second worker's ratio shows contention, "
    "not the capacity a second host adds"
)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def exports(command: list[str]) -> dict[str, str]:
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export ")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Backend:
    """A Redis the workers write to, and a way to read the applied offsets and empty it."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url
        if name == "cluster":
            first, nodes = cluster_nodes(url)
            self.client: redis.Redis | RedisCluster = RedisCluster.from_url(
                first, startup_nodes=[ClusterNode(h, p) for h, p in nodes]
            )
        else:
            self.client = redis.Redis.from_url(url)

    def clear(self) -> None:
        if isinstance(self.client, RedisCluster):
            for node in self.client.get_primaries():
                with redis.Redis(node.host, node.port) as master:
                    master.flushall()
        else:
            self.client.flushdb()

    def applied(self, offset_keys: list[str]) -> int:
        """Records applied so far. MGET of the offset keys, not a SCAN: polled this often over
        a keyspace of buyer states, a SCAN would take Redis and a core from the workers timed."""
        if isinstance(self.client, RedisCluster):
            values = self.client.mget_nonatomic(offset_keys)  # one MGET per partition slot
        else:
            values = self.client.mget(offset_keys)
        return sum(int(value) + 1 for value in values if value is not None)


class Bench:
    def __init__(self, bootstrap: str, events: int, partitions: int) -> None:
        self.bootstrap, self.events, self.partitions = bootstrap, events, partitions
        self.name = uuid.uuid4().hex[:6]
        self.topics = {k: f"s{self.name}.{k}" for k in ("messages", "orders", "alerts", "deadletter")}
        self.tmp = Path(tempfile.mkdtemp(prefix="kefu-scale-"))

    def config(self, group: str) -> Path:
        path = self.tmp / f"{group}.yaml"
        path.write_text(
            f"kafka: {{group: {group}, partitions: {self.partitions}, topics: {json.dumps(self.topics)}}}\n"
        )
        return path

    def env(self, config: Path, redis_url: str, **extra: str) -> dict[str, str]:
        return dict(
            os.environ,
            KEFU_CONFIG=str(config),
            KEFU_KAFKA_BOOTSTRAP=self.bootstrap,
            KEFU_REDIS_URL=redis_url,
            **extra,
        )

    def produce(self, redis_url: str) -> None:
        config = self.config(f"scale-{self.name}-topics")
        subprocess.run(
            [str(KEFU), "topics", "create"], env=self.env(config, redis_url), check=True, capture_output=True
        )
        produce_dataset(self.bootstrap, self.topics, self.events)

    def measure(self, backend: Backend, workers: int) -> float:
        """Events/s while the applied records go from 10 % to 90 %, with `workers` workers."""
        backend.clear()
        group = f"scale-{self.name}-{backend.name}-{workers}-{uuid.uuid4().hex[:4]}"  # fresh each round
        config = self.config(group)
        procs = []
        for n in range(workers):
            log_file = (self.tmp / f"{group}-{n}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [str(KEFU), "worker", "-l", "warn"],
                    env=self.env(config, backend.url, KEFU_WEB_PORT=str(free_port())),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self.tmp,
                )
            )
        offset_keys = [
            keys.offset_key(self.topics[kind], partition)
            for kind in ("messages", "orders")
            for partition in range(self.partitions)
        ]
        try:
            low, high = self.events * 0.1, self.events * 0.9
            while (done := backend.applied(offset_keys)) < low:
                self.check_alive(procs)
                time.sleep(0.05)
            started, first = time.perf_counter(), done
            while (done := backend.applied(offset_keys)) < high:
                self.check_alive(procs)
                time.sleep(0.05)
            return (done - first) / (time.perf_counter() - started)
        finally:
            stop_workers(procs)

    def check_alive(self, procs: list[subprocess.Popen[bytes]]) -> None:
        if any(proc.poll() is not None for proc in procs):
            raise SystemExit(f"bench: a worker exited; see the logs in {self.tmp}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="measurements per setup (median)")
    parser.add_argument("--prefix", default="bench", help="local stack (and cluster) to use or start")
    args = parser.parse_args()
    stack = exports([str(ROOT / "deploy/local/stack"), "up", "--prefix", args.prefix])
    cluster = exports([str(ROOT / "deploy/local/redis-cluster"), "up", "--prefix", args.prefix])
    single_url = stack["KEFU_REDIS_URL"].rsplit("/", 1)[0] + "/6"
    backends = {
        "redis": Backend("redis", single_url),
        "cluster": Backend("cluster", cluster["KEFU_REDIS_CLUSTER_URL"]),
    }
    bench = Bench(stack["KEFU_KAFKA_BOOTSTRAP"], args.events, args.partitions)
    log(f"producing {args.events} events into {args.partitions} partitions")
    bench.produce(single_url)
    samples: dict[str, list[float]] = {}
    try:
        for round_ in range(1, args.rounds + 1):  # interleaved, so a busy moment hits every setup
            for name, workers in (("redis", 1), ("redis", 2), ("cluster", 1), ("cluster", 2)):
                rate = bench.measure(backends[name], workers)
                samples.setdefault(f"{name}_{workers}w", []).append(rate)
                log(f"round {round_}: {workers} worker(s) on {name}: {rate:.0f} events/s")
    finally:  # the stack is shared: leave no buyer states behind for the other benchmarks
        for backend in backends.values():
            backend.clear()
    rates = {setup: statistics.median(values) for setup, values in samples.items()}
    cpus = os.cpu_count() or 1
    print(
        json.dumps(
            {
                "events": args.events,
                "partitions": args.partitions,
                "rounds": args.rounds,
                "events_per_s": {k: round(v) for k, v in rates.items()},  # median of the rounds
                "spread": {k: [round(min(v)), round(max(v))] for k, v in samples.items()},
                "two_workers_ratio": round(rates["redis_2w"] / rates["redis_1w"], 2),
                "cluster_overhead": round(1 - rates["cluster_1w"] / rates["redis_1w"], 3),
                "cpus": cpus,
                "note": CONTENTION.format(cpus=cpus) if cpus < 8 else "",
            }
        )
    )


if __name__ == "__main__":
    main()
