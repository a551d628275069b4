"""The drill-down lists (明细) read from the stored rows (agents/core/details.py).

A list is the rows of one kind for a shop (or one agent) over business days: each agent's day
hash read whole (newest days first, as many as the page needs), decoded, filtered with the same
`matches` whose counts the report shows, sorted newest first by the consultation's start (ties
by agent, then buyer) and paged. The cursor is where the last page ended: the last row's start
and agent and how many rows of that start and agent were given already, so it never carries a
buyer id, masked or not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import msgspec

from agents.core.details import (
    ConsultationDetail,
    DetailKind,
    Flag,
    OrderRef,
    SilentOrderDetail,
    decode_consultation,
    decode_silent_order,
    matches,
)
from agents.core.policy import PolicyBook, ShopPolicy
from agents.core.projection import SHOP_LEVEL
from agents.core.report_range import DayRange, RangeError, day_text, oldest_kept_day, report_range
from agents.exposure.report import ReportReader, index_since_ms
from agents.store.keys import details_key
from agents.store.protocols import DetailsStore, ReportStore
from streams.contract.details import (
    DEFAULT_PAGE,
    MAX_PAGE,
    ConsultationRow,
    Details,
    DetailsRequestError,
    OrderLine,
    SilentOrderRow,
    mask_buyer,
)

KINDS = ", ".join(kind.value for kind in DetailKind)
FLAG_WORDS = tuple((flag, (flag.name or "").lower()) for flag in Flag)
MAX_OVER_SECONDS = 86_400.0
# A cursor's row start is an event time: one outside these years was not given by a list, and
# its business day is past what dates can hold (year 1 .. 9999 in any zone).
CURSOR_STARTS_MS = range(0, 4_102_444_800_000)  # 1970 .. 2100
BAD_CURSOR = "the cursor is not one this list gave: ask again without it to start from the newest row"


class DetailsSource(DetailsStore, ReportStore, Protocol):
    """The rows, and who was active since (the agents of a team list)."""


@dataclass(frozen=True, slots=True)
class DetailsQuery:
    """A list asked for, as a person writes it; `check` turns it into what is read."""

    shop: str
    kind: str
    first: str | None = None
    last: str | None = None
    agent: str | None = None
    over_seconds: float | None = None  # `slow` only; None: the shop's alert threshold
    cursor: str | None = None
    limit: int = DEFAULT_PAGE
    reveal_buyers: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: rows sort by (start desc, agent, buyer); `taken` rows with exactly this
    start and agent were already given, or all of them (WHOLE_GROUP). A page ends after a whole
    group of such ties where it can: counted, a tie that left the list between two pages (a
    buyer answered meanwhile) made the next page skip one that stayed. The buyer, which would
    order the ties, is never in a cursor."""

    start: int
    agent: str
    taken: int


WHOLE_GROUP = 0  # Position.taken: every row of its start and agent was given


def encode_cursor(position: Position) -> str:
    raw = msgspec.msgpack.encode((position.start, position.agent, position.taken))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        start, agent, taken = msgspec.msgpack.decode(raw, type=tuple[int, str, int])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise DetailsRequestError(BAD_CURSOR) from None
    if taken < WHOLE_GROUP or start not in CURSOR_STARTS_MS:
        raise DetailsRequestError(BAD_CURSOR)
    return Position(start, agent, taken)


def parse_kind(text: str) -> DetailKind:
    try:
        return DetailKind(text)
    except ValueError:
        raise DetailsRequestError(f"kind {text!r} is not a list: choose one of {KINDS}") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise DetailsRequestError(f"limit {limit} is not a page size: give 1 to {MAX_PAGE} rows")
    return limit


def check_over(over_seconds: float | None, kind: DetailKind) -> float | None:
    if over_seconds is None:
        return None
    if kind is not DetailKind.SLOW:
        raise DetailsRequestError(f"over applies to the slow list only, not to {kind.value}")
    if not math.isfinite(over_seconds) or not 0 <= over_seconds <= MAX_OVER_SECONDS:
        raise DetailsRequestError(
            f"over {over_seconds:g} is not a wait: give 0 to {MAX_OVER_SECONDS:g} seconds"
        )
    return over_seconds


