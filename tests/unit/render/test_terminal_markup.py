"""Ids and names from events and the configuration reach the terminal as text, never as rich
markup: `stats` and `report --format table` print them literally, whatever they hold."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from streams.render.floor_table import floor_table
from streams.render.output import table_text
from streams.render.report_table import report_table
from tests.builders import agent_row, shop_floor
from tests.report_samples import sample_report

HOSTILE = ["s1:[/]", "[link=http://x]a[/link]", "[bold]", "s1:smile:", "e\x1b]8;;http://y\x1b\\f"]
# What a terminal would act on: a hyperlink (OSC 8) or any escape sequence from an id.
HYPERLINK = "\x1b]8;"


def rendered(tables: list[Table]) -> str:
    """As an operator's colour terminal receives it, escape sequences included."""
    console = Console(file=io.StringIO(), width=220, force_terminal=True, color_system="truecolor")
    for table in tables:
        console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def assert_literal(out: str, text: str) -> None:
    shown = text.replace("\x1b", "\\x1b")  # control characters are shown, not sent
    assert shown in out, (text, out)
    assert HYPERLINK not in out and "http://y\x1b" not in out


@pytest.mark.parametrize("name", HOSTILE)
def test_stats_prints_agent_names_ids_and_the_shop_literally(name: str) -> None:
    named = agent_row("s1:a")
    named.name = name
    floor = shop_floor(name, 15, [named, agent_row(name)])
    floor.name = name
    out = rendered([floor_table(floor, "5m", 220)])
    assert_literal(out, name)
    assert out.count(name.replace("\x1b", "\\x1b")) == 3  # the title, the name and the id


@pytest.mark.parametrize("name", HOSTILE)
def test_report_tables_print_agent_names_and_the_shop_literally(name: str) -> None:
    report = sample_report(days=2, agents=3)
    report.name = name
    report.agents[0].name = name
    report.days[0].agents[1].name = name
    out = rendered(report_table(report, by_day=True, width=220))
    assert_literal(out, name)
    assert out.count(name.replace("\x1b", "\\x1b")) == 3
    text = table_text(report, by_day=True, width=220, color=True)  # `--format table --output`
    assert_literal(text, name)
