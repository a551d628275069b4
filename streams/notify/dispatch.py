"""From alert records to channel outboxes, and back to "this record is done".

A `Ticket` is one record of `kefu.alerts`. It is claimed in the ledger (ledger.py), put on
each of its shop's channels, and done when every channel has sent, dead-lettered or dropped
it; then its ledger key is settled and its offset may be committed (service.py).
A notice that is no alert (the daily digest, `send_notice`) takes the same channels with a
ticket of no record: it has no offset to commit, and its claim is the ledger key it is given
(digest.py), kept alive while held and settled once every channel is done with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from streams.contract.alerts import FIRST_RESPONSE, WAITING, AlertEvent
from streams.notify.alertmanager import RuleAlert
from streams.notify.clock import Clock
from streams.notify.folding import ROBOT_PER_MINUTE, Budget, Due
from streams.notify.ledger import LedgerKey, NotifyLedger
from streams.notify.metrics import NotifyMetrics
from streams.notify.outbox import ChannelOutbox, Send, Wording, Written
from streams.notify.retry import Backoff
from streams.notify.robots import ChannelConfig, Delivery
from streams.notify.routes import Routes
from streams.render.notices import Notice, firing_notice, resolved_notice, rule_notice

log = logging.getLogger("kefu.notify")
# An alert older than this when read is history (a new consumer group starting from the
# topic's beginning): counted as `stale`, never sent. A night's quiet hours fit inside.
STALE_AFTER_MS = 24 * 3600 * 1000
# The partition and offset of a ticket with no record behind it (a notice of notify's own).
NO_RECORD = -1


def _is_history(ticket: Ticket, now_ms: int) -> bool:
    """A record of kefu.alerts read a day late. Not Alertmanager's: it posts what fires now, and
    an alert firing for more than a day carries its `startsAt` as its time."""
    assert ticket.event is not None
    return ticket.partition != NO_RECORD and now_ms - ticket.event.ts > STALE_AFTER_MS


@dataclass(eq=False)
class Ticket:
    """One record: where it is (for the commit and the dead letter) and what it says."""

    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    event: AlertEvent | None = None
    channels_left: int = 0
    claimed: bool = False
    notice_key: LedgerKey | None = None  # a notice's own claim in the ledger (the digest's)

    @property
    def ledger_key(self) -> LedgerKey:
        if self.notice_key is not None:
            return self.notice_key
        assert self.event is not None
        return (self.event.alert_id, self.event.state)

    def channel_key(self, channel: ChannelConfig) -> LedgerKey:
        """Its delivery to one channel: marked when that robot took it (or gave it up)."""
        alert_id, state = self.ledger_key
        return (alert_id, f"{state}@{channel.name}")


DeadLetterSink = Callable[[Ticket, str, str], Awaitable[None]]


@dataclass
class Dispatcher:
    routes: Routes
    ledger: NotifyLedger
    send: Send
    clock: Clock
    metrics: NotifyMetrics
    dead_letter: DeadLetterSink
    per_minute: int = ROBOT_PER_MINUTE
    _outboxes: dict[tuple[str, str], ChannelOutbox[Ticket]] = field(default_factory=dict)
    _budgets: dict[tuple[str, str], Budget] = field(default_factory=dict)  # per robot (type, URL)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _busy: list[Ticket] = field(default_factory=list)
    _retrying: list[Ticket] = field(default_factory=list)  # taken from _busy by retry_busy, in its claim
    _done: list[Ticket] = field(default_factory=list)

    async def accept(self, tickets: Sequence[Ticket]) -> None:
        """Claim each decoded ticket and put it on its channels; the rest are done at once."""
        now = self.clock.now_ms()
        wanted: list[Ticket] = []
        for ticket in tickets:
            event = ticket.event
            if event is None:
                self._done.append(ticket)
            elif (stale := _is_history(ticket, now)) or not self.routes.channels(event.shop_id):
                self.metrics.tally("none", "stale" if stale else "no_channel")
                self._done.append(ticket)
            else:
                wanted.append(ticket)
        await self._claim(wanted)

    async def accept_events(self, events: Sequence[AlertEvent]) -> None:
        """Alert events with no record behind them (Alertmanager's webhook): claimed, routed and
        settled like records; a dead letter carries the event as its `raw`."""
        tickets = [
            Ticket(NO_RECORD, NO_RECORD, event.shop_id.encode(), msgspec.json.encode(event), event)
            for event in events
        ]
        await self.accept(tickets)

    async def retry_busy(self) -> None:
        """Claim again the tickets another process held: it has settled them, or died."""
        busy, self._busy = self._busy, []
        self._retrying = busy  # still held elsewhere, for an Alertmanager post meanwhile
        try:
            await self._claim(busy)
        finally:
            self._retrying = []

    async def _claim(self, tickets: Sequence[Ticket]) -> None:
        """Firings first, then resolutions, but not one whose firing another process holds (it
        is retrying it, or stopped and its claim has not lapsed yet): the 已恢复 would reach the
        group before its 预警, whose "still waiting" would then be the last word."""
        resolutions = [t for t in tickets if t.event is not None and t.event.state == "resolved"]
        await self._claim_now([t for t in tickets if t.event is None or t.event.state != "resolved"])
        firings = (t for t in (*self._busy, *self._retrying) if t.ledger_key[1] == "firing" and not t.claimed)
        held_elsewhere = {t.ledger_key[0] for t in firings}
        self._busy += [t for t in resolutions if t.ledger_key[0] in held_elsewhere]
        await self._claim_now([t for t in resolutions if t.ledger_key[0] not in held_elsewhere])

    async def _claim_now(self, tickets: Sequence[Ticket]) -> None:
        if not tickets:
            return
        results = await self.ledger.claim([ticket.ledger_key for ticket in tickets])
        claimed: list[Ticket] = []
        for ticket, result in zip(tickets, results, strict=True):
            if result == "claimed":
                ticket.claimed = True
                claimed.append(ticket)
            elif result == "busy":
                self._busy.append(ticket)
            else:
                self.metrics.tally("none", "duplicate")
                self._done.append(ticket)
        await self._route(claimed)

    async def _route(self, tickets: Sequence[Ticket]) -> None:
        """Each ticket onto the channels that have not had it yet. A claim that lapsed (a
        process stopped while one robot held the alert through its quiet hours, say) is taken
        again by the next process: the robots that took it then must not get it twice."""
        planned = [(ticket, channel) for ticket in tickets for channel in self._channels(ticket)]
        had = await self.ledger.delivered([ticket.channel_key(channel) for ticket, channel in planned])
        for ticket in tickets:
            ticket.channels_left = 0
        for (ticket, channel), delivered in zip(planned, had, strict=True):
            if delivered:
                self.metrics.tally(channel.name, "duplicate")
                continue
            assert ticket.event is not None
            ticket.channels_left += 1
            self._outbox(ticket.event.shop_id, channel).put(ticket.event, ticket)
        self._done += [ticket for ticket in tickets if ticket.channels_left == 0]

    def _channels(self, ticket: Ticket) -> tuple[ChannelConfig, ...]:
        assert ticket.event is not None
        return tuple(self.routes.channels(ticket.event.shop_id))

    def send_notice(self, shop_id: str, notice: Notice, claimed: LedgerKey | None = None) -> int:
        """Put a notice that is no alert (the daily digest) on each of the shop's channels, with
        their quiet hours, budget and retries; a channel that gives up writes a dead letter.
        `claimed`: the ledger key this process claimed for it, kept alive while the notice is
        held and settled once every channel is done with it. Returns how many channels it went to."""
        channels = self.routes.channels(shop_id)
        ticket = Ticket(
            NO_RECORD,
            NO_RECORD,
            shop_id.encode(),
            notice.markdown.encode(),
            channels_left=len(channels),
            claimed=claimed is not None,
            notice_key=claimed,
        )
        for channel in channels:
            self._outbox(shop_id, channel).put_notice(notice, ticket)
        if not channels:
            self._done.append(ticket)
        return len(channels)

    def _outbox(self, shop_id: str, channel: ChannelConfig) -> ChannelOutbox[Ticket]:
        key = (shop_id, channel.name)
        outbox = self._outboxes.get(key)
        if outbox is None:
            outbox = ChannelOutbox(
                channel,
                self.routes.quiet(shop_id, channel),
                Wording(self._describe, self.routes.names, self.routes.link(shop_id)),
                self.send,
                self.clock,
                self,
                Backoff(self.routes.retry_seconds(shop_id)),
                self._budgets.setdefault((channel.type, channel.url.reveal()), Budget(self.per_minute)),
            )
            self._outboxes[key] = outbox
            self._tasks.append(asyncio.create_task(outbox.run(), name=f"notify {shop_id} {channel.name}"))
        return outbox

    def _describe(self, event: AlertEvent) -> Notice:
        names = self.routes.names(event.shop_id, event.agent_id)
        link = self.routes.link(event.shop_id)
        if isinstance(event, RuleAlert) and not _has_numbers(event):
            return rule_notice(event, event.summary, names, link)
        if event.state == "firing":
            return firing_notice(event, names, link)
        return resolved_notice(event, names, link)

    # The outboxes' Report ------------------------------------------------------------------

    def attempted(self, channel: ChannelConfig, delivery: Delivery) -> None:
        self.metrics.tally(channel.name, delivery.outcome)

    async def sent(self, channel: ChannelConfig, covers: Sequence[Due[Ticket]], now_ms: int) -> None:
        for item in covers:
            self.metrics.latency.observe(max(0, now_ms - item.event.ts) / 1000)
        await self._finish(covers, channel)

    async def dead(
        self, channel: ChannelConfig, covers: Sequence[Due[Ticket]], reason: str, detail: str
    ) -> None:
        self.metrics.tally(channel.name, "dead_letter", len(covers))
        for item in covers:
            await self.dead_letter(item.ticket, reason, f"channel {channel.name} ({channel.type}): {detail}")
        await self._finish(covers, channel)

    async def dropped(self, channel: ChannelConfig, covers: Sequence[Due[Ticket]], outcome: str) -> None:
        self.metrics.tally(channel.name, outcome, len(covers))
        await self._finish(covers, channel)

    async def notice_sent(self, channel: ChannelConfig, written: Written[Ticket]) -> None:
        log.info("notify: %s sent to channel %s", written.notice.title, channel.name)
        self._finish_notice(written.ticket)

    async def notice_dead(
        self, channel: ChannelConfig, written: Written[Ticket], reason: str, detail: str
    ) -> None:
        self.metrics.tally(channel.name, "dead_letter")
        where = f"{written.notice.title}, channel {channel.name} ({channel.type})"
        await self.dead_letter(written.ticket, reason, f"{where}: {detail}")
        self._finish_notice(written.ticket)

    def _finish_notice(self, ticket: Ticket) -> None:
        ticket.channels_left -= 1
        if ticket.channels_left == 0:
            self._done.append(ticket)

    async def _finish(self, covers: Sequence[Due[Ticket]], channel: ChannelConfig) -> None:
        """This channel is done with them: marked at once, not when every channel is (a night's
        quiet hours on another robot can be that long)."""
        await self.ledger.settle([item.ticket.channel_key(channel) for item in covers if item.ticket.claimed])
        for item in covers:
            item.ticket.channels_left -= 1
            if item.ticket.channels_left == 0:
                self._done.append(item.ticket)

    # Bookkeeping for the consumer loop -----------------------------------------------------

    async def settle_done(self) -> list[Ticket]:
        """The tickets done since the last call, their ledger keys settled first."""
        done, self._done = self._done, []
        claimed = [ticket.ledger_key for ticket in done if ticket.claimed]
        if claimed:
            await self.ledger.settle(claimed)
        return done

    async def keep_claims(self) -> None:
        """Keep this process's claims alive while their notices wait or retry."""
        held = self._held_claims()
        if held:
            await self.ledger.keep(held)

    def _held_claims(self) -> list[LedgerKey]:
        held = {item.ticket.ledger_key for outbox in self._outboxes.values() for item in outbox.held()}
        held |= {
            written.ticket.ledger_key
            for outbox in self._outboxes.values()
            for written in outbox.held_notices()
            if written.ticket.claimed
        }
        return sorted(held)

    def check(self) -> None:
        """Raise what ended an outbox (a dead letter that could not be written), if anything did."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def busy(self) -> int:
        """Tickets another process holds the claim of (they wait for it to settle or lapse)."""
        return len(self._busy)

    def in_flight(self) -> int:
        return sum(outbox.waiting() for outbox in self._outboxes.values()) + len(self._busy)

    async def close(self) -> None:
        """Stop sending, and let go of what this process still held: the next one (an upgrade's
        restart) takes those claims at once, not 30 s later, and sends them in order. What
        a robot took already is marked per channel and not sent again."""
        held = self._held_claims()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.ledger.release(held)
        except Exception as exc:  # an outage: the claims lapse by themselves
            log.warning("notify: could not release %d held claims (%s); they lapse in 30 s", len(held), exc)


def _has_numbers(event: RuleAlert) -> bool:
    """A rule alert our own words fit: a wait or first-response alert that carries its seconds."""
    return event.alert in (WAITING, FIRST_RESPONSE) and event.value > 0 and event.threshold > 0