def details_range(policy: ShopPolicy, first: str | None, last: str | None, today: int) -> DayRange:
    """The report's range rules, then the lists' own horizon (`details_days`)."""
    zone = policy.calendar.zone.key
    days = report_range(first, last, today, policy.retention_days, zone)
    oldest = oldest_kept_day(today, policy.details_days)
    if days.first < oldest:
        raise RangeError(
            f"from {day_text(days.first)} is older than the lists keep: lists go back "
            f"{policy.details_days} business days (details_days), to {day_text(oldest)}"
        )
    return days


@dataclass(frozen=True, slots=True)
class _Stored:
    agent: str
    buyer: str
    field: str  # the hash field: the buyer (consultations) or the order id (silent orders)
    start: int  # the consultation's start, or the order's creation
    detail: ConsultationDetail | SilentOrderDetail

    def sort_key(self) -> tuple[int, str, str, str]:
        return (-self.start, self.agent, self.buyer, self.field)


@dataclass(frozen=True, slots=True)
class _Plan:
    details: Details  # the list's header, its rows still empty
    policy: ShopPolicy
    agents: list[str]
    days: DayRange
    kind: DetailKind
    slow_over_ms: int


class _Clock:
    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)

    def iso(self, ms: int | None) -> str | None:
        if ms is None:
            return None
        return datetime.fromtimestamp(ms / 1000, tz=self.zone).isoformat(timespec="milliseconds")


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


