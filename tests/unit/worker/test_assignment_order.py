"""On assignment, the Redis seek policy must be in place before the handler first yields.

Faust has already told its recovery service to seek the new partitions when it calls the
handler; that service runs at the handler's first await. A policy installed after it leaves
the first seek at Kafka's committed offsets, which can be ahead of Redis: records skipped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents import stream_agents
from agents.worker import duties
from config.settings import Settings
from streams.app import create_app


def test_the_redis_seek_policy_is_installed_before_the_assignment_handler_yields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(Settings())
    stream_agents.install(app, Settings())
    installed_at_first_await: list[bool] = []

    async def first_await(ping: Any) -> None:  # the handler's first await: the access check
        installed_at_first_await.append(getattr(app.consumer, "_kefu_resume_installed", False))

    monkeypatch.setattr(duties, "check_access", first_await)
    asyncio.run(app.on_partitions_assigned.send(set()))
    assert installed_at_first_await == [True]
