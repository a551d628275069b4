"""One (shop, channel)'s queue: quiet hours, the minute's budget, folding, retries.

Notices due on a channel wait here while the channel is quiet or its minute is spent, so a
burst piles up and goes out folded (folding.py). Each message is tried until the robot
accepts it or refuses it, or `retry_seconds` pass (retry.py); `report` hears every end.
A notice that is no alert (the daily digest) waits in the same queue, under the same quiet
hours, budget and retries, and goes as it is: first, one message, never folded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from streams.contract.alerts import AlertEvent
from streams.notify.clock import Clock
from streams.notify.folding import (
    MESSAGE_BYTES,
    Budget,
    Describe,
    Due,
    Message,
    NamesOf,
    plan,
    without_resolved_pairs,
)
from streams.notify.quiet import QuietHours
from streams.notify.retry import RETRIED, Backoff, gives_up_reason
from streams.notify.robots import ChannelConfig, Delivery
from streams.render.notices import Notice

T = TypeVar("T")
# Quiet hours are checked again at least this often (a clock step, a config change).
QUIET_RECHECK_MS = 60_000

Send = Callable[[ChannelConfig, Notice, int], Awaitable[Delivery]]


class Report(Protocol[T]):
    """What became of the alerts and notices a channel had due (service.py counts and commits on it)."""

    def attempted(self, channel: ChannelConfig, delivery: Delivery) -> None: ...

    async def sent(self, channel: ChannelConfig, covers: Sequence[Due[T]], now_ms: int) -> None: ...

    async def dead(
        self, channel: ChannelConfig, covers: Sequence[Due[T]], reason: str, detail: str
    ) -> None: ...

    async def dropped(self, channel: ChannelConfig, covers: Sequence[Due[T]], outcome: str) -> None: ...

    async def notice_sent(self, channel: ChannelConfig, written: Written[T]) -> None: ...

    async def notice_dead(
        self, channel: ChannelConfig, written: Written[T], reason: str, detail: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """A notice that is no alert (the daily digest), and what the caller tracks it by."""

    notice: Notice
    ticket: T


@dataclass(frozen=True, slots=True)
class Ending:
    """How a message's attempts ended: sent at `at_ms` (`reason` None), or given up."""

    at_ms: int
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Wording:
    """How the channel's shop words its notices."""

    describe: Describe
    names_of: NamesOf
    link: str | None


class ChannelOutbox(Generic[T]):
    def __init__(
        self,
        channel: ChannelConfig,
        quiet: QuietHours | None,
        wording: Wording,
        send: Send,
        clock: Clock,
        report: Report[T],
        backoff: Backoff,
        budget: Budget,
    ) -> None:
        self.channel, self.quiet, self.wording = channel, quiet, wording
        self._send, self._clock, self._report = send, clock, report
        self.backoff, self.budget = backoff, budget
        self._due: list[Due[T]] = []
        self._written: list[Written[T]] = []
        self._sending: tuple[Due[T], ...] = ()
        self._sending_notice: Written[T] | None = None
        # Planned messages not tried yet: held, so their claims are kept alive while an earlier
        # one retries (an expired claim would let another process send them too).
        self._planned: list[Message[T]] = []
        self._wake = asyncio.Event()

    def put(self, event: AlertEvent, ticket: T) -> None:
        self._due.append(Due(event, ticket))
        self._wake.set()

    def put_notice(self, notice: Notice, ticket: T) -> None:
        self._written.append(Written(notice, ticket))
        self._wake.set()

    def waiting(self) -> int:
        planned = sum(len(message.covers) for message in self._planned)
        return len(self._due) + len(self._sending) + planned + len(self.held_notices())

    def held(self) -> list[Due[T]]:
        """Everything this channel has not finished: due, planned, and the message being tried."""
        planned = [item for message in self._planned for item in message.covers]
        return [*self._due, *planned, *self._sending]

    def held_notices(self) -> list[Written[T]]:
        """The notices (no alerts: the digest) this channel has not finished, the one being tried too."""
        sending = [self._sending_notice] if self._sending_notice is not None else []
        return [*self._written, *sending]

    async def run(self) -> None:
        while True:
            if not self._due and not self._written:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._clock.now_ms()
            later = self._hold_until(now)
            if later is not None:
                await self._clock.sleep_until(later)
                continue
            if self._written:
                await self._send_written(self._written.pop(0))
            else:
                await self._send_due(now)

    def _hold_until(self, now_ms: int) -> int | None:
        """When to look again, if the channel is quiet or its minute is spent; None: send now."""
        quiet_end = self.quiet.until_ms(now_ms) if self.quiet is not None else None
        if quiet_end is not None:
            self._due = [item if item.held else replace(item, held=True) for item in self._due]
            return min(quiet_end, now_ms + QUIET_RECHECK_MS)
        free = self.budget.next_free_ms(now_ms)
        return free if free > now_ms else None

    async def _send_due(self, now_ms: int) -> None:
        due, self._due = self._due, []
        kept, over = without_resolved_pairs(due)
        if over:
            await self._report.dropped(self.channel, over, "dropped_quiet")
        wording = self.wording
        size = MESSAGE_BYTES[self.channel.type]
        remaining = self.budget.remaining(now_ms)
        messages, later = plan(kept, remaining, wording.describe, wording.names_of, wording.link, size)
        for _ in messages:  # now, before any await: the robot's other channels plan with the rest
            self.budget.spend(now_ms)
        self._due = later + self._due
        self._planned = list(messages)
        while self._planned:
            await self._deliver(self._planned.pop(0))

    async def _send_written(self, written: Written[T]) -> None:
        self.budget.spend(self._clock.now_ms())
        self._sending_notice = written  # held (its claim kept alive) until reported, dead letter too
        try:
            ending = await self._attempts(written.notice)
            if ending.reason is None:
                await self._report.notice_sent(self.channel, written)
            else:
                await self._report.notice_dead(self.channel, written, ending.reason, ending.detail)
        finally:
            self._sending_notice = None

    async def _deliver(self, message: Message[T]) -> None:
        self._sending = message.covers
        try:
            ending = await self._attempts(message.notice)
        finally:
            self._sending = ()
        if ending.reason is None:
            await self._report.sent(self.channel, message.covers, ending.at_ms)
        else:
            await self._report.dead(self.channel, message.covers, ending.reason, ending.detail)

    async def _attempts(self, notice: Notice) -> Ending:
        first = self._clock.now_ms()
        attempt = 0
        while True:
            now = self._clock.now_ms()
            delivery = await self._send(self.channel, notice, now)
            self._report.attempted(self.channel, delivery)
            answered = self._clock.now_ms()
            if delivery.outcome == "sent":
                return Ending(answered)
            delay = self.backoff.delay_ms(attempt, answered - first) if delivery.outcome in RETRIED else None
            if delay is None:
                reason = gives_up_reason(delivery, self.backoff.retry_seconds)
                return Ending(answered, reason, delivery.detail)
            await self._clock.sleep_until(answered + delay)
            attempt += 1
