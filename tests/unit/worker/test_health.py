"""`/healthz` judges what the worker needs, with its own settings, and caches the answer."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from redis.exceptions import AuthenticationError

from agents.worker import health as health_module
from agents.worker.health import CACHE_SECONDS, Health
from config.secret import Secret
from config.settings import KafkaSecuritySettings, KafkaSettings, Settings
from streams.wire.preflight import TopicFacts
from streams.wire.security import KafkaAccessError

NAMES = Settings().kafka.topics


@dataclass
class Store:
    error: BaseException | None = None
    pings: int = 0

    async def ping(self) -> bool:
        self.pings += 1
        if self.error is not None:
            raise self.error
        return True


@dataclass
class Runtime:
    store: Store = field(default_factory=Store)
    settings: Settings = field(default_factory=Settings)


@dataclass
class App:
    rebalancing: bool = False
    consumer_generation_id: int = 3


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the fake broker answers: partition counts, or a refused login."""
    state: dict[str, Any] = {"partitions": {NAMES.messages: 8, NAMES.orders: 8}, "refused": None}

    async def facts(settings: Settings, topics: list[str], timeout_s: float) -> TopicFacts:
        if state["refused"]:
            raise ConnectionError("Unable to bootstrap")
        return TopicFacts(dict(state["partitions"]))

    async def access(kafka_settings: Any, timeout_s: float) -> None:
        if state["refused"]:
            raise KafkaAccessError(state["refused"])

    monkeypatch.setattr(health_module, "topic_facts", facts)
    monkeypatch.setattr(health_module, "check_access", access)
    return state


def problems(runtime: Runtime, app: App, now: list[float] | None = None) -> list[str]:
    clock = (lambda: now[0]) if now is not None else (lambda: 0.0)
    return asyncio.run(Health(runtime, app, clock=clock).problems())  # type: ignore[arg-type]


def test_healthy(kafka: dict[str, Any]) -> None:
    assert problems(Runtime(), App()) == []


def test_a_refused_redis_login_is_the_reason(kafka: dict[str, Any]) -> None:
    runtime = Runtime(Store(AuthenticationError("WRONGPASS invalid username-password pair")))
    [problem] = problems(runtime, App())
    assert problem.startswith("redis: Redis refused the login")


def test_redis_unreachable(kafka: dict[str, Any]) -> None:
    [problem] = problems(Runtime(Store(ConnectionError("Connection refused"))), App())
    assert problem.startswith("redis: Redis is unreachable at redis://127.0.0.1:6379/0 (Connection refused)")


def test_a_refused_kafka_login_is_the_reason(kafka: dict[str, Any]) -> None:
    kafka["refused"] = "cannot use Kafka over SASL_SSL as 'kefu' (SCRAM-SHA-256): Authentication failed"
    [problem] = problems(Runtime(), App())
    assert problem == f"kafka: {kafka['refused']}"


def test_input_topics_that_went_missing_or_apart(kafka: dict[str, Any]) -> None:
    kafka["partitions"] = {NAMES.messages: 8, NAMES.orders: None}
    [problem] = problems(Runtime(), App())
    assert problem.startswith(f"kafka: input topic {NAMES.orders} does not exist")


def test_the_consumer_must_be_in_the_group_or_rebalancing(kafka: dict[str, Any]) -> None:
    assert problems(Runtime(), App(consumer_generation_id=0)) == [
        "consumer: not in the group yet (no assignment received)"
    ]
    assert problems(Runtime(), App(rebalancing=True, consumer_generation_id=0)) == []


def test_the_answer_is_cached_briefly(kafka: dict[str, Any]) -> None:
    runtime, now = Runtime(), [100.0]
    check = Health(runtime, App(), clock=lambda: now[0])  # type: ignore[arg-type]

    async def probe(times: int) -> None:
        for _ in range(times):
            await check.problems()

    asyncio.run(probe(5))
    assert runtime.store.pings == 1
    now[0] += CACHE_SECONDS
    asyncio.run(probe(1))
    assert runtime.store.pings == 2


def test_the_open_health_page_never_names_the_kafka_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """`/healthz` needs no token: a Kafka it cannot reach is named by where it is, not by who
    logs in (the `check` command, run by an operator, says who)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    security = KafkaSecuritySettings(
        protocol="SASL_PLAINTEXT", username="kefu-prod-writer", password=Secret("pw-Zq81")
    )
    settings = msgspec.structs.replace(
        Settings(), kafka=KafkaSettings(bootstrap=f"127.0.0.1:{port}", security=security)
    )

    async def unreachable(settings: Settings, topics: list[str], timeout_s: float) -> TopicFacts:
        raise ConnectionError("Unable to bootstrap")

    monkeypatch.setattr(health_module, "topic_facts", unreachable)
    [problem] = problems(Runtime(settings=settings), App())
    assert problem.startswith("kafka: cannot use Kafka over SASL_PLAINTEXT: 127.0.0.1:"), problem
    assert "kefu-prod-writer" not in problem and "pw-Zq81" not in problem
