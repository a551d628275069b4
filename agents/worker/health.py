"""`/healthz`: what this worker needs right now, as a list of problems (empty when healthy).

Each check uses the worker's own settings, so it fails where the worker would:
- Kafka: a metadata request with the configured security (TLS trust, SASL login), and the
  input topics present;
- Redis: a command as the configured user;
- the consumer: in the group (an assignment received), rebalancing, or knowingly idle (the
  group gave it no partition, as when workers outnumber partitions).
The answer is cached for a moment: a probe every second must not open a Kafka login each time.
A problem names the dependency and where it is, never who logs in: Redis is shown by scheme,
host, port and database only, and every sentence is masked again with the known secrets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import faust

from agents.store.errors import STORE_ERRORS, describe_problem
from agents.worker.runtime import Runtime
from config.redaction import mask_secrets, settings_secrets
from streams.wire.preflight import input_topic_problem, topic_facts
from streams.wire.security import KafkaAccessError, check_access

CACHE_SECONDS = 1.5
CHECK_TIMEOUT_S = 3.0


@dataclass
class Health:
    runtime: Runtime
    app: faust.App
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, list[str]] | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def problems(self) -> list[str]:
        async with self._lock:  # concurrent probes share one round of checks
            if self._cached is not None and self.clock() - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            found = [p for check in (self._redis, self._kafka) if (p := await _bounded(check)) is not None]
            if (consumer := self._consumer()) is not None:
                found.append(consumer)
            secrets = settings_secrets(self.runtime.settings)
            found = [mask_secrets(problem, secrets) for problem in found]
            self._cached = (self.clock(), found)
            return found

    async def _redis(self) -> str | None:
        try:
            await self.runtime.store.ping()
        except STORE_ERRORS as exc:
            return f"redis: {describe_problem(exc, redis_location(self.runtime.settings.redis.url))}"
        return None

    async def _kafka(self) -> str | None:
        settings = self.runtime.settings
        names = settings.kafka.topics
        try:
            facts = await topic_facts(settings, [names.messages, names.orders], timeout_s=CHECK_TIMEOUT_S)
        except Exception:  # aiokafka says only "unable to bootstrap": ask for the reason
            try:
                await check_access(settings.kafka, timeout_s=CHECK_TIMEOUT_S)
            except KafkaAccessError as exc:
                return mask_secrets(f"kafka: {exc.anonymous}")
            return "kafka: the metadata request failed"
        problem = input_topic_problem(settings, facts)
        return None if problem is None else f"kafka: {problem}"

    def _consumer(self) -> str | None:
        if self.app.rebalancing or self.app.consumer_generation_id > 0:
            return None  # moving partitions, or in the group (with partitions, or knowingly idle)
        return "consumer: not in the group yet (no assignment received)"


def redis_location(url: str) -> str:
    """The Redis URL without its user, password or query (where `password=` may sit)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # a password may hold `@`: the host follows the last
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


async def _bounded(check: Callable[[], Awaitable[str | None]]) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S + 1)
    except TimeoutError:
        return f"{check.__name__.strip('_')}: no answer within {CHECK_TIMEOUT_S + 1:g} s"
