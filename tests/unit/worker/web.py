"""The worker's web views in process: a real Faust app and the real readers over a fake store.

`served(...)` installs the views as the worker does (agents/worker/views.py) on a fresh app and
yields an aiohttp test client; nothing listens outside the test and nothing needs Redis or Kafka.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter, generate_latest

from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import DAY_FIELDS, WIDTH
from agents.core.trend import TREND_FIELDS, TREND_POINTS
from agents.core.windows import WINDOWS
from agents.exposure.floor import FloorReader
from agents.exposure.report import ReportReader
from agents.exposure.trend import TrendReader
from agents.worker import health as health_module
from agents.worker.access import load_access
from agents.worker.views import install_views
from config.settings import Settings, settings_from_yaml
from streams.wire.app import create_app
from streams.wire.preflight import TopicFacts

# What a Redis client's error says: an internal address no HTTP client should see.
INTERNAL_ADDRESS = "10.20.30.40"
REDIS_DOWN = ConnectionError(f"Error 111 connecting to {INTERNAL_ADDRESS}:6379. Connection refused.")
CONFIG = "shops:\n  s1:\n    agents: {'s1:A': {name: 小美}, 's1:B': {}}\n  s2: {}\n"


@dataclass
class ReadStore:
    """Every read the floor, trend and report make, answered with zeros for `agents`;
    `failure` makes each read raise it. Records the longest key-bearing argument it was given."""

    agents_by_shop: dict[str, list[str]] = field(default_factory=lambda: {"s1": ["s1:A", "s1:B"]})
    failure: BaseException | None = None
    longest_id: int = 0
    reads: int = 0

    def _read(self, *ids: str) -> None:
        self.reads += 1
        self.longest_id = max([self.longest_id, *map(len, ids)])
        if self.failure is not None:
            raise self.failure

    async def ping(self) -> bool:
        self._read()
        return True

    async def window_sums(self, pairs: Sequence[tuple[str, str]], reads: Any) -> list[dict[str, list[int]]]:
        self._read(*(s for s, _ in pairs))
        return [{w: [0] * WIDTH for w in WINDOWS} for _ in pairs]

    async def waiting(
        self, pairs: Sequence[tuple[str, str]], oldest_allowed_ms: int
    ) -> list[tuple[int, int | None, str | None]]:
        self._read(*(s for s, _ in pairs))
        return [(0, None, None) for _ in pairs]

    async def shops(self, now_ms: int) -> list[str]:
        self._read()
        return sorted(self.agents_by_shop)

    async def agents(self, shop: str, now_ms: int) -> list[str]:
        self._read(shop)
        return list(self.agents_by_shop.get(shop, []))

    async def details(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        self._read()  # its keys name shop, agent and day: longer than any id
        return [{} for _ in keys]

    async def day_vectors(
        self, pairs: Sequence[tuple[str, str]], days: Sequence[int]
    ) -> list[list[list[int]]]:
        self._read(*(s for s, _ in pairs))
        return [[[1] * len(DAY_FIELDS) for _ in days] for _ in pairs]

    async def shops_since(self, since_ms: int) -> list[str]:
        self._read()
        return sorted(self.agents_by_shop)

    async def agents_since(self, shop: str, since_ms: int) -> list[str]:
        self._read(shop)
        return list(self.agents_by_shop.get(shop, []))

    async def trend_vectors(self, pairs: Sequence[tuple[str, str]], now_s: int) -> list[list[list[int]]]:
        self._read(*(s for s, _ in pairs))
        return [[[0] * len(TREND_FIELDS) for _ in range(TREND_POINTS + 1)] for _ in pairs]

    async def waiting_samples(self, shop: str, minutes: Sequence[int]) -> list[int | None]:
        self._read(shop)
        return [None for _ in minutes]


@dataclass
class FakeRuntime:
    """The parts of agents.worker.runtime.Runtime the views use."""

    settings: Settings
    store: ReadStore
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        Counter("kefu_test_scrapes", "a sample for /metrics", registry=self.registry).inc()
        self.policies = PolicyBook(self.settings)
        self.reader = FloorReader(self.store, self.policies)
        self.reports = ReportReader(self.store, self.policies)
        self.trends = TrendReader(self.store, self.reader)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HealthyApp:
    """Kafka as /healthz sees it when all is well (no broker needed)."""

    @staticmethod
    def install(monkeypatch: Any) -> None:
        async def facts(settings: Settings, topics: list[str], timeout_s: float) -> TopicFacts:
            return TopicFacts(dict.fromkeys(topics, settings.kafka.partitions))

        monkeypatch.setattr(health_module, "topic_facts", facts)


def settings(config: str = CONFIG, **web: object) -> Settings:
    """The test shops, with `web:` settings as given (max_report_cells=10, …)."""
    web_yaml = "".join(f"  {key}: {value}\n" for key, value in web.items())
    return settings_from_yaml(config + (f"web:\n{web_yaml}" if web_yaml else ""))


@asynccontextmanager
async def served(runtime: FakeRuntime) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(runtime.settings)
    # As the worker's start-up does: the access file named in the test's `web:` settings.
    install_views(app, runtime, load_access(runtime.settings.web, os.environ))  # type: ignore[arg-type]
    async with TestClient(TestServer(web_app(app))) as client:
        yield client


def web_app(app: Any) -> Any:
    """The aiohttp application under Faust's web driver (faust's types do not show it)."""
    return app.web.web_app


def live_policies() -> int:
    """ShopPolicy objects alive in the process: what the policy cache holds."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, ShopPolicy))
