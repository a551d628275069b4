"""The issue-6 benchmark: kefu-pulse against the limit of the same machine, on the real stack.

1. Produce N simulated events (≈90 % messages, 10 % orders, thousands of buyers, 60 agents)
   into fresh 8-partition topics.
2. limit: a plain aiokafka consumer that reads both topics and decodes every record.
3. kefu-pulse: one worker from empty Redis until every offset is applied; events/s, RSS, and
   the CPU an event cost the worker and Redis's main thread.
4. latency: a steady offered load (5,000 events/s by default, then 20,000) while probe buyers
   measure production → visible in /api/v1/floor; p50 and p99, and the rate actually offered.
   Then 20,000 again, once a second worker has joined the group: what a second worker buys
   where one is saturated. Each phase simulates buyers of its own.
5. memory: Redis bytes per active buyer (what the drain added).
6. rebuild: `kefu-pulse rebuild` with one job, then with `--jobs <cores>` when it has the option.
7. two workers from empty state; then a cold worker (a new process, empty Redis) draining a
   backlog of 20,000 events, timed from its start: what every worker pays after a rebalance.
8. the leader's round at 10 and 10,000 agents, from bench/leader_round.py when it exists.
Prints one JSON line at the end. Timing is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import ast
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
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from agents.core.compiled import core_status
from agents.store import keys
from agents.store.native import native_status
from bench.dataset import produce_dataset
from bench.paced_load import KCAT, PacedLoad, phase_ids
from bench.stack import stack_env
from streams.simulation.traffic import TrafficModel, TrafficShape
from streams.wire.consumer_group import describe_group, group_state
from streams.wire.decoding import EventDecoder

ROOT = Path(__file__).resolve().parents[1]
KEFU = Path(sys.executable).with_name("kefu-pulse")
PARTITIONS = 8
COLD_BACKLOG = 20_000
HIGH_RATE = 20_000
LEADER_KEYS = ("lead_round_ms_at_10k_agents", "lead_round_ms_at_10_agents")
Figures = dict[str, object]


def stack(prefix: str = "bench") -> tuple[str, str]:
    env = stack_env(prefix)
    return env["KEFU_KAFKA_BOOTSTRAP"], env["KEFU_REDIS_URL"].rsplit("/", 1)[0] + "/5"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Visibility:
    """One latency phase: production → visible delays of the probes, and the load behind them."""

    offered: int
    seed: int  # of the phase's simulated traffic
    probes: int = 0
    samples: list[float] = field(default_factory=list)
    sent: int = 0
    load_seconds: float = 0.0
    producer: str = "kafka-python"  # kcat when installed (bench/paced_load.py)

    @property
    def achieved(self) -> float:
        return self.sent / self.load_seconds if self.load_seconds else 0.0

    def figures(self, suffix: str = "") -> Figures:
        seen = bool(self.samples)
        return {
            f"p50_visibility_s{suffix}": round(statistics.median(self.samples), 3) if seen else None,
            f"p99_visibility_s{suffix}": round(percentile(self.samples, 0.99), 3) if seen else None,
            f"latency_samples{suffix}": len(self.samples),
        }


@dataclass(frozen=True)
class Drain:
    """One worker draining the dataset from empty state: its rate, and what an event cost."""

    worker: subprocess.Popen[bytes]
    events_per_s: float
    peak_rss_mb: float
    redis_cpu_us_per_event: float  # the Redis server's main thread, per event applied
    worker_cpu_us_per_event: float
    redis_bytes_added: int  # Redis's used memory after the drain, less before the worker started


class Run:
    def __init__(self, bootstrap: str, redis_url: str, events: int) -> None:
        self.bootstrap, self.redis_url, self.events = bootstrap, redis_url, events
        self.name = uuid.uuid4().hex[:6]
        self.topics = self.topics_named(f"b{self.name}")
        self.tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
        self.config = self.write_config("kefu", f"bench-{self.name}", self.topics)
        self.redis = redis.Redis.from_url(redis_url)
        self.redis.flushdb()

    @staticmethod
    def topics_named(prefix: str) -> dict[str, str]:
        return {kind: f"{prefix}.{kind}" for kind in ("messages", "orders", "alerts", "deadletter")}

    def write_config(self, stem: str, group: str, topics: Mapping[str, str]) -> Path:
        config = self.tmp / f"{stem}.yaml"
        config.write_text(
            f"kafka: {{group: {group}, partitions: {PARTITIONS}, topics: {json.dumps(dict(topics))}}}\n"
        )
        return config

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
        config = self.write_config(f"ceiling-{path}", f"ceiling-{path}-{self.name}", self.topics)
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

    def applied(self, topics: Mapping[str, str] | None = None) -> int:
        """Records applied so far, from the 16 offset keys. A SCAN of the keyspace here (polled
        every 0.2 s over ~100k buyer keys) would take Redis and a core away from the worker."""
        topics = topics or self.topics
        offset_keys = [
            keys.offset_key(topics[kind], partition)
            for kind in ("messages", "orders")
            for partition in range(PARTITIONS)
        ]
        return sum(int(value) + 1 for value in self.redis.mget(offset_keys) if value is not None)

    def topics_end(self) -> int:
        """Records the input topics hold: what a worker that caught up has applied."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            partitions = [
                TopicPartition(self.topics[kind], p)
                for kind in ("messages", "orders")
                for p in range(PARTITIONS)
            ]
            return sum(consumer.end_offsets(partitions).values())
        finally:
            consumer.close()

    def settle(self, worker: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait for the worker to apply everything produced so far, so a phase starts unloaded."""
        end, deadline = self.topics_end(), time.monotonic() + timeout
        while (done := self.applied()) < end and time.monotonic() < deadline:
            require_running(worker, self.tmp / "worker.log")
            time.sleep(0.2)
        if done < end:
            log(f"the worker is still {end - done} records behind after {timeout:.0f}s; going on")

    def await_members(self, count: int, timeout: float = 120) -> frozenset[str]:
        """Until the worker group is stable with `count` members, each holding input partitions:
        a phase that starts inside a rebalance would time the rebalance. Their member ids."""
        deadline = time.monotonic() + timeout
        while True:
            state, holding = self.members()
            if state == "Stable" and len(holding) == count:
                return holding
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker group is {state} with {len(holding)} of {count} members")
            time.sleep(0.5)

    def members(self) -> tuple[str, frozenset[str]]:
        """The worker group's state, and the ids of its members that hold input partitions."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        group = f"bench-{self.name}"
        try:
            found = describe_group(admin, group).get(group, {})
        finally:
            admin.close()
        topic = self.topics["messages"]
        holding = frozenset(str(m["member_id"]) for m in found.get("members") or [] if _holds_input(m, topic))
        return group_state(found), holding

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

    def throughput(self, port: int) -> Drain:
        """One worker from empty state over the dataset; the worker is left running (stopped
        here only if the measurement fails)."""
        used_before = self.used_memory()
        worker = self.start_worker(port)
        try:
            while self.applied() == 0:
                require_running(worker, self.tmp / "worker.log")
                time.sleep(0.05)
            started, first = time.perf_counter(), self.applied()
            redis_cpu, worker_cpu = self.redis_cpu_s(), cpu_s(worker.pid)
            peak_rss = 0.0
            while (done := self.applied()) < self.events:
                require_running(worker, self.tmp / "worker.log")
                peak_rss = max(peak_rss, rss_mb(worker.pid))
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            events = max(done - first, 1)  # a tiny dataset may arrive in the first fetch
            return Drain(
                worker,
                events / elapsed,
                peak_rss,
                (self.redis_cpu_s() - redis_cpu) / events * 1e6,
                (cpu_s(worker.pid) - worker_cpu) / events * 1e6,
                self.used_memory() - used_before,
            )
        except BaseException:
            stop_workers([worker])
            raise

    def used_memory(self) -> int:
        """The Redis server's used memory: all of its dbs (the leader round's, bench/scale's)."""
        return int(self.redis.info("memory")["used_memory"])

    def redis_cpu_s(self) -> float:
        """The Redis server's main thread's CPU seconds so far (user and system): the one core
        that runs every command and script, so the one that bounds the rate."""
        info = self.redis.info("cpu")
        return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])

    def rebuild_supports_jobs(self) -> bool:
        result = subprocess.run(
            [str(KEFU), "rebuild", "--help"], env=self.env(), capture_output=True, text=True, timeout=120
        )
        return "--jobs" in result.stdout

    def rebuild(self, jobs: int | None = None) -> float:
        """`kefu-pulse rebuild [--jobs N]` over everything the topics hold (workers stopped): the
        events/s it reports for the whole run (its last such figure)."""
        command = [str(KEFU), "rebuild"] + ([] if jobs is None else ["--jobs", str(jobs)])
        deadline = time.monotonic() + 60
        while True:  # the stopped worker may still be leaving the consumer group
            result = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=3600)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        found = re.findall(r"\(([\d,]+) events/s\)", result.stdout + result.stderr)
        if result.returncode != 0 or not found:
            raise RuntimeError(f"{' '.join(command[1:])} failed:\n{result.stderr[-2000:]}")
        if (applied := self.applied()) != (end := self.topics_end()):
            log(f"{' '.join(command[1:])} left {applied} records applied of the {end} the topics hold")
        return float(found[-1].replace(",", ""))

    def two_workers(self) -> float:
        """Two workers in a fresh group from empty state, over everything the topics hold."""
        total = self.applied()
        self.redis.flushdb()
        config = self.write_config("two", f"bench-two-{self.name}", self.topics)
        workers = [self.start_worker(free_port(), config) for _ in range(2)]
        try:
            while self.applied() == 0:
                time.sleep(0.05)
            started, first = time.perf_counter(), self.applied()
            while (done := self.applied()) < total:
                time.sleep(0.2)
            return (done - first) / (time.perf_counter() - started)
        finally:
            stop_workers(workers)

    def cold_backlog(self, events: int = COLD_BACKLOG) -> tuple[float, float]:
        """A new worker process, empty Redis, a backlog of `events` in topics of its own, timed
        from the process's start until every record is applied: start-up and group join count.
        Returns events/s and seconds."""
        topics = self.topics_named(f"c{self.name}")
        config = self.write_config("cold", f"bench-cold-{self.name}", topics)
        create = [str(KEFU), "topics", "create"]
        subprocess.run(create, env=self.env(KEFU_CONFIG=str(config)), check=True, capture_output=True)
        produce_dataset(self.bootstrap, topics, events)
        self.redis.flushdb()
        started = time.perf_counter()
        worker = self.start_worker(free_port(), config)
        try:
            while self.applied(topics) < events:
                require_running(worker, self.tmp / "worker.log")
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            stop_workers([worker])
        return events / elapsed, elapsed

    def latency(self, port: int, rate: int = 2000, seconds: int = 60, shop: str = "probe") -> Visibility:
        """Production → visible in /api/v1/floor, under a steady offered load.

        Three threads, so that neither the probes nor the watching ever pause the load: one
        produces simulated traffic at `rate`; every 0.5 s a probe buyer starts waiting on one
        probe agent of the probe `shop` (one shop per phase, so each phase counts from zero); a
        watcher reads the floor every 10 ms, and the probe agent's waiting count says how many
        probes are visible. Resolution: the 10 ms polling interval."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=2)
        stop = threading.Event()
        sent_at: list[float] = []
        visible_at: list[float] = []
        # Each phase its own buyers: with one seed, a phase replays the records of the one before
        # it (the same buyers, the same event ids), and the worker only skips them as duplicates.
        phase = Visibility(offered=rate, seed=zlib.crc32(shop.encode()))
        if KCAT is not None:
            load = PacedLoad(self.bootstrap, self.topics, rate, seconds, phase.seed)
            load.prepare()
            phase.producer = "kcat"
            loader = threading.Thread(target=self._paced, args=(load, phase, stop))
        else:
            loader = threading.Thread(target=self._load, args=(producer, phase, stop))
        threads = [loader, threading.Thread(target=self._watch, args=(port, shop, sent_at, visible_at, stop))]
        for thread in threads:
            thread.start()
        for n in range(int(seconds / 0.5)):
            sent_at.append(time.perf_counter())
            producer.send(
                self.topics["messages"], key=f"{shop}:{shop}_{n}".encode(), value=probe_event(shop, n)
            )
            time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        producer.close()
        phase.probes = len(sent_at)
        phase.samples = [seen - sent for sent, seen in zip(sent_at, visible_at, strict=False)]
        return phase

    @staticmethod
    def _paced(load: PacedLoad, phase: Visibility, stop: threading.Event) -> None:
        load.run(stop)
        phase.sent, phase.load_seconds = load.sent, load.load_seconds

    def _load(self, producer: KafkaProducer, phase: Visibility, stop: threading.Event) -> None:
        """Simulated traffic at `phase.offered` until `stop`; notes what it really sent."""
        rate = phase.offered
        shape = TrafficShape(shops=5, agents=12, rate=rate)
        stream = TrafficModel(shape, seed=phase.seed, id_prefix=phase_ids(phase.seed)).records(
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
        phase.sent, phase.load_seconds = sent, time.perf_counter() - started

    @classmethod
    def _watch(
        cls, port: int, shop: str, sent_at: list[float], visible_at: list[float], stop: threading.Event
    ) -> None:
        deadline = None
        while len(visible_at) < len(sent_at) or not stop.is_set():
            if stop.is_set():
                deadline = deadline or time.perf_counter() + 30  # stragglers, then give up
                if time.perf_counter() > deadline:
                    return
            waiting = cls.probe_waiting(port, shop)
            now = time.perf_counter()
            while len(visible_at) < min(waiting, len(sent_at)):
                visible_at.append(now)
            time.sleep(0.01)

    @staticmethod
    def probe_waiting(port: int, shop: str = "probe") -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/floor?shop={shop}", timeout=5) as answer:
            floor = json.loads(answer.read())
        agent = probe_agent(shop)
        return next((row["waiting_buyers"] for row in floor["agents"] if row["agent"] == agent), 0)


PROBE_AGENT = "probe:agent"


def probe_agent(shop: str) -> str:
    return f"{shop}:agent"


def probe_event(shop: str, n: int) -> bytes:
    """A buyer who starts waiting now: each probe adds one to the probe agent's waiting count."""
    event = {
        "event_id": f"{shop}-{n}",
        "type": "message",
        "shop_id": shop,
        "buyer_id": f"{shop}_{n}",
        "agent_id": probe_agent(shop),
        "sender": "buyer",
        "ts": time.time_ns() // 1_000_000,
    }
    return json.dumps(event).encode()


