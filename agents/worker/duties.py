"""What the worker does besides applying batches: on assignment, every tenth of a second, once a
second, every two seconds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, cast

import faust

from agents.store.errors import STORE_ERRORS, check_access
from agents.worker.resume import resume_from_redis
from agents.worker.runtime import Runtime
from config.watch import ConfigWatcher

log = logging.getLogger(__name__)


def install_duties(app: faust.App, runtime: Runtime, input_topics: set[str]) -> None:
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        # First, before any await: Faust has already told its recovery service to seek the new
        # partitions, and that runs as soon as this yields. Installed later, the first seek
        # goes to Kafka's committed offsets, which can be ahead of Redis: records skipped.
        resume_from_redis(app, runtime.store, input_topics, runtime.metrics.redis_errors)
        # Redis is first needed right after this (resuming from its offsets). A wrong password
        # or an untrusted certificate stops the worker here, saying so; an outage does not,
        # since the seek and the batch loop wait through it.
        await check_access(runtime.store.ping)

    cast(Any, app.on_partitions_assigned).connect(on_assigned)  # mode's stub types lag its API

    async def on_shutdown(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Faust stops the producer after this signal: an alert check the leader planned between
        # rounds must not fire later and send into it. The firing set stays in Redis for the
        # next leader, which compares afresh.
        runtime.leader.follow()

    cast(Any, app.on_before_shutdown).connect(on_shutdown)

    @app.timer(1.0)
    async def publish_floor() -> None:
        """Every worker: its partitions' lag. The leader only: gauges, wait pruning, alerts."""
        await _tried_again_next_tick(runtime.update_lag(highwaters(app, input_topics)), "lag update")
        if not app.is_leader():
            runtime.leader.follow()
            return
        await _tried_again_next_tick(runtime.leader.lead(), "floor refresh")

    @app.timer(0.1)
    async def watch_firing_waits() -> None:
        """The leader only: a firing wait that a reply ended resolves now, not at the next round.
        (Firing needs no tick: each round plans a check at the next crossing, leader.py.)"""
        if app.is_leader():
            await _tried_again_next_tick(runtime.leader.watch_waits(), "firing waits' watch")

    watcher = ConfigWatcher(runtime.settings, runtime.policies.update)

    @app.timer(2.0)
    async def reload_configuration() -> None:
        try:
            watcher.poll()
        except Exception:  # a timer's exception would stop the worker: its rules are still good
            log.exception("configuration reload failed, keeping the last good rules")


async def _tried_again_next_tick(duty: Awaitable[None], what: str) -> None:
    """A timer's duty that the store failed is only logged: the next tick does it again."""
    try:
        await duty
    except STORE_ERRORS as exc:
        log.warning("%s failed: %s", what, exc)


def highwaters(app: faust.App, topics: set[str]) -> dict[tuple[str, int], int]:
    consumer = app.consumer
    out: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        highwater = consumer.highwater(tp)
        if highwater is not None and highwater >= 0:
            out[(tp.topic, tp.partition)] = int(highwater)
    return out
