"""The leader's duties, once a second: export the floor, say who leads, prune waits, publish alerts.

One worker of the group leads (Faust elects it). It is fenced by an epoch in Redis: a leader
that froze while another took over finds a newer epoch there and stops, instead of exporting
twice or repeating alert events.

Between rounds, alerts do not wait for the next tick (issue 30): each round plans when the
next oldest wait of each shop crosses its threshold, and a check at that instant compares that
shop's alerts alone; a firing wait that ends (a reply) resolves at the next watch (a tenth of a
second). Checks and the round's comparison take turns (`_alerting`), both through
`publish_alerts` and the epoch fence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
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
from agents.exposure.floor import AgentReadsStore, FloorCache, FloorReader
from agents.exposure.floor_exposition import FloorText
from agents.exposure.metrics import WorkerMetrics
from agents.store.errors import STORE_ERRORS
from agents.store.redis_store import RedisStore
from config.settings import Settings
from streams.contract.floor import ShopFloor

log = logging.getLogger(__name__)

AlertSink = Callable[[Sequence[AlertEvent]], Awaitable[None]]
# The watch between rounds reads at most this many firing waits; past it, the round resolves the rest.
WATCHED_WAITS_MAX = 500


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
    firing: dict[alerts.AlertKey, int] = field(default_factory=dict)  # as last stored, while leading
    crossings: dict[str, int] = field(default_factory=dict)  # shop -> its next crossing (wall ms)
    # One comparison at a time: a round's and a check's read-compare-store of the firing set.
    _alerting: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _checked: dict[str, int] = field(default_factory=dict, repr=False)  # shop -> its last check's time
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    _checks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)  # running, kept referenced
    # Every shop's agents as last read, kept while leading (floor.py): dropped when leadership ends.
    _floors: FloorCache = field(default_factory=FloorCache, repr=False)
    # shop -> (minute, waiting buyers) as last sampled: a sample that would not change is not sent.
    _sampled: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    # The events of the last change stored, until a store without them says they were sent.
    _unsent: list[AlertEvent] = field(default_factory=list, repr=False)
    _restoring: bool = field(default=False, repr=False)  # storing the set again after Redis lost it

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
        live, now_ms = now_ms is None, wall_clock_ms() if now_ms is None else now_ms
        if self.epoch is None:
            self.epoch = await store.take_leadership()
            log.info("leading, epoch %d", self.epoch)
        snapshot, full_floors = await self.read_snapshot(now_ms)
        async with self._alerting:
            firing = await self._held_alerts()
            if firing is None:
                return
            self.parts.collector.snapshot = snapshot
            self.parts.floor_text.published(snapshot)
            await store.mark_leader(self.identity, now_ms)
            await self._record_waiting(snapshot.floors, now_ms)
            if not isinstance(self.parts.reader.store, AgentReadsStore):  # else floor_reads.lua prunes
                await self.prune_expired_waits(full_floors, now_ms)
            # Every agent alerts on its own: the `_other` fold bounds /metrics' labels only.
            await self._round_alerts(full_floors, firing, now_ms, live)

    async def _round_alerts(
        self, full_floors: list[ShopFloor], firing: alerts.Firing, now_ms: int, live: bool
    ) -> None:
        """The round's comparison, except for shops a check compared after this round read its
        floors: theirs is newer (a stale floor would resolve what the check just fired)."""
        stale = {shop for shop, at in self._checked.items() if at > now_ms}
        self._checked = {shop: self._checked[shop] for shop in stale}
        floors = [floor for floor in full_floors if floor.shop not in stale]
        scope = ({floor.shop for floor in floors} | {key[1] for key in firing}) - stale
        await self.publish_alerts(floors, firing, now_ms, scope)
        if live and not self.deposed:
            kept = {shop: at for shop, at in self.crossings.items() if shop in stale}
            self.crossings = kept | self._next_crossings(floors)
            self._arm()

    async def check_crossings(self, shops: Collection[str], now_ms: int | None = None) -> None:
        """Compare the alerts of `shops` alone, now: a wait crossed the threshold (or ended)
        between rounds. The same comparison, events and fence as the round's."""
        async with self._alerting:
            if self.epoch is None or self.deposed:
                return
            live, now_ms = now_ms is None, wall_clock_ms() if now_ms is None else now_ms
            firing = await self._held_alerts()
            if firing is None:
                return
            floors = [await self.parts.reader.floor(shop, now_ms) for shop in shops]
            self._checked.update(dict.fromkeys(shops, now_ms))
            await self.publish_alerts(floors, firing, now_ms, set(shops))
            if live and not self.deposed:
                for shop in shops:
                    self.crossings.pop(shop, None)
                self.crossings.update(self._next_crossings(floors))
                self._arm()

    async def _held_alerts(self) -> alerts.Firing | None:
        """The firing set stored under this leader's epoch, after sending again the events a
        store kept as unsent (a send that failed, or a leader that stopped before its next
        store: they go again under their own ids); None when a newer leader took over."""
        store = self.parts.store
        epoch, firing = await store.firing_alerts()
        if self.epoch is None or epoch > self.epoch:
            self._depose(epoch)
            return None
        if epoch == 0 or self._restoring:
            return await self._restore_alerts(epoch, firing)
        if epoch != self.epoch:  # a replica behind, say: a newer leader may hold the set
            self._depose(epoch)
            return None
        unsent = await store.unsent_alerts()
        if unsent:
            await self._send(unsent)
            if not await store.store_firing_alerts(epoch, dict(firing), firing):
                self._depose(None)
                return None
            self._unsent = []
        return firing

    async def _restore_alerts(self, found: int, held: alerts.Firing) -> alerts.Firing | None:
        """The hash is gone (epoch 0: a flush, a restart without persistence), so Redis lost what
        this leader stored: the episodes it stored still fire, and must resolve under their own
        ids. They are stored again under a new epoch, with the events this leader had stored
        and not yet known sent (sent first by the next round). Until that store succeeds, every
        round tries again: a new epoch taken and then a failed store leaves the hash empty."""
        log.warning(
            "the firing alerts in Redis are gone (epoch %d read; this leader had %s): storing this "
            "leader's %d firing alerts again",
            found,
            self.epoch,
            len(self.firing),
        )
        self._restoring = True
        self.epoch = await self.parts.store.take_leadership()
        restored = {**held, **self.firing}
        if not await self.parts.store.store_firing_alerts(self.epoch, restored, None, self._unsent):
            self._depose(None)
            return None
        self._restoring = False
        self.firing = restored
        return restored

    def _next_crossings(self, floors: list[ShopFloor]) -> dict[str, int]:
        return alerts.next_crossings(floors, lambda shop: self.parts.policies(shop).clock, self.firing)

    def _arm(self) -> None:
        """One timer, at the earliest planned crossing (replacing the one set before)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.crossings:
            delay = (min(self.crossings.values()) - wall_clock_ms()) / 1000
            self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._start_check)

    def _start_check(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self._check_due())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _check_due(self) -> None:
        """Check the shops whose crossing has come: never before it on the wall clock (the
        timer runs on the loop's monotonic clock, which may disagree by a few ms)."""
        if not self.crossings:
            return
        while (early_ms := min(self.crossings.values()) - wall_clock_ms()) > 0:
            await asyncio.sleep(early_ms / 1000)
            if not self.crossings:
                return
        now_ms = wall_clock_ms()
        try:
            await self.check_crossings([shop for shop, at in self.crossings.items() if at <= now_ms])
        except STORE_ERRORS as exc:  # the next round compares again, and plans again
            log.warning("alert check failed: %s", exc)

    async def watch_waits(self) -> None:
        """Between rounds: a firing wait that ended (a reply, closing time) resolves now. Reads
        only the firing waits, at most WATCHED_WAITS_MAX of them; the round sees the rest."""
        if self.epoch is None or self.deposed:
            return
        watched = sorted({(shop, agent) for alert, shop, agent in self.firing if alert == alerts.WAITING})
        by_shop: dict[str, list[str]] = {}
        for shop, agent in watched[:WATCHED_WAITS_MAX]:
            by_shop.setdefault(shop, []).append(agent)
        now_ms, ended = wall_clock_ms(), []
        for shop, agents in by_shop.items():
            policy = self.parts.policies(shop)
            waits = await self.parts.store.waiting([(shop, a) for a in agents], now_ms - policy.wait_limit_ms)
            threshold = policy.alert_threshold_seconds
            if not all(alerts.wait_over(policy.clock, oldest, now_ms, threshold) for _, oldest, _ in waits):
                ended.append(shop)
        if ended:
            await self.check_crossings(ended)

    async def read_snapshot(self, now_ms: int) -> tuple[FloorSnapshot, list[ShopFloor]]:
        """Every exported shop's floor and first-response histograms for /metrics, agents past
        the cap folded into `_other`; and the same shops' floors with every agent, unfolded."""
        processing, reader = self.parts.settings.processing, self.parts.reader
        configured = self.parts.policies.settings.shops  # live: block lists and agents reload
        shops, unexported = cap_shops(await reader.shops(now_ms), configured, processing.max_shops)
        floors: list[ShopFloor] = []
        full_floors: list[ShopFloor] = []
        histograms: dict[tuple[str, str], dict[str, int]] = {}
        for full, agent_histograms in await reader.leader_floors(shops, now_ms, self._floors):
            shop = full.shop
            if agent_histograms is None:  # a store without floor_reads
                pairs = [(shop, row.agent) for row in full.agents]
                counts = await self.parts.store.histograms(pairs)
                agent_histograms = {agent: c for (_, agent), c in zip(pairs, counts, strict=True)}
            full_floors.append(full)
            shop_settings = configured.get(shop)
            floor = cap_agents(
                full, processing.max_agents_per_shop, shop_settings.agents if shop_settings else ()
            )
            floors.append(floor)
            histograms.update(_histograms(full, agent_histograms, {row.agent for row in floor.agents}))
        return FloorSnapshot(floors, histograms, unexported), full_floors

    async def _record_waiting(self, floors: list[ShopFloor], now_ms: int) -> None:
        """This minute's sample of each shop's waiting buyers, where it changed since the last one."""
        minute = now_ms // 60_000
        samples = {f.shop: (minute, f.totals.waiting_buyers) for f in floors}
        changed = {
            shop: count for shop, (_, count) in samples.items() if self._sampled.get(shop) != (minute, count)
        }
        if changed:
            await self.parts.store.record_waiting(changed, now_ms)
        self._sampled = samples

    async def prune_expired_waits(self, floors: list[ShopFloor], now_ms: int) -> None:
        for floor in floors:
            limit = now_ms - self.parts.policies(floor.shop).wait_limit_ms
            await self.parts.store.prune_waits([(floor.shop, row.agent) for row in floor.agents], limit)

    async def publish_alerts(
        self,
        floors: list[ShopFloor],
        before: alerts.Firing,
        now_ms: int,
        scope: Collection[str] | None = None,
    ) -> None:
        """One `firing`, later one `resolved` event per alert episode, both with its `alert_id`,
        for every agent of `floors` (uncapped: alert events carry no label cardinality).
        With `scope`, only those shops' alerts are compared; the others stay as they are.

        The firing set lives in Redis, so a new leader continues where the old one stopped.
        The new set is stored before its events are sent, and the events with it, as unsent:
        a leader that stops in between (a crash, a send that fails) leaves them to the next
        store of the set, its own or a new leader's, which sends them again. So an event can
        repeat, never be lost, and a repeat has the same `alert_id`: the episode's start was
        stored before anyone heard of it. `before` is the set read from there under this epoch
        and the `_alerting` lock, so only the difference is written, and under that epoch:
        leadership can change while the events are sent (follow(), then lead() takes a newer
        epoch), and another leader's set may be stored by then.
        """
        epoch = self.epoch  # the one `before` was read under
        inside, outside = alerts.in_scope(before, scope) if scope is not None else (dict(before), {})
        now = alerts.compared_conditions(floors, inside)
        events = alerts.transitions(inside, now, now_ms)
        if epoch is None:
            return
        still_firing = outside | alerts.still_firing(inside, now, now_ms)
        if not events:
            self.firing = still_firing
            return
        store = self.parts.store
        stored = await store.store_firing_alerts(epoch, still_firing, before, events)
        if self.epoch != epoch:
            return  # leadership changed meanwhile: the new epoch's round reads and compares afresh
        if not stored:
            self._depose(None)
            return
        self.firing, self._unsent = still_firing, list(events)
        await self._send(events)
        if await store.store_firing_alerts(epoch, still_firing, still_firing):
            self._unsent = []
        elif self.epoch == epoch:
            self._depose(None)  # a newer leader holds the set, and sends the events again

    async def _send(self, events: Sequence[AlertEvent]) -> None:
        await self.parts.alert_sink(events)
        for event in events:
            self.parts.metrics.alerts.labels(event.alert, event.state).inc()

    def _depose(self, newer: int | None) -> None:
        log.warning(
            "another worker leads now (epoch %s; this one had %s): leader duties stop here until "
            "this worker is elected again",
            newer if newer is not None else "newer",
            self.epoch,
        )
        self.deposed = True
        self.parts.collector.snapshot = FloorSnapshot()
        self._stop_alerting()

    def follow(self) -> None:
        """Not the leader (any more): export no floor, and take a new epoch if elected again."""
        self.parts.collector.snapshot = FloorSnapshot()
        self.epoch, self.deposed = None, False
        self._stop_alerting()

    def _stop_alerting(self) -> None:
        """No more checks between rounds, until this worker leads again (a new round plans them)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.firing, self.crossings, self._checked = {}, {}, {}
        self._floors.clear()
        self._sampled, self._unsent, self._restoring = {}, [], False

    @property
    def identity(self) -> str:
        """How `kefu-pulse check` names this worker when it leads."""
        return f"{socket.gethostname()}:{self.parts.settings.web.port} (pid {os.getpid()})"


def _histograms(
    full: ShopFloor, counts_of: dict[str, dict[str, int]], exported: set[str]
) -> dict[tuple[str, str], dict[str, int]]:
    """One shop's first-response histograms: one per exported agent, the rest merged as `_other`."""
    shop = full.shop
    histograms: dict[tuple[str, str], dict[str, int]] = {}
    overflow = []
    for row in full.agents:
        counts = counts_of.get(row.agent)
        # An agent whose id is `_other` is in the fold (cap_agents): its counts are merged there.
        if counts and row.agent in exported and row.agent != OVERFLOW_AGENT:
            histograms[(shop, row.agent)] = counts
        elif counts:
            overflow.append(counts)
    if overflow:
        histograms[(shop, OVERFLOW_AGENT)] = merge_histograms(overflow)
    return histograms