class DetailsReader:
    def __init__(self, store: DetailsSource, policies: PolicyBook) -> None:
        self.store = store
        self.policies = policies
        self.reports = ReportReader(store, policies)

    async def page(self, query: DetailsQuery, now_ms: int) -> Details:
        """One page of the list; its `next_cursor` asks for the next.

        Days are read newest first, one, then two, four… at a time, until the page is full: a
        day's rows all start after an older day's, so the page needs no older day, and the
        first page of a big team's month reads a day or two of it, not the month."""
        check_limit(query.limit)
        position = decode_cursor(query.cursor) if query.cursor is not None else None
        plan = await self._plan(query, now_ms)
        days = plan.days
        day = days.last if position is None else min(days.last, plan.policy.calendar.day(position.start))
        rows: list[_Stored] = []
        start, span = 0, 1
        while day >= days.first:
            chunk = list(range(day, max(days.first, day - span + 1) - 1, -1))
            rows += sorted(await self._select(plan, chunk), key=_Stored.sort_key)
            start = 0 if position is None else _after(rows, position)
            if len(rows) - start > query.limit:
                break
            day, span = day - len(chunk), span * 2
        shown = rows[start : start + query.limit]
        more = start + query.limit < len(rows)
        cursor = None
        if more and shown:
            end = _page_end(rows, start, start + len(shown))
            shown = rows[start:end]
            cursor = encode_cursor(_position(rows, end))
        return msgspec.structs.replace(
            plan.details, rows=self._rows(shown, query, plan.details.timezone), next_cursor=cursor
        )

    async def everything(self, query: DetailsQuery, now_ms: int) -> Details:
        """Every row of the list at once (the CSV download, the command line). A team's month is
        hundreds of thousands of rows: sorted and made on a thread, as they are decoded."""
        plan = await self._plan(query, now_ms)
        stored = await self._select(plan, plan.days.days)
        names = self.policies(query.shop).agent_names
        rows = await asyncio.to_thread(
            _sorted_rows, stored, plan.kind, names, query.reveal_buyers, plan.details.timezone
        )
        return msgspec.structs.replace(plan.details, rows=rows)

    async def _select(self, plan: _Plan, days: Sequence[int]) -> list[_Stored]:
        """The rows of the plan's kind in `days`' hashes of its agents."""
        keys = [details_key(plan.details.shop, agent, day) for agent in plan.agents for day in days]
        hashes = await self.store.details(keys)
        # Decoding a team's month is CPU work: on a thread, so scrapes and batches take turns with it.
        return await asyncio.to_thread(_select, plan.kind, plan.agents, len(days), hashes, plan.slow_over_ms)

    async def _plan(self, query: DetailsQuery, now_ms: int) -> _Plan:
        """The checked request: the list's header, the agents and days to read."""
        kind = parse_kind(query.kind)
        over = check_over(query.over_seconds, kind)
        if kind.shop_level and query.agent is not None:
            raise DetailsRequestError("silent orders belong to the shop, not to an agent: leave agent out")
        policy = self.policies(query.shop)
        today = policy.calendar.day(now_ms)
        days = details_range(policy, query.first, query.last, today)
        await self.reports.require_shop(
            query.shop, policy.calendar.day_start_ms(oldest_kept_day(today, policy.retention_days))
        )
        agents = await self._agents(query, policy, days, kind)
        slow_over = policy.alert_threshold_seconds if over is None else over
        details = Details(
            shop=query.shop,
            agent=query.agent,
            kind=kind.value,
            from_=day_text(days.first),
            to=day_text(days.last),
            as_of=now_ms,
            timezone=policy.calendar.zone.key,
            slow_over_seconds=slow_over if kind is DetailKind.SLOW else None,
            rows=[],
            next_cursor=None,
        )
        return _Plan(details, policy, agents, days, kind, round(slow_over * 1000))

    async def _agents(
        self, query: DetailsQuery, policy: ShopPolicy, days: DayRange, kind: DetailKind
    ) -> list[str]:
        """The agents whose hashes hold the list: the shop level for silent orders, the one asked
        for, or (as the report lists them) those configured and those the index saw since."""
        if kind.shop_level:
            return [SHOP_LEVEL]
        if query.agent is not None:
            return [query.agent]
        configured = self.policies.settings.shops.get(query.shop)
        named = set(configured.agents) if configured else set()
        since_ms = index_since_ms(self.policies.settings, policy.calendar.day_start_ms(days.first))
        seen = set(await self.store.agents_since(query.shop, since_ms)) - {SHOP_LEVEL}
        return sorted(named | seen)

    def _rows(
        self, stored: Sequence[_Stored], query: DetailsQuery, zone: str
    ) -> list[ConsultationRow] | list[SilentOrderRow]:
        names = self.policies(query.shop).agent_names
        return _shown_rows(stored, parse_kind(query.kind), names, query.reveal_buyers, zone)


def _sorted_rows(
    stored: Sequence[_Stored], kind: DetailKind, names: Mapping[str, str], reveal_buyers: bool, zone: str
) -> list[ConsultationRow] | list[SilentOrderRow]:
    """The whole list, in its order, as it shows: one thread's work for a download."""
    return _shown_rows(sorted(stored, key=_Stored.sort_key), kind, names, reveal_buyers, zone)


def _shown_rows(
    stored: Sequence[_Stored], kind: DetailKind, names: Mapping[str, str], reveal_buyers: bool, zone: str
) -> list[ConsultationRow] | list[SilentOrderRow]:
    """The rows as the list shows them. Pure: runs on a thread for a whole list."""
    clock = _Clock(zone)
    show: Callable[[str], str] = str if reveal_buyers else mask_buyer
    if kind.shop_level:
        return [
            _silent_row(s, s.detail, clock, show(s.buyer))
            for s in stored
            if isinstance(s.detail, SilentOrderDetail)
        ]
    return [
        _consultation_row(s, s.detail, clock, show(s.buyer), names.get(s.agent))
        for s in stored
        if isinstance(s.detail, ConsultationDetail)
    ]


