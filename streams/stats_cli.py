"""`kefu-pulse stats`: the floor data as a table for people, or the API's JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.floor_model import ShopFloor, floor_json


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value * 100:.2f}%"
    return str(value)


async def run_stats(
    read_floor: Callable[[str], Awaitable[ShopFloor]], shop: str, window: str | None, as_json: bool
) -> None:
    floor = await read_floor(shop)
    if as_json:
        print(json.dumps(floor_json(floor), ensure_ascii=False))
        return
    windows = [window] if window else ["today"]
    console = Console()
    for name in windows:
        table = Table(title=f"{floor.name or shop} · {name}")
        for column in (
            "agent",
            "waiting",
            "oldest s",
            "咨询",
            "接待",
            "回复率",
            "首响 s",
            "平均响应 s",
            "询单",
            "询单转化率",
            "销售额",
        ):
            table.add_column(column)
        for row in floor.agents:
            w = row.windows[name]
            table.add_row(
                row.name or row.agent,
                str(row.waiting_buyers),
                _fmt(row.oldest_wait_seconds),
                str(w.consultations),
                str(w.replied_consultations),
                _fmt(w.reply_ratio, percent=True),
                _fmt(w.first_response_avg_seconds),
                _fmt(w.response_avg_seconds),
                str(w.inquiries),
                _fmt(w.consult_pay_ratio, percent=True),
                _fmt(w.attributed_sales_yuan),
            )
        console.print(table)
