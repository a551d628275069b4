"""The leader's duties, once a second: export the floor, say who leads, prune waits, publish alerts.

One worker of the group leads (Faust elects it). It is fenced by an epoch in Redis: a leader
that froze while another took over finds a newer epoch there and stops, instead of exporting
twice or repeating alert events.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agents.core import alerts
from agents.core.alerts import AlertEvent
from agents.core.clock import wall_clock_ms
from agents.core.policy import PolicyBook
from agents.exposure.collector import (
    OVERFLOW_AGENT,
    FloorCollector,
    FloorSnapshot,
    cap_agents,
    cap_shops,
    merge_histograms,
)
from agents.exposure.floor import FloorReader
from agents.exposure.floor_exposition import FloorText
from agents.exposure.metrics import WorkerMetrics
from agents.store.redis_store import RedisStore
from config.settings import Settings
from streams.contract.floor import ShopFloor

log = logging.getLogger(__name__)

AlertSink = Callable[[Sequence[AlertEvent]], Awaitable[None]]


class LeaderParts(Protocol):
    """The worker's parts the leader works with (agents/worker/runtime.py's Runtime holds them).
    Read from there on every round, so a part that is replaced is the one used from then on."""

    @property
    def settings(self) -> Settings: ...
    @property
    def policies(self) -> PolicyBook: ...
    @property
    def store(self) -> RedisStore: ...
    @property
    def reader(self) -> FloorReader: ...
    @property
    def collector(self) -> FloorCollector: ...
    @property
    def floor_text(self) -> FloorText: ...
    @property
    def metrics(self) -> WorkerMetrics: ...
    @property
    def alert_sink(self) -> AlertSink: ...


@dataclass
class Leader:
    """This worker's part in leading: its epoch while it leads, and the rounds it runs."""

    parts: LeaderParts
    epoch: int | None = None  # this worker's leader epoch, while it leads
    deposed: bool = False  # a newer leader took over while this one still thought it led

    async def lead(self, now_ms: int | None = None) -> None:
        """The leader's duties, once a second: export every shop's floor as gauges, say who
        leads, drop expired waits from the live queues, and publish alert transitions.

        Fenced by an epoch in Redis: a leader that froze while another took over finds a newer
        epoch there and stops, instead of exporting twice or repeating alert events.
        """
        store = self.parts.store
        if self.deposed:
            if await store.leader() is not None:
                return  # the newer leader is at work
            # It stopped saying so (LEADER_TTL_MS) while Faust still names this worker: lead again.
            self.epoch, self.deposed = None, False
        now_ms = wall_clock_ms() if now_ms is None else now_ms
        if self.epoch is None:
            self.epoch = await store.take_leadership()
            log.info("leading, epoch %d", self.epoch)
        snapshot, full_floors = await self.read_snapshot(now_ms)
        epoch, firing = await store.firing_alerts()
        if epoch != self.epoch:
            self._depose(epoch)
            return
        self.parts.collector.snapshot = snapshot
        self.parts.floor_text.published(snapshot)
        await store.mark_leader(self.identity, now_ms)
        await store.record_waiting({f.shop: f.totals.waiting_buyers for f in snapshot.floors}, now_ms)
        await self.prune_expired_waits(full_floors, now_ms)
        # Every agent alerts on its own: the `_other` fold bounds /metrics' labels only.
        await self.publish_alerts(full_floors, firing, now_ms)

    async def read_snapshot(self, now_ms: int) -> tuple[FloorSnapshot, list[ShopFloor]]:
        """Every exported shop's floor and first-response histograms for /metrics, agents past
        the cap folded into `_other`; and the same shops' floors with every agent, unfolded."""
        processing, reader = self.parts.settings.processing, self.parts.reader
        configured = self.parts.policies.settings.shops  # live: block lists and agents reload
        shops, unexported = cap_shops(await reader.shops(now_ms), configured, processing.max_shops)
        floors: list[ShopFloor] = []
        full_floors: list[ShopFloor] = []
        histograms: dict[tuple[str, str], dict[str, int]] = {}
        for shop in shops:
            full = await reader.floor(shop, now_ms, with_sums=True)
            full_floors.append(full)
            shop_settings = configured.get(shop)
            floor = cap_agents(
                full, processing.max_agents_per_shop, shop_settings.agents if shop_settings else ()
            )
            floors.append(floor)
            histograms.update(await self._histograms(full, {row.agent for row in floor.agents}))
        return FloorSnapshot(floors, histograms, unexported), full_floors

    async def _histograms(self, full: ShopFloor, exported: set[str]) -> dict[tuple[str, str], dict[str, int]]:
        """One shop's first-response histograms: one per exported agent, the rest merged as `_other`."""
        shop, agents = full.shop, [row.agent for row in full.agents]
        histograms: dict[tuple[str, str], dict[str, int]] = {}
        overflow = []
        for agent, counts in zip(
            agents, await self.parts.store.histograms([(shop, a) for a in agents]), strict=True
        ):
            if counts and agent in exported:
                histograms[(shop, agent)] = counts
            elif counts:
                overflow.append(counts)
        if overflow:
            histograms[(shop, OVERFLOW_AGENT)] = merge_histograms(overflow)
        return histograms

    async def prune_expired_waits(self, floors: list[ShopFloor], now_ms: int) -> None:
        for floor in floors:
            limit = now_ms - self.parts.policies(floor.shop).wait_limit_ms
            await self.parts.store.prune_waits([(floor.shop, row.agent) for row in floor.agents], limit)

    async def publish_alerts(self, floors: list[ShopFloor], before: alerts.Firing, now_ms: int) -> None:
        """One `firing`, later one `resolved` event per alert episode, both with its `alert_id`,
        for every agent of `floors` (uncapped: alert events carry no label cardinality).

        The firing set lives in Redis, so a new leader continues where the old one stopped;
        events are sent before the set is stored (a crash in between can repeat one, never
        lose one; the repeat has the same `alert_id`).
        """
        now = alerts.conditions(floors)
        events = alerts.transitions(before, now, now_ms)
        if not events or self.epoch is None:
            return
        await self.parts.alert_sink(events)
        for event in events:
            self.parts.metrics.alerts.labels(event.alert, event.state).inc()
        still_firing = alerts.still_firing(before, now, now_ms)
        if not await self.parts.store.store_firing_alerts(self.epoch, still_firing):
            self._depose(None)

    def _depose(self, newer: int | None) -> None:
        log.warning(
            "another worker leads now (epoch %s; this one had %s): leader duties stop here until "
            "this worker is elected again",
            newer if newer is not None else "newer",
            self.epoch,
        )
        self.deposed = True
        self.parts.collector.snapshot = FloorSnapshot()

    def follow(self) -> None:
        """Not the leader (any more): export no floor, and take a new epoch if elected again."""
        self.parts.collector.snapshot = FloorSnapshot()
        self.epoch, self.deposed = None, False

    @property
    def identity(self) -> str:
        """How `kefu-pulse check` names this worker when it leads."""
        return f"{socket.gethostname()}:{self.parts.settings.web.port} (pid {os.getpid()})"