def _select(
    kind: DetailKind, agents: Sequence[str], days: int, hashes: Sequence[dict[str, bytes]], slow_over_ms: int
) -> list[_Stored]:
    """The rows of `kind` from each agent's day hashes (`hashes` agent by agent, day by day)."""
    rows: list[_Stored] = []
    for index, fields in enumerate(hashes):
        agent = agents[index // days]
        for field, blob in fields.items():
            if kind.shop_level:
                silent = decode_silent_order(blob)
                rows.append(_Stored(agent, silent.buyer, field, silent.created, silent))
                continue
            detail = decode_consultation(blob)
            if matches(kind, detail, slow_over_ms):
                rows.append(_Stored(agent, field, field, detail.start, detail))
    return rows


def _after(rows: Sequence[_Stored], position: Position) -> int:
    """The index of the first row after `position` (rows sorted by `_Stored.sort_key`)."""
    for index, row in enumerate(rows):
        if row.start < position.start or (row.start == position.start and row.agent > position.agent):
            return index
        if row.start == position.start and row.agent == position.agent:
            if position.taken == WHOLE_GROUP:
                return _group_end(rows, index)
            return min(index + position.taken, _group_end(rows, index))
    return len(rows)


def _same_group(row: _Stored, other: _Stored) -> bool:
    return row.start == other.start and row.agent == other.agent


def _page_end(rows: Sequence[_Stored], start: int, end: int) -> int:
    """Where a page from `start` that would end at `end` (a row follows) ends: before the group
    of ties it would cut, unless that group began the page (a group longer than a page is
    given a page at a time, counted)."""
    if not _same_group(rows[end - 1], rows[end]):
        return end
    first = _group_start(rows, end - 1)
    return first if first > start else end


def _group_start(rows: Sequence[_Stored], index: int) -> int:
    first = index
    while first > 0 and _same_group(rows[first - 1], rows[index]):
        first -= 1
    return first


def _group_end(rows: Sequence[_Stored], index: int) -> int:
    end = index
    while end < len(rows) and _same_group(rows[end], rows[index]):
        end += 1
    return end


def _position(rows: Sequence[_Stored], end: int) -> Position:
    """The position after `rows[:end]`: the last row's whole group given, or a count of it."""
    last = rows[end - 1]
    if end == len(rows) or not _same_group(last, rows[end]):
        return Position(last.start, last.agent, WHOLE_GROUP)
    return Position(last.start, last.agent, end - _group_start(rows, end - 1))


def _order_line(order: OrderRef, clock: _Clock) -> OrderLine:
    return OrderLine(
        order_id=order.order_id,
        amount_yuan=_yuan(order.amount_fen),
        created=clock.iso(order.created),
        created_ms=order.created,
        paid=clock.iso(order.paid),
        paid_ms=order.paid,
        refund_yuan=_yuan(order.refund_fen),
        assisted=order.assisted,
    )


def _consultation_row(
    stored: _Stored, detail: ConsultationDetail, clock: _Clock, buyer: str, name: str | None
) -> ConsultationRow:
    return ConsultationRow(
        buyer=buyer,
        agent=stored.agent,
        agent_name=name,
        start=clock.iso(detail.start) or "",
        start_ms=detail.start,
        first_reply=clock.iso(detail.first_reply),
        first_reply_ms=detail.first_reply,
        wait_seconds=None if detail.response_ms is None else detail.response_ms / 1000,
        rating=detail.rating,
        flags=[word for flag, word in FLAG_WORDS if detail.has(flag)],
        sales_yuan=_yuan(detail.sales_fen),
        refund_yuan=_yuan(detail.refund_fen),
        assisted_sales_yuan=_yuan(detail.assisted_sales_fen),
        orders=[_order_line(order, clock) for order in detail.orders],
    )


def _silent_row(stored: _Stored, detail: SilentOrderDetail, clock: _Clock, buyer: str) -> SilentOrderRow:
    return SilentOrderRow(
        buyer=buyer,
        order_id=stored.field,
        created=clock.iso(detail.created) or "",
        created_ms=detail.created,
        paid=clock.iso(detail.paid),
        paid_ms=detail.paid,
        amount_yuan=_yuan(detail.amount_fen),
    )