def require_running(worker: subprocess.Popen[bytes], worker_log: Path) -> None:
    if worker.poll() is not None:
        tail = worker_log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the worker exited with {worker.returncode}:\n{tail}")


def stop_workers(workers: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, 30 s each to stop, then SIGKILL: every worker ends here, whatever another did."""
    workers = list(workers)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log(f"worker {worker.pid} did not stop within 30 s of SIGTERM: killed")
            worker.kill()
            worker.wait()


def _holds_input(member: Mapping[str, object], topic: str) -> bool:
    assignment = member.get("member_assignment")
    partitions = assignment.get("assigned_partitions", []) if isinstance(assignment, dict) else []
    return any(p.get("topic") == topic and p.get("partitions") for p in partitions)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_s(pid: int) -> float:
    """A process's CPU seconds so far (user and system), from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def leader_round(stack_prefix: str) -> Figures:
    """The leader's round at 10 and 10,000 agents, from `python -m bench.leader_round` (one JSON
    line) when that module has a `measure()`; null figures otherwise."""
    nothing: Figures = dict.fromkeys(LEADER_KEYS)
    module = ROOT / "bench" / "leader_round.py"
    if not module.exists() or "measure" not in top_level_functions(module):
        log("bench/leader_round.py has no measure() yet: lead_round_ms_* are null")
        return nothing
    result = subprocess.run(
        [sys.executable, "-m", "bench.leader_round"],
        env=dict(os.environ, KEFU_BENCH_STACK=stack_prefix),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        log(f"bench.leader_round failed ({result.returncode}): lead_round_ms_* are null")
        log(result.stderr[-2000:])
        return nothing
    measured = json.loads(lines[-1])
    return {key: measured.get(key) for key in LEADER_KEYS}


def top_level_functions(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return {node.name for node in tree.body if isinstance(node, functions)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help="the dataset's size (default 500,000; --quick 20,000)")
    parser.add_argument("--latency-seconds", type=int, help="each latency phase (default 60; --quick 5)")
    parser.add_argument(
        "--latency-rate",
        type=int,
        default=5000,
        help="offered events/s while visibility is measured; above the worker's rate it only grows",
    )
    parser.add_argument("--quick", action="store_true", help="every phase, small: a smoke test of minutes")
    parser.add_argument(
        "--stack-prefix",
        default=os.environ.get("KEFU_BENCH_STACK", "bench"),
        help="the local stack to run on (deploy/local/stack --prefix)",
    )
    args = parser.parse_args()
    args.events = args.events or (20_000 if args.quick else 500_000)
    args.latency_seconds = args.latency_seconds or (5 if args.quick else 60)
    return args


def ceilings(run: Run) -> tuple[float, float, float]:
    """The plain consumer's read + decode (the limit), Faust's stock no-op and the batch path's no-op."""
    log("limit: plain consumer, read + decode")
    limit = asyncio.run(run.limit())
    log(f"limit {limit:.0f} events/s; Faust's own ceiling: a no-op agent over the same topics")
    ceiling = run.faust_ceiling()
    log(f"Faust no-op {ceiling:.0f} events/s; the batch input path with a no-op handler")
    batch_ceiling = run.faust_ceiling("batch")
    log(f"batch path no-op {batch_ceiling:.0f} events/s")
    return limit, ceiling, batch_ceiling


def one_worker(run: Run, args: argparse.Namespace) -> tuple[float, Figures]:
    """From empty state, then both latency phases on the same worker, each from a caught-up start;
    then 20,000/s again once a second worker has joined its group."""
    log("kefu-pulse worker from empty state")
    port = free_port()
    drain = run.throughput(port)
    worker, events_per_s, peak_rss = drain.worker, drain.events_per_s, drain.peak_rss_mb
    phases: list[Visibility] = []
    workers = [worker]
    try:
        buyer_keys = sum(1 for _ in run.redis.scan_iter(keys.BUYER_KEY_PATTERN, count=5000))
        for rate, shop in ((args.latency_rate, "probe"), (HIGH_RATE, "probe20k")):
            log(f"latency at {rate} events/s offered for {args.latency_seconds}s")
            run.settle(worker, timeout=120)
            phases.append(run.latency(port, rate=rate, seconds=args.latency_seconds, shop=shop))
            report_phase(phases[-1])
        log(f"latency at {HIGH_RATE} events/s offered to two workers for {args.latency_seconds}s")
        workers.append(run.start_worker(free_port()))
        expected = run.await_members(2)
        run.settle(worker, timeout=120)
        phases.append(run.latency(port, rate=HIGH_RATE, seconds=args.latency_seconds, shop="probe20k2"))
        report_phase(phases[-1])
        for each in workers:
            require_running(each, run.tmp / "worker.log")
        if run.members() != ("Stable", expected):
            log("the group's members changed during the two-worker phase: its p50 and p99 are null")
            phases[-1].samples.clear()
        peak_rss = max(peak_rss, rss_mb(worker.pid))
    finally:
        stop_workers(workers)
    base, high, high_two = phases
    return events_per_s, {
        **base.figures(),
        "latency_offered_events_per_s": args.latency_rate,
        "latency_achieved_events_per_s": round(base.achieved),
        **high.figures("_at_20k"),
        "achieved_events_per_s_at_20k": round(high.achieved),
        **high_two.figures("_at_20k_two_workers"),
        "achieved_events_per_s_at_20k_two_workers": round(high_two.achieved),
        "latency_producer": high.producer,
        "redis_bytes_per_buyer": round(drain.redis_bytes_added / max(buyer_keys, 1)),
        "redis_cpu_us_per_event": round(drain.redis_cpu_us_per_event, 1),
        "worker_cpu_us_per_event": round(drain.worker_cpu_us_per_event, 1),
        "worker_peak_rss_mb": round(peak_rss, 1),
    }


def report_phase(phase: Visibility) -> None:
    log(f"offered {phase.offered} events/s, the producer ({phase.producer}) achieved {phase.achieved:.0f}")
    if len(phase.samples) < phase.probes:
        log(f"only {len(phase.samples)} of {phase.probes} probes became visible within 30 s of the end")


def rebuilds(run: Run) -> Figures:
    log("rebuild from the topics, workers stopped")
    figures: Figures = {"rebuild_events_per_s": round(run.rebuild())}
    jobs = os.cpu_count() or 1
    if run.rebuild_supports_jobs():
        log(f"rebuild --jobs {jobs}")
        figures |= {"rebuild_jobs": jobs, "rebuild_events_per_s_jobs": round(run.rebuild(jobs))}
    else:
        log(
            "`kefu-pulse rebuild --help` lists no --jobs: rebuild_jobs and rebuild_events_per_s_jobs are null"
        )
        figures |= {"rebuild_jobs": None, "rebuild_events_per_s_jobs": None}
    return figures


def later_phases(run: Run, stack_prefix: str) -> Figures:
    figures = rebuilds(run)
    log("two workers from empty state")
    figures["two_workers_events_per_s"] = round(run.two_workers())
    log(f"a cold worker draining a backlog of {COLD_BACKLOG} events, timed from its start")
    cold_rate, cold_seconds = run.cold_backlog()
    figures |= {"cold_backlog_events_per_s": round(cold_rate), "cold_backlog_s": round(cold_seconds, 2)}
    log("the leader's round")
    return figures | leader_round(stack_prefix)


def main() -> None:
    args = parse_args()
    bootstrap, redis_url = stack(args.stack_prefix)
    run = Run(bootstrap, redis_url, args.events)
    log(f"producing {args.events} events into {PARTITIONS} partitions")
    buyers = run.produce_dataset()
    limit, noop, batch_noop = ceilings(run)
    events_per_s, worker = one_worker(run, args)
    later = later_phases(run, args.stack_prefix)
    figures: Figures = {
        "events": args.events,
        "partitions": PARTITIONS,
        "buyers": buyers,
        "limit_events_per_s": round(limit),
        "events_per_s": round(events_per_s),
        "ratio": round(events_per_s / limit, 3),
        "faust_noop_events_per_s": round(noop),
        "ratio_to_faust_noop": round(events_per_s / noop, 3),
        "faust_batch_ceiling_events_per_s": round(batch_noop),
        "batch_ceiling_ratio": round(batch_noop / limit, 3),
    }
    # The workers run as subprocesses of the same venv and build: the core this process runs.
    native, why = native_status()
    encoder = ("native (Rust): " if native else "Python: ") + why
    core = {"core": core_status().describe(), "outbox_encoder": encoder}
    print(json.dumps(figures | worker | later | core | {"cpus": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
