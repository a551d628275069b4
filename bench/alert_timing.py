"""Issue 30, "Alerts at the threshold": from a probe buyer's message to its `firing` event.

N probe buyers, each on an agent of its own in shop `probe` (threshold 15 s), start waiting
0.37 s apart (so they fall on every phase of the leader's once-a-second round). For each, the
figure is the firing event's `ts` minus the buyer message's `ts`, on `kefu.alerts`. Two workers
in turn, on the same stack and load: this checkout's (a check planned at each crossing), and
the same code with the planning switched off (`once-a-second`: alerts only from the round, as
before issue 30). Optionally under a steady simulated load (`--rate` events/s, 5 shops of 12
agents, as bench/pipeline.py). Prints one JSON line. Timing is measured here, never asserted.

    .venv/bin/python -m bench.alert_timing [--probes 12] [--rate 0] [--stack-prefix bench]
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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer

from bench.stack import stack_env
from streams.simulation.traffic import TrafficModel, TrafficShape

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 8
THRESHOLD_SECONDS = 15
PROBE_SPACING_SECONDS = 0.37
BASELINE = "baseline-worker"  # argv[1] of the worker subprocess whose planning is switched off


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Run:
    """One worker (scheduled or once-a-second) on fresh topics, probes and an optional load."""

    def __init__(self, env: dict[str, str], mode: str, rate: int, db: int) -> None:
        self.bootstrap, self.mode, self.rate = env["KEFU_KAFKA_BOOTSTRAP"], mode, rate
        self.redis_url = env["KEFU_REDIS_URL"].rsplit("/", 1)[0] + f"/{db}"
        name = uuid.uuid4().hex[:6]
        self.topics = {k: f"a{name}.{k}" for k in ("messages", "orders", "alerts", "deadletter", "agents")}
        self.tmp = Path(tempfile.mkdtemp(prefix="kefu-alert-timing-"))
        self.config = self.tmp / "kefu.yaml"
        self.config.write_text(
            f"kafka: {{group: alerts-{name}, partitions: {PARTITIONS}, topics: {json.dumps(self.topics)}}}\n"
            f"shops:\n  probe: {{alert_threshold_seconds: {THRESHOLD_SECONDS}}}\n"
        )
        redis.Redis.from_url(self.redis_url).flushdb()
        self.env = dict(os.environ, KEFU_CONFIG=str(self.config), KEFU_REDIS_URL=self.redis_url)
        self.env |= {
            "KEFU_KAFKA_BOOTSTRAP": self.bootstrap,
            "KEFU_WEB_PORT": str(free_port()),
            "PYTHONPATH": str(ROOT),
        }
        self.firing: dict[str, int] = {}  # probe agent -> its firing event's ts
        self.stop = threading.Event()

    def start_worker(self) -> subprocess.Popen[bytes]:
        kefu = [str(Path(sys.executable).with_name("kefu-pulse"))]
        if self.mode == "once-a-second":
            kefu = [sys.executable, "-m", "bench.alert_timing", BASELINE]
        subprocess.run([*kefu, "topics", "create"], env=self.env, check=True, capture_output=True, cwd=ROOT)
        log_file = (self.tmp / "worker.log").open("ab")
        return subprocess.Popen(
            [*kefu, "worker", "-l", "warn"], env=self.env, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def watch_alerts(self) -> None:
        consumer = KafkaConsumer(
            self.topics["alerts"], bootstrap_servers=self.bootstrap, auto_offset_reset="earliest"
        )
        while not self.stop.is_set():
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    event = json.loads(record.value)
                    if event["shop_id"] == "probe" and event["state"] == "firing":
                        self.firing.setdefault(event["agent_id"], int(event["ts"]))
        consumer.close()

    def load(self, producer: KafkaProducer) -> None:
        stream = TrafficModel(TrafficShape(shops=5, agents=12, rate=self.rate), seed=7).records(
            time.time_ns() // 1_000_000
        )
        started, sent = time.perf_counter(), 0
        while not self.stop.is_set():
            due = int((time.perf_counter() - started) * self.rate)
            while sent < due:
                record = next(stream)
                producer.send(self.topics[record.kind], key=record.key, value=record.value)
                sent += 1
            time.sleep(0.002)
        log(f"load: {sent} events in {time.perf_counter() - started:.0f} s")

    def probes(self, producer: KafkaProducer, count: int) -> dict[str, int]:
        sent: dict[str, int] = {}
        for n in range(count):
            agent, ts = f"probe:a{n:02d}", time.time_ns() // 1_000_000
            event: dict[str, Any] = {
                "event_id": f"p{n}",
                "type": "message",
                "shop_id": "probe",
                "buyer_id": f"tb_p{n}",
            }
            event |= {"agent_id": agent, "sender": "buyer", "ts": ts}
            producer.send(
                self.topics["messages"], key=f"probe:tb_p{n}".encode(), value=json.dumps(event).encode()
            )
            sent[agent] = ts
            time.sleep(PROBE_SPACING_SECONDS)
        return sent

    def measure(self, count: int, warmup_seconds: float) -> list[float]:
        worker = self.start_worker()
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=2)
        threads = [threading.Thread(target=self.watch_alerts)]
        if self.rate:
            threads.append(threading.Thread(target=self.load, args=(producer,)))
        try:
            for thread in threads:
                thread.start()
            time.sleep(warmup_seconds)  # assigned, leading, and the load at its pace
            sent = self.probes(producer, count)
            deadline = time.monotonic() + THRESHOLD_SECONDS + 30
            while len(self.firing.keys() & sent.keys()) < count and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()
            producer.close()
            worker.terminate()
            worker.wait(timeout=60)
        return [(self.firing[a] - ts) / 1000 for a, ts in sent.items() if a in self.firing]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(delays: list[float], probes: int) -> dict[str, Any]:
    if not delays:
        return {"fired": 0, "probes": probes}
    return {
        "fired": len(delays),
        "probes": probes,
        "min_s": round(min(delays), 3),
        "median_s": round(statistics.median(delays), 3),
        "max_s": round(max(delays), 3),
        "before_threshold": sum(d <= THRESHOLD_SECONDS for d in delays),
    }


def baseline_worker() -> None:
    """`kefu-pulse` with the leader's checks between rounds switched off: alerts come from the
    once-a-second round alone, as before issue 30."""
    from agents.worker.leader import Leader
    from streams.commands import main as cli

    async def no_watch(self: Leader) -> None:
        return None

    Leader._arm = lambda self: None  # type: ignore[method-assign]
    Leader.watch_waits = no_watch  # type: ignore[method-assign]
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    cli.main()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=12)
    parser.add_argument("--rate", type=int, default=0, help="simulated events/s besides the probes (0: idle)")
    parser.add_argument("--stack-prefix", default="bench", help="deploy/local/stack's prefix to use")
    parser.add_argument("--redis-db", type=int, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=15.0)
    parser.add_argument("--modes", default="scheduled,once-a-second")
    args = parser.parse_args()
    env = stack_env(args.stack_prefix)
    result: dict[str, Any] = {"probes": args.probes, "rate": args.rate, "threshold_s": THRESHOLD_SECONDS}
    for mode in args.modes.split(","):
        log(f"{mode}: {args.probes} probes at {args.rate} events/s")
        delays = Run(env, mode, args.rate, args.redis_db).measure(args.probes, args.warmup_seconds)
        result[mode] = summary(delays, args.probes)
        log(f"{mode}: {result[mode]}")
    new, old = result.get("scheduled", {}), result.get("once-a-second", {})
    if "median_s" in new and "median_s" in old:  # how far past the threshold, old against new
        late = {k: (old[k] - THRESHOLD_SECONDS, new[k] - THRESHOLD_SECONDS) for k in ("median_s", "max_s")}
        result["lateness_ratio_old_to_new"] = {
            k: round(o / n, 1) if n > 0 else None for k, (o, n) in late.items()
        }
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == [BASELINE]:
        baseline_worker()
    else:
        main()
