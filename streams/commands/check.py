"""`kefu-pulse check`: everything a deployment needs, as ✓/✗ lines a user reads top to bottom.

Exits 0 only when nothing is ✗. A line with → is a next step, not a fault: a deployment whose
first worker has not started yet (nothing was ever applied) is what `check` sees while being set
up. The Redis-side facts come from the store, behind `StoreProbe`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.cli import AppCommand, option
from kafka.admin import ConfigResource, ConfigResourceType

from agents.core.policy import PolicyBook
from agents.core.windows import WINDOW_DAYS
from agents.worker.runtime import Runtime
from config.calendar import MS_PER_DAY
from config.errors import KefuError
from config.redaction import mask_secrets
from config.secret import url_secrets
from config.settings import Settings, config_path
from streams.commands.base import Command, StoreUnavailable, require_redis
from streams.wire.consumer_group import describe_group, group_state
from streams.wire.preflight import StartupError, TopicFacts, input_topic_problem, require_kafka, topic_facts
from streams.wire.security import admin_client, client_kwargs

SAFE_EVICTION = "noeviction"  # every kefu-pulse key has a TTL, so even volatile-* policies evict state


class CheckUnfinished(KefuError):
    pass


def register(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    @app.command(
        option("--json", "as_json", is_flag=True, default=False, help="the checks as JSON"), base=Command
    )
    async def check(self: AppCommand, as_json: bool) -> None:
        """Check config, Kafka, topics, Redis, workers and lag, as ✓/✗ lines."""
        try:
            checks = await run_checks(settings, config_path(), runtime.policies, runtime.store)
        except (Exception, asyncio.CancelledError) as exc:  # a broken check fails, never passes
            raise CheckUnfinished(f"check could not finish: {type(exc).__name__}: {exc}") from exc
        finally:
            await runtime.close()
        raise SystemExit(report(checks, as_json))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    next_step: bool = False  # not broken, but waiting for the user (ok stays true)

    def line(self) -> str:
        mark = "→" if self.next_step else "✓" if self.ok else "✗"
        return f"{mark} {self.name}: {self.detail}"


class StoreProbe(Protocol):
    async def ping(self) -> bool: ...

    async def server_info(self) -> dict[str, str]: ...

    async def applied_offsets(self, topic_partitions: list[tuple[str, int]]) -> list[int]: ...

    async def leader(self) -> tuple[str, float] | None: ...


def configuration_checks(settings: Settings, path: Path, policies: PolicyBook) -> list[Check]:
    source = str(path) if path.exists() else f"{path} (absent: every default applies)"
    checks = [Check("configuration", True, f"{source}, {len(settings.shops)} shop(s) configured")]
    checks.extend(
        Check(f"shop {shop}", True, describe_shop(policies, shop)) for shop in sorted(settings.shops)
    )
    return checks


def describe_shop(policies: PolicyBook, shop: str) -> str:
    policy = policies(shop)
    rule = f"{policy.attribution_rule}/{policy.attribution_window}"
    agents = len(policies.settings.shops[shop].agents)
    return (
        f"{policy.name or 'no name'}, {policy.calendar.zone.key}, alert after "
        f"{policy.alert_threshold_seconds:g} s, after-sale {policy.after_sale_ms // MS_PER_DAY} days, "
        f"attribution {rule}, {agents} agent(s) named"
    )


def _retention_days(settings: Settings, topics: list[str]) -> dict[str, float | None]:
    admin = admin_client(settings.kafka, "kefu-pulse-check")
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, configs=["retention.ms"]) for t in topics]
        )
    finally:
        admin.close()
    out: dict[str, float | None] = {}
    for topic in topics:
        value = found.get("topic", {}).get(topic, {}).get("retention.ms", {}).get("value")
        out[topic] = None if value is None or int(value) < 0 else int(value) / MS_PER_DAY
    return out


def topic_checks(
    settings: Settings, facts: TopicFacts, retention: dict[str, float | None], window_days: int
) -> list[Check]:
    """`window_days`: the input retention `rebuild` needs to restore the longest window."""
    names = settings.kafka.topics
    inputs = {names.messages, names.orders}
    checks = []
    for topic in (names.messages, names.orders, names.alerts, names.deadletter):
        partitions = facts.partitions.get(topic)
        if partitions is None:
            checks.append(Check(f"topic {topic}", False, "missing; run `kefu-pulse topics create`"))
            continue
        days = retention.get(topic)
        kept = "retention unlimited" if days is None else f"retention {days:g} days"
        short = topic in inputs and days is not None and days < window_days
        detail = f"{partitions} partitions, {kept}"
        if short:
            detail += f"; `rebuild` needs {window_days} days to restore every window"
        checks.append(Check(f"topic {topic}", not short, detail))
    problem = input_topic_problem(settings, facts)
    checks.append(Check("co-partitioning", problem is None, problem or "both input topics agree"))
    checks.append(_agents_topic_check(names.agents, facts.partitions.get(names.agents), retention))
    return checks


def _agents_topic_check(topic: str, partitions: int | None, retention: dict[str, float | None]) -> Check:
    """v3 agent status: keyed by agent, so its partition count is its own. Without it the
    workers run v2, which is a step to take, not a fault."""
    if partitions is None:
        detail = "missing: agent status (v3) is off; run `kefu-pulse topics create`, then restart the workers"
        return Check(f"topic {topic}", True, detail, next_step=True)
    days = retention.get(topic)
    kept = "retention unlimited" if days is None else f"retention {days:g} days"
    return Check(f"topic {topic}", True, f"{partitions} partitions, {kept} (agent status, v3)")


def redis_check(url: str, info: dict[str, str]) -> Check:
    policy = info.get("maxmemory_policy", "?")
    aof = (
        "AOF on"
        if info.get("aof_enabled") == "1"
        else "AOF off (a restart loses state; `rebuild` restores it)"
    )
    shown = mask_secrets(url, url_secrets(url))
    detail = f"{shown}: Redis {info.get('redis_version', '?')}, maxmemory-policy {policy}, {aof}"
    if policy != SAFE_EVICTION:
        detail += f"; set maxmemory-policy {SAFE_EVICTION}: an evicting policy silently drops state"
    return Check("redis", policy == SAFE_EVICTION, detail)


def _group(settings: Settings) -> tuple[int, str]:
    admin = admin_client(settings.kafka, "kefu-pulse-check")
    try:
        group = describe_group(admin, settings.kafka.group).get(settings.kafka.group, {})
    finally:
        admin.close()
    return len(group.get("members") or []), group_state(group)


async def _end_offsets(settings: Settings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    if not partitions:  # aiokafka's consumer cancels itself on stop after an empty request
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        request_timeout_ms=10_000,
        **client_kwargs(settings.kafka.security),
    )
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def worker_checks(settings: Settings, facts: TopicFacts, store: StoreProbe) -> list[Check]:
    members, state = await asyncio.to_thread(_group, settings)
    leader = await store.leader()
    names = settings.kafka.topics
    partitions = [
        TopicPartition(topic, p)
        for topic in (names.messages, names.orders, names.agents)
        for p in range(facts.partitions.get(topic) or 0)
    ]
    ends = await _end_offsets(settings, partitions)
    applied = await store.applied_offsets([(tp.topic, tp.partition) for tp in partitions])
    # Nothing ever applied and nobody consuming: a deployment being set up, not one that lost
    # its workers. Say what to do next; keep ✗ for workers that ran and are gone.
    first_start = members == 0 and leader is None and all(offset < 0 for offset in applied)
    checks = [_workers_check(settings, members, state, first_start), _leader_check(leader, first_start)]
    behind: dict[str, int] = {}
    for tp, offset in zip(partitions, applied, strict=True):
        behind[tp.topic] = behind.get(tp.topic, 0) + max(0, ends[tp] - offset - 1)
    for topic, lag in behind.items():
        if first_start:
            checks.append(Check(f"lag {topic}", True, f"{lag} records waiting for the first worker"))
            continue
        stalled = lag > 0 and members == 0
        note = "; no worker is consuming" if stalled else ""
        checks.append(Check(f"lag {topic}", not stalled, f"{lag} records not yet applied{note}"))
    return checks


def _workers_check(settings: Settings, members: int, state: str, first_start: bool) -> Check:
    if first_start:
        return Check(
            "workers", True, "none started yet: start one with `kefu-pulse worker -l info`", next_step=True
        )
    return Check("workers", members > 0, f"{members} in group {settings.kafka.group!r} ({state})")


def _leader_check(leader: tuple[str, float] | None, first_start: bool) -> Check:
    if first_start:
        return Check("leader", True, "none yet: the first worker to start leads", next_step=True)
    if leader is None:
        return Check("leader", False, "none in the last 5 s")
    return Check("leader", True, f"{leader[0]}, seen {leader[1]:.1f} s ago")


async def run_checks(settings: Settings, path: Path, policies: PolicyBook, store: StoreProbe) -> list[Check]:
    checks = configuration_checks(settings, path, policies)
    try:
        await require_kafka(settings)
    except StartupError as exc:
        return [*checks, Check("kafka", False, str(exc))]
    security = settings.kafka.security
    login = f" as {security.username!r}" if security.uses_sasl else ""
    checks.append(Check("kafka", True, f"{settings.kafka.bootstrap} ({security.protocol}{login}), reachable"))
    names = settings.kafka.topics
    all_topics = [names.messages, names.orders, names.alerts, names.deadletter, names.agents]
    facts = await topic_facts(settings, all_topics)
    present = [t for t in all_topics if facts.partitions.get(t) is not None]
    retention = await asyncio.to_thread(_retention_days, settings, present) if present else {}
    checks.extend(topic_checks(settings, facts, retention, WINDOW_DAYS))
    try:
        await require_redis(settings, store)
    except StoreUnavailable as exc:
        return [*checks, Check("redis", False, str(exc))]
    checks.append(redis_check(settings.redis.url, await store.server_info()))
    checks.extend(await worker_checks(settings, facts, store))
    return checks


def report(checks: list[Check], as_json: bool) -> int:
    # Masked on the way out: a detail may quote a library's error, and errors quote URLs.
    if as_json:
        print(mask_secrets(json.dumps([asdict(c) for c in checks], ensure_ascii=False)))
    else:
        for check in checks:
            print(mask_secrets(check.line()))
    failed = sum(not c.ok for c in checks)
    steps = sum(c.next_step for c in checks)
    if not as_json:
        print(
            f"{len(checks) - failed - steps} of {len(checks)} checks passed"
            + (f", {steps} waiting for you (→)" if steps else "")
            + (f", {failed} failed" if failed else "")
        )
    return 1 if failed else 0
