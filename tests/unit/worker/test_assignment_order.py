"""The worker's hooks on Faust's lifecycle (duties.py): on assignment and at shutdown.

On assignment, the Redis seek policy must be in place before the handler first yields.

Faust has already told its recovery service to seek the new partitions when it calls the
handler; that service runs at the handler's first await. A policy installed after it leaves
the first seek at Kafka's committed offsets, which can be ahead of Redis: records skipped.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition as TP
from prometheus_client import CollectorRegistry, Counter

from agents.core.clock import wall_clock_ms
from agents.worker import duties, install, resume
from config.settings import Settings
from streams.wire.app import create_app


def test_the_redis_seek_policy_is_installed_before_the_assignment_handler_yields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(Settings())
    install.install(app, Settings())
    installed_at_first_await: list[bool] = []

    async def first_await(ping: Any) -> None:  # the handler's first await: the access check
        installed_at_first_await.append(getattr(app.consumer, "_kefu_resume_installed", False))

    monkeypatch.setattr(duties, "check_access", first_await)
    asyncio.run(app.on_partitions_assigned.send(set()))
    assert installed_at_first_await == [True]


class FakeConsumer:
    """The two consumer calls the seek policy makes; the first `fail` seeks hit a rebalance."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.seeks: list[tuple[Any, int]] = []

    async def seek_to_committed(self) -> dict[Any, int]:
        if self.fail:
            self.fail -= 1
            raise IllegalStateError(
                "No current assignment for partition TopicPartition(topic='in', partition=1)"
            )
        return {TP("in", 0): 3}

    def assignment(self) -> set[Any]:
        return {TP("in", 0)}

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


class FakeStore:
    def __init__(self) -> None:
        self.batches = self

    async def applied_offsets(self, partitions: list[tuple[str, int]]) -> list[int]:
        return [9 for _ in partitions]

    async def drain(self, partitions: set[int]) -> int:
        return 0


@pytest.mark.parametrize(("fail", "positions"), [(1, {TP("in", 0): 10}), (99, {})])
def test_a_rebalance_during_the_seek_is_retried_and_never_crashes_the_worker(
    monkeypatch: pytest.MonkeyPatch, fail: int, positions: dict[Any, int]
) -> None:
    monkeypatch.setattr(resume, "SEEK_RETRY_SECONDS", 0)
    consumer = FakeConsumer(fail)
    app = SimpleNamespace(consumer=consumer, conf=SimpleNamespace(broker_request_timeout=90.0))
    redis_errors = Counter("redis_errors", "", registry=CollectorRegistry())
    resume.resume_from_redis(app, FakeStore(), {"in"}, redis_errors)  # type: ignore[arg-type]
    assert asyncio.run(consumer.seek_to_committed()) == positions
    # Retried on the assignment as it is now: Redis's offset + 1; gave up without a seek.
    assert consumer.seeks == ([(TP("in", 0), 10)] if positions else [])


def test_the_leader_plans_no_alert_check_past_the_start_of_shutdown() -> None:
    """Faust stops the producer after `on_before_shutdown`: a check planned between rounds that
    fired later sent into a stopped producer (seen as an unretrieved NotReady at demo's end)."""
    app = create_app(Settings())
    runtime = install.install(app, Settings())
    leader = runtime.leader

    async def shut_down() -> None:
        leader.epoch = 1
        leader.crossings = {"s1": wall_clock_ms() + 60_000}
        leader._arm()
        assert leader._timer is not None
        await app.on_before_shutdown.send()

    asyncio.run(shut_down())
    assert leader._timer is None and leader.crossings == {} and leader.epoch is None
