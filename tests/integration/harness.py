"""Drive the real stack like a user: the stack script, the CLI, a worker process, Kafka, Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.offset_keys import OFFSET_KEY_PATTERN, parse_offset_key

ROOT = Path(__file__).resolve().parents[2]
# A worker slow enough that a fault lands while records still flow: 200-record fetches, each
# held 0.1 s (slow_worker.py), so the 12,000-record datasets take at least six seconds.
MID_RUN = {"batch_seconds": 0.1, "batch_records": 100}
STACK = ROOT / "deploy" / "local" / "stack"
KEFU = Path(sys.executable).with_name("kefu-pulse")
ARTIFACTS = ROOT / "test-artifacts"
# Several suites can run side by side, each on its own stack (`KEFU_TEST_STACK=name`). Under
# pytest-xdist (./test runs two workers) each worker has its own stack, `name-gw0`, `name-gw1`...:
# its own Kafka, Redis (so its own dbs), ports, pid files; ./test stops them all at the end.
STACK_BASE = os.environ.get("KEFU_TEST_STACK", "test")
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1...; unset in a serial run
STACK_PREFIX = f"{STACK_BASE}-{_XDIST_WORKER}" if _XDIST_WORKER else STACK_BASE


@dataclass(frozen=True)
class KafkaLogin:
    """The stack's SASL_SSL user, as a deployment's config file, environment and clients use it."""

    ca_file: str
    mechanism: str
    username: str
    password: str = field(repr=False)

    def config(self) -> dict[str, str]:
        """The `kafka.security` section (the password travels in KEFU_KAFKA_PASSWORD)."""
        return {
            "protocol": "SASL_SSL",
            "sasl_mechanism": self.mechanism,
            "username": self.username,
            "ca_file": self.ca_file,
        }

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "security_protocol": "SASL_SSL",
            "ssl_context": ssl.create_default_context(cafile=self.ca_file),
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }


@dataclass(frozen=True)
class Stack:
    bootstrap: str
    redis_url: str
    # Set when `bootstrap` is a SASL_SSL listener: deployments on this Stack log in with it.
    kafka_login: KafkaLogin | None = None
    # The same stack's secured endpoints (SASL_SSL Kafka, TLS + ACL Redis), if it prints them.
    secured: Stack | None = None


def stack_up(prefix: str) -> Stack:
    out = subprocess.run(
        [str(STACK), "up", "--prefix", prefix], check=True, capture_output=True, text=True, timeout=600
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.stdout.splitlines()
        if line.startswith("export ")
    )
    secured = None
    if "KEFU_KAFKA_SECURE_BOOTSTRAP" in exports:
        login = KafkaLogin(
            exports["KEFU_KAFKA_CA_FILE"],
            exports["KEFU_KAFKA_SASL_MECHANISM"],
            exports["KEFU_KAFKA_USERNAME"],
            exports["KEFU_KAFKA_PASSWORD"],
        )
        secured = Stack(exports["KEFU_KAFKA_SECURE_BOOTSTRAP"], exports["KEFU_REDIS_SECURE_URL"], login)
    return Stack(exports["KEFU_KAFKA_BOOTSTRAP"], exports["KEFU_REDIS_URL"], secured=secured)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    """One isolated kefu-pulse deployment: its own topics, consumer group, Redis db and config."""

    stack: Stack
    tmp: Path
    shops_yaml: str = ""
    partitions: int = 4
    redis_db: int = 1
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        kinds = ("messages", "orders", "alerts", "deadletter", "agents")
        self.topics = {k: f"t{self.name}.{k}" for k in kinds}
        self.config = self.tmp / f"kefu-{self.name}.yaml"
        self.config.write_text(
            "kafka:\n"
            f"  group: kefu-test-{self.name}\n"
            f"  partitions: {self.partitions}\n"
            f"  topics: {json.dumps(self.topics)}\n"
            + (f"  security: {json.dumps(login.config())}\n" if (login := self.stack.kafka_login) else "")
            + "processing: {batch_size: 500}\n"
            + self.shops_yaml
        )
        # Replace the path only: a rediss:// URL carries `?ssl_ca_certs=/a/path` after it.
        url = urllib.parse.urlsplit(self.stack.redis_url)
        self.redis_url = urllib.parse.urlunsplit(url._replace(path=f"/{self.redis_db}"))
        self.redis = redis.Redis.from_url(self.redis_url)
        clear_db(self.redis)

    def kafka_client_kwargs(self) -> dict[str, Any]:
        return self.stack.kafka_login.client_kwargs() if self.stack.kafka_login else {}

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        if self.stack.kafka_login:  # `extra` may replace it (a wrong password)
            env["KEFU_KAFKA_PASSWORD"] = self.stack.kafka_login.password
        env.update(
            KEFU_CONFIG=str(self.config),
            KEFU_KAFKA_BOOTSTRAP=self.stack.bootstrap,
            KEFU_REDIS_URL=self.redis_url,
            **extra,
        )
        return env

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KEFU), *args], env=self.env(), capture_output=True, text=True, timeout=timeout, cwd=self.tmp
        )

    def create_topics(self) -> None:
        result = self.cli("topics", "create")
        assert result.returncode == 0, result.stderr

    def start_worker(
        self,
        web_port: int | None = None,
        batch_seconds: float = 0.0,
        outbox_seconds: float = 0.0,
        failing: bool = False,
        batch_records: int = 0,
    ) -> tuple[subprocess.Popen[bytes], int]:
        """A worker; with `batch_seconds` or `outbox_seconds`, one slowed down there (slow_worker.py)."""
        port = web_port or free_port()
        log = (self.tmp / f"worker-{self.name}-{len(self.workers)}.log").open("wb")
        command = [str(KEFU), "worker", "-l", "info"]
        if batch_seconds or outbox_seconds or failing or batch_records:
            command = [sys.executable, "-m", "tests.integration.slow_worker", "worker", "-l", "info"]
        proc = subprocess.Popen(
            command,
            env=self.env(
                KEFU_WEB_PORT=str(port),
                KEFU_TEST_BATCH_SECONDS=str(batch_seconds),
                KEFU_TEST_OUTBOX_SECONDS=str(outbox_seconds),
                KEFU_TEST_BATCH_FAILS="1" if failing else "0",
                KEFU_TEST_BATCH_RECORDS=str(batch_records),
                PYTHONPATH=str(ROOT),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            start_new_session=True,
        )
        self.workers.append(proc)
        wait_for(lambda: http_status(port, "/healthz") == 200, timeout=60, what="worker /healthz")
        return proc, port

    def stop_workers(self, sig: int = signal.SIGTERM) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers.clear()

    def produce(
        self, events: Iterable[dict[str, Any] | tuple[str, bytes | None, bytes]], stamped: bool = False
    ) -> dict[tuple[str, int], int]:
        """Produce events keyed per events.md, or raw (kind, key, value) tuples; returns last offsets.

        `stamped`: each record's Kafka timestamp is its event's `ts`, as a connector relaying
        history would produce it (Kafka's retention and `rebuild` go by it)."""
        producer = KafkaProducer(
            bootstrap_servers=self.stack.bootstrap,
            acks="all",
            max_in_flight_requests_per_connection=1,  # keeps each buyer's records in order
            linger_ms=10,
            batch_size=512 * 1024,
            **self.kafka_client_kwargs(),
        )
        futures = []
        for item in events:
            if isinstance(item, tuple):
                kind, key, value = item
                futures.append(producer.send(self.topics[kind], key=key, value=value))
            else:
                kind = "orders" if item.get("type") == "order" else "messages"
                key = f"{item['shop_id']}:{item['buyer_id']}".encode()
                stamp = int(item["ts"]) if stamped else None
                value = json.dumps(item).encode()
                futures.append(producer.send(self.topics[kind], key=key, value=value, timestamp_ms=stamp))
        producer.flush()
        last: dict[tuple[str, int], int] = {}
        for future in futures:
            meta = future.get(timeout=30)
            last[(meta.topic, meta.partition)] = max(last.get((meta.topic, meta.partition), -1), meta.offset)
        producer.close()
        return last

    def applied_offsets(self) -> dict[tuple[str, int], int]:
        out = {}
        for key in self.redis.scan_iter(OFFSET_KEY_PATTERN, count=1000):  # a cluster: every master
            out[parse_offset_key(key.decode())] = int(self.redis.get(key) or -1)
        return out

    def wait_applied(self, last: dict[tuple[str, int], int], timeout: float = 90) -> None:
        def done() -> bool:
            applied = self.applied_offsets()
            return all(applied.get(tp, -1) >= offset for tp, offset in last.items())

        wait_for(done, timeout=timeout, what=f"offsets {last} applied (have {self.applied_offsets()})")

    def rebuild(self) -> subprocess.CompletedProcess[str]:
        """`kefu-pulse rebuild`, retried until the stopped workers have left the consumer group
        (it refuses while members remain; a killed worker's session times out first)."""
        results: list[subprocess.CompletedProcess[str]] = []

        def done() -> bool:
            results.append(self.cli("rebuild", timeout=300))
            return "worker(s)" not in results[-1].stderr

        wait_for(done, timeout=60, what="the consumer group to empty")
        assert results[-1].returncode == 0, results[-1].stderr
        return results[-1]

    def knows_shop(self, shop: str) -> bool:
        """Whether `stats` knows the shop yet (it refuses a shop that no event has named)."""
        result = self.cli("stats", "--shop", shop, "--json")
        if result.returncode != 0 and "unknown shop" not in result.stderr:
            raise AssertionError(result.stderr)
        return result.returncode == 0

    def stats(self, shop: str) -> dict[str, Any]:
        result = self.cli("stats", "--shop", shop, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def read_topic(self, kind: str, expected: int, timeout: float = 30) -> list[Any]:
        consumer = KafkaConsumer(
            self.topics[kind],
            bootstrap_servers=self.stack.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=1000,
            group_id=None,
            **self.kafka_client_kwargs(),
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(consumer)
        consumer.close()
        return records

    def close(self) -> None:
        self.stop_workers()
        self.redis.close()


@contextmanager
def empty_db(stack: Stack, db: int) -> Iterator[str]:
    """The URL of the stack's Redis db `db`, empty before and after."""
    with emptied(f"{stack.redis_url.rsplit('/', 1)[0]}/{db}") as url:
        yield url


@contextmanager
def emptied(url: str) -> Iterator[str]:
    """`url`, a Redis db, empty before and after."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def clear_db(client: redis.Redis) -> None:
    """FLUSHDB, or where the ACL forbids it (the secured Redis), unlink the keys the user owns."""
    try:
        client.flushdb()
    except redis.exceptions.NoPermissionError:
        for key in client.scan_iter("kp:*", count=1000):
            client.unlink(key)


def chat_message(
    event_id: str,
    buyer: str,
    sender: str = "buyer",
    ts: int | None = None,
    *,
    agent: str = "s1:a",
    shop: str = "s1",
    auto_reply: bool = False,
) -> dict[str, Any]:
    """A message event (events.md) as JSON-ready dict; `ts` defaults to now."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": "message",
        "shop_id": shop,
        "buyer_id": buyer,
        "agent_id": agent,
        "sender": sender,
        "ts": time.time_ns() // 1_000_000 if ts is None else ts,
    }
    if auto_reply:
        event["auto_reply"] = True
    return event


def order_event(
    event_id: str, buyer: str, order_id: str, status: str, ts: int, amount: str | None, *, shop: str = "s1"
) -> dict[str, Any]:
    """An order event (events.md) as JSON-ready dict; no `amount` key when `amount` is None."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": "order",
        "shop_id": shop,
        "buyer_id": buyer,
        "order_id": order_id,
        "status": status,
        "ts": ts,
    }
    return event | ({"amount": amount} if amount is not None else {})


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return str(response.read().decode())


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    ends = consumer.end_offsets(partitions)
    consumer.close()
    return {tp.partition: offset for tp, offset in ends.items()}
