"""The issue-6 benchmark: kefu-pulse against the limit of the same machine, on the real stack.

1. Produce N simulated events (≈90 % messages, 10 % orders, thousands of buyers, 60 agents)
   into fresh 8-partition topics.
2. limit: a plain aiokafka consumer that reads both topics and decodes every record.
3. kefu-pulse: one worker from empty Redis until every offset is applied; events/s and RSS.
4. latency: steady 2,000 events/s for 60 s while probe buyers measure production → visible
   in /api/v1/floor; p50 and p99.
5. memory: Redis bytes per active buyer.
Prints one JSON line at the end. Timing is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import redis
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer

from agents.store import keys
from bench.dataset import produce_dataset
from bench.stack import bench_stack_env
from streams.simulation.traffic import TrafficModel, TrafficShape
from streams.wire.decoding import EventDecoder

ROOT = Path(__file__).resolve().parents[1]
KEFU = Path(sys.executable).with_name("kefu-pulse")
PARTITIONS = 8


def stack() -> tuple[str, str]:
    env = bench_stack_env()
    return env["KEFU_KAFKA_BOOTSTRAP"], env["KEFU_REDIS_URL"].rsplit("/", 1)[0] + "/5"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Run:
    def __init__(self, bootstrap: str, redis_url: str, events: int) -> None:
        self.bootstrap, self.redis_url, self.events = bootstrap, redis_url, events
        self.name = uuid.uuid4().hex[:6]
        self.topics = {
            "messages": f"b{self.name}.messages",
            "orders": f"b{self.name}.orders",
            "alerts": f"b{self.name}.alerts",
            "deadletter": f"b{self.name}.deadletter",
        }
        self.tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
        self.config = self.tmp / "kefu.yaml"
        self.config.write_text(
            f"kafka: {{group: bench-{self.name}, partitions: {PARTITIONS}, "
            f"topics: {json.dumps(self.topics)}}}\n"
        )
        self.redis = redis.Redis.from_url(redis_url)
        self.redis.flushdb()

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(
            os.environ,
            KEFU_CONFIG=str(self.config),
            KEFU_KAFKA_BOOTSTRAP=self.bootstrap,
            KEFU_REDIS_URL=self.redis_url,
        )
        return env | extra

    def produce_dataset(self) -> int:
        subprocess.run([str(KEFU), "topics", "create"], env=self.env(), check=True, capture_output=True)
        return produce_dataset(self.bootstrap, self.topics, self.events)

    async def limit(self) -> float:
        """Read and decode every record with a plain consumer: the ceiling for this machine."""
        decoder = EventDecoder()
        consumer = AIOKafkaConsumer(
            self.topics["messages"],
            self.topics["orders"],
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=5000,
            fetch_max_bytes=64 << 20,
        )
        await consumer.start()
        seen = 0
        started = time.perf_counter()
        now = time.time_ns() // 1_000_000
        while seen < self.events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    decoder.decode(record.value, record.key, now)
                seen += len(records)
        elapsed = time.perf_counter() - started
        await consumer.stop()
        return seen / elapsed

    def faust_ceiling(self, path: str = "stock") -> float:
        """A no-op Faust handler over the same topics (its own group), in a subprocess like the
        worker: `stock`, an agent on Faust's per-record path; `batch`, the worker's input path."""
        config = self.tmp / f"ceiling-{path}.yaml"
        config.write_text(
            f"kafka: {{group: ceiling-{path}-{self.name}, partitions: {PARTITIONS}, "
            f"topics: {json.dumps(self.topics)}}}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "bench.faust_ceiling", "worker", "-l", "warn"],
            env=self.env(
                KEFU_CONFIG=str(config),
                KEFU_WEB_PORT=str(free_port()),
                BENCH_CEILING_EVENTS=str(self.events),
                BENCH_CEILING_PATH=path,
            ),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
        )
        # A Faust worker redirects stdout into its log, so the figure may arrive on either stream.
        found = re.search(r'"faust_\w+_events_per_s": (\d+)', result.stdout + result.stderr)
        if found is None:
            raise RuntimeError(f"the Faust ceiling run printed no figure:\n{result.stderr[-2000:]}")
        return float(found.group(1))

    def applied(self) -> int:
        """Records applied so far, from the 16 offset keys. A SCAN of the keyspace here (polled
        every 0.2 s over ~100k buyer keys) would take Redis and a core away from the worker."""
        offset_keys = [
            keys.offset_key(self.topics[kind], partition)
            for kind in ("messages", "orders")
            for partition in range(PARTITIONS)
        ]
        return sum(int(value) + 1 for value in self.redis.mget(offset_keys) if value is not None)

    def start_worker(self, port: int, config: Path | None = None) -> subprocess.Popen[bytes]:
        log_file = (self.tmp / "worker.log").open("ab")
        extra = {"KEFU_CONFIG": str(config)} if config else {}
        return subprocess.Popen(
            [str(KEFU), "worker", "-l", "warn"],
            env=self.env(KEFU_WEB_PORT=str(port), **extra),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
        )

    def throughput(self, port: int) -> tuple[float, float, subprocess.Popen[bytes]]:
        worker = self.start_worker(port)
        while self.applied() == 0:
            time.sleep(0.05)
        started, first = time.perf_counter(), self.applied()
        peak_rss = 0.0
        while (done := self.applied()) < self.events:
            peak_rss = max(peak_rss, rss_mb(worker.pid))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        return (done - first) / elapsed, peak_rss, worker

    def rebuild(self) -> float:
        """`kefu-pulse rebuild` over everything the topics hold (workers stopped): its events/s."""
        deadline = time.monotonic() + 60
        while True:  # the stopped worker may still be leaving the consumer group
            result = subprocess.run(
                [str(KEFU), "rebuild"], env=self.env(), capture_output=True, text=True, timeout=3600
            )
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        found = re.search(r"\(([\d,]+) events/s\)", result.stdout + result.stderr)
        if result.returncode != 0 or found is None:
            raise RuntimeError(f"rebuild failed:\n{result.stderr[-2000:]}")
        return float(found.group(1).replace(",", ""))

    def two_workers(self) -> float:
        """Two workers in a fresh group from empty state, over everything the topics hold."""
        total = self.applied()
        self.redis.flushdb()
        config = self.tmp / "two.yaml"
        config.write_text(
            f"kafka: {{group: bench-two-{self.name}, partitions: {PARTITIONS}, "
            f"topics: {json.dumps(self.topics)}}}\n"
        )
        workers = [self.start_worker(free_port(), config) for _ in range(2)]
        try:
            while self.applied() == 0:
                time.sleep(0.05)
            started, first = time.perf_counter(), self.applied()
            while (done := self.applied()) < total:
                time.sleep(0.2)
            return (done - first) / (time.perf_counter() - started)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=30)

    def latency(self, port: int, rate: int = 2000, seconds: int = 60) -> list[float]:
        """Production → visible in /api/v1/floor, under a steady offered load.

        Three threads, so that neither the probes nor the watching ever pause the load: one
        produces simulated traffic at `rate`; every 0.5 s a probe buyer starts waiting on one
        probe agent; a watcher reads the floor every 10 ms, and the probe agent's waiting count
        says how many probes are visible. Resolution: the 10 ms polling interval."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=2)
        stop = threading.Event()
        sent_at: list[float] = []
        visible_at: list[float] = []

        def load() -> None:
            stream = TrafficModel(TrafficShape(shops=5, agents=12, rate=rate), seed=7).records(
                time.time_ns() // 1_000_000
            )
            started, sent = time.perf_counter(), 0
            while not stop.is_set():
                due = int((time.perf_counter() - started) * rate)
                while sent < due:
                    record = next(stream)
                    producer.send(self.topics[record.kind], key=record.key, value=record.value)
                    sent += 1
                time.sleep(0.002)

        def watch() -> None:
            deadline = None
            while len(visible_at) < len(sent_at) or not stop.is_set():
                if stop.is_set():
                    deadline = deadline or time.perf_counter() + 30  # stragglers, then give up
                    if time.perf_counter() > deadline:
                        return
                waiting = self.probe_waiting(port)
                now = time.perf_counter()
                while len(visible_at) < min(waiting, len(sent_at)):
                    visible_at.append(now)
                time.sleep(0.01)

        threads = [threading.Thread(target=load), threading.Thread(target=watch)]
        for thread in threads:
            thread.start()
        for n in range(int(seconds / 0.5)):
            sent_at.append(time.perf_counter())
            producer.send(self.topics["messages"], key=f"probe:probe_{n}".encode(), value=probe_event(n))
            time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        producer.close()
        return [seen - sent for sent, seen in zip(sent_at, visible_at, strict=False)]

    @staticmethod
    def probe_waiting(port: int) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/floor?shop=probe", timeout=5) as answer:
            floor = json.loads(answer.read())
        return next((row["waiting_buyers"] for row in floor["agents"] if row["agent"] == PROBE_AGENT), 0)


