"""`kefu-pulse stats`: the floor data as a table for people (the command: streams/commands/stats.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from streams.contract.floor import AgentRow, ShopFloor, WindowValues
from streams.render.formats import (
    FULL_TERMINAL,
    METRICS,
    STATS_STYLE,
    Metric,
    headline_target,
    inserted_after,
    show,
    within,
)
from streams.render.formats import WIDE_TERMINAL as WIDE_TERMINAL  # `stats`' own rule, said here too

# How a lead says an agent's status (metrics.md v3).
STATUS_WORDS = {"online": "在线", "away": "挂起", "offline": "离线", "unknown": "未知"}


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


def _metric_column(metric: Metric, header: str) -> Column:
    return Column(header, lambda r, w: show(metric.read(w), metric.kind, STATS_STYLE), metric.stats_from)


# Who the row is and what waits now: the floor's own, not a window's number.
ROW_COLUMNS = (
    Column("agent", lambda r, w: plain(r.name or r.agent), 0),
    Column("waiting", lambda r, w: show(r.waiting_buyers, "count", STATS_STYLE), 0),
    Column("oldest s", lambda r, w: show(r.oldest_wait_seconds, "seconds", STATS_STYLE), 0),
)
STATUS_COLUMN = Column("状态", lambda r, w: STATUS_WORDS.get(r.agent_status, r.agent_status), FULL_TERMINAL)


def stats_columns(targets: Sequence[int]) -> list[Column]:
    """Every column `stats` can show, in order: the headline replied-within target right after
    the reply ratio, the status before the time in each status."""
    headline = headline_target(targets)
    extra = [] if headline is None else [within(headline)]
    metrics = inserted_after("reply_ratio", [m for m in METRICS if m.short], extra)
    columns = [_metric_column(m, m.short) for m in metrics if m.short]
    at = next(i for i, m in enumerate(metrics) if m.key == "online_seconds")
    return [*ROW_COLUMNS, *columns[:at], STATUS_COLUMN, *columns[at:]]


def floor_table(floor: ShopFloor, window: str, width: int) -> Table:
    columns = [c for c in stats_columns(floor.response_targets_seconds) if width >= c.from_width]
    title = plain(f"{floor.name or floor.shop} · {window}")
    if not floor.in_service_hours:
        title.append(" · 非服务时间 outside service hours")
    table = Table(title=title)
    for column in columns:
        table.add_column(column.header, no_wrap=True)
    for row in floor.agents:
        table.add_row(*(column.value(row, row.windows[window]) for column in columns))
    return table
