"""`kefu-pulse stats`: the floor data as a table for people, or the API's JSON."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.contract.floor import AgentRow, ShopFloor, WindowValues, floor_json

WIDE_TERMINAL = 120  # below this many columns the table keeps only what a lead looks at first
FULL_TERMINAL = 200  # from this many on it shows v3's satisfaction and status too


class UnknownShop(LookupError):
    pass


def _fmt(value: float | int | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value * 100:.2f}%"
    return str(value)


# How a lead says an agent's status (metrics.md v3).
STATUS_WORDS = {"online": "在线", "away": "挂起", "offline": "离线", "unknown": "未知"}


def hours_minutes(seconds: float) -> str:
    """A time in a status as a lead reads it: `7h05m`, `0h00m`."""
    minutes = int(seconds) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    value: Callable[[AgentRow, WindowValues], str | Text]
    from_width: int  # shown in a terminal at least this wide (0: always)


# Terminal control characters (C0, DEL, C1): an ESC in an id could still write its own escape
# sequences (a hyperlink, a cleared screen), markup or not.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text: str) -> Text:
    """An id or a name exactly as it is, for rich to print: rich reads a `str` as markup and
    emoji codes, so an agent named `s1:[/]` would crash the table and `[link=…]` would plant a
    hidden link. Control characters are shown escaped (`\\x1b`)."""
    return Text(_CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text))


COLUMNS = (
    Column("agent", lambda r, w: plain(r.name or r.agent), 0),
    Column("waiting", lambda r, w: str(r.waiting_buyers), 0),
    Column("oldest s", lambda r, w: _fmt(r.oldest_wait_seconds), 0),
    Column("咨询", lambda r, w: str(w.consultations), WIDE_TERMINAL),
    Column("接待", lambda r, w: str(w.replied_consultations), WIDE_TERMINAL),
    Column("回复率", lambda r, w: _fmt(w.reply_ratio, percent=True), 0),
    Column("首响 s", lambda r, w: _fmt(w.first_response_avg_seconds), 0),
    Column("平均响应 s", lambda r, w: _fmt(w.response_avg_seconds), WIDE_TERMINAL),
    Column("询单", lambda r, w: str(w.inquiries), WIDE_TERMINAL),
    Column("询单转化率", lambda r, w: _fmt(w.consult_pay_ratio, percent=True), 0),
    Column("销售额", lambda r, w: _fmt(w.attributed_sales_yuan), WIDE_TERMINAL),
    Column("退款", lambda r, w: _fmt(w.refunded_sales_yuan), WIDE_TERMINAL),
    Column("协助", lambda r, w: str(w.assisted_paid), WIDE_TERMINAL),
    Column("满意度", lambda r, w: _fmt(w.satisfaction_ratio, percent=True), FULL_TERMINAL),
    Column("差评", lambda r, w: str(w.dissatisfied_consultations), FULL_TERMINAL),
    Column("状态", lambda r, w: STATUS_WORDS.get(r.agent_status, r.agent_status), FULL_TERMINAL),
    Column("在线", lambda r, w: hours_minutes(w.online_seconds), FULL_TERMINAL),
    Column("挂起", lambda r, w: hours_minutes(w.away_seconds), FULL_TERMINAL),
)


def headline_target(targets: Sequence[int]) -> int | None:
    """The replied-within target people look at first: 15 s, else the shop's first one."""
    if 15 in targets:
        return 15
    return targets[0] if targets else None


def _within_column(target: int) -> Column:
    key = str(target)
    return Column(f"{target}秒回复率", lambda r, w: _fmt(w.replied_within_ratio.get(key), percent=True), 0)


def floor_table(floor: ShopFloor, window: str, width: int) -> Table:
    target = headline_target(floor.response_targets_seconds)
    every = list(COLUMNS)
    if target is not None:
        every.insert(every.index(COLUMNS[5]) + 1, _within_column(target))
    columns = [c for c in every if width >= c.from_width]
    title = plain(f"{floor.name or floor.shop} · {window}")
    if not floor.in_service_hours:
        title.append(" · 非服务时间 outside service hours")
    table = Table(title=title)
    for column in columns:
        table.add_column(column.header, no_wrap=True)
    for row in floor.agents:
        table.add_row(*(column.value(row, row.windows[window]) for column in columns))
    return table


def unknown_shop_message(shop: str, known: Sequence[str]) -> str:
    if not known:
        return f"unknown shop {shop!r}: no shop is configured and no events were processed yet"
    listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    return f"unknown shop {shop!r}; known shops: {listed}"


async def run_stats(
    read_floor: Callable[[str], Awaitable[ShopFloor]],
    known_shops: Callable[[], Awaitable[list[str]]],
    shop: str,
    window: str | None,
    as_json: bool,
    watch: bool = False,
) -> None:
    known = await known_shops()
    if shop not in known:
        raise UnknownShop(unknown_shop_message(shop, known))
    floor = await read_floor(shop)
    if as_json:
        print(json.dumps(floor_json(floor), ensure_ascii=False))
        return
    name = window or "today"
    console = Console()
    if not watch:
        console.print(floor_table(floor, name, console.width))
        return
    with Live(floor_table(floor, name, console.width), console=console, auto_refresh=False) as live:
        while True:  # until Ctrl-C, like `top`
            await asyncio.sleep(1.0)
            live.update(floor_table(await read_floor(shop), name, console.width), refresh=True)