PROBE_AGENT = "probe:agent"


def probe_event(n: int) -> bytes:
    """A buyer who starts waiting now: each probe adds one to the probe agent's waiting count."""
    event = {
        "event_id": f"probe-{n}",
        "type": "message",
        "shop_id": "probe",
        "buyer_id": f"probe_{n}",
        "agent_id": PROBE_AGENT,
        "sender": "buyer",
        "ts": time.time_ns() // 1_000_000,
    }
    return json.dumps(event).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--latency-seconds", type=int, default=60)
    parser.add_argument(
        "--latency-rate",
        type=int,
        default=5000,
        help="offered events/s while visibility is measured; above the worker's rate it only grows",
    )
    args = parser.parse_args()
    bootstrap, redis_url = stack()
    run = Run(bootstrap, redis_url, args.events)
    log(f"producing {args.events} events into {PARTITIONS} partitions")
    buyers = run.produce_dataset()
    log("limit: plain consumer, read + decode")
    limit = asyncio.run(run.limit())
    log(f"limit {limit:.0f} events/s; Faust's own ceiling: a no-op agent over the same topics")
    ceiling = run.faust_ceiling()
    log(f"Faust no-op {ceiling:.0f} events/s; the batch input path with a no-op handler")
    batch_ceiling = run.faust_ceiling("batch")
    log(f"batch path no-op {batch_ceiling:.0f} events/s; kefu-pulse worker from empty state")
    port = free_port()
    events_per_s, peak_rss, worker = run.throughput(port)
    used = int(run.redis.info("memory")["used_memory"])
    buyer_keys = sum(1 for _ in run.redis.scan_iter(keys.BUYER_KEY_PATTERN, count=5000))
    log(f"{events_per_s:.0f} events/s; latency at {args.latency_rate} events/s for {args.latency_seconds}s")
    samples = run.latency(port, rate=args.latency_rate, seconds=args.latency_seconds)
    peak_rss = max(peak_rss, rss_mb(worker.pid))
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    log("rebuild from the topics, workers stopped")
    rebuild_rate = run.rebuild()
    log(f"rebuild {rebuild_rate:.0f} events/s; two workers from empty state")
    two_rate = run.two_workers()
    log(f"two workers {two_rate:.0f} events/s")
    print(
        json.dumps(
            {
                "events": args.events,
                "partitions": PARTITIONS,
                "buyers": buyers,
                "limit_events_per_s": round(limit),
                "events_per_s": round(events_per_s),
                "ratio": round(events_per_s / limit, 3),
                "faust_noop_events_per_s": round(ceiling),
                "ratio_to_faust_noop": round(events_per_s / ceiling, 3),
                "faust_batch_ceiling_events_per_s": round(batch_ceiling),
                "batch_ceiling_ratio": round(batch_ceiling / limit, 3),
                "p50_visibility_s": round(statistics.median(samples), 3),
                "p99_visibility_s": round(percentile(samples, 0.99), 3),
                "latency_samples": len(samples),
                "latency_offered_events_per_s": args.latency_rate,
                "redis_bytes_per_buyer": round(used / max(buyer_keys, 1)),
                "worker_peak_rss_mb": round(peak_rss, 1),
                "rebuild_events_per_s": round(rebuild_rate),
                "two_workers_events_per_s": round(two_rate),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
