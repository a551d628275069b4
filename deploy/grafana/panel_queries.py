"""Every PromQL expression the committed dashboards run, and a way to run them outside Grafana.

Read from the JSON files Grafana provisions (not from build.py), so what is tested is what
is shipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).with_name("dashboards")

# What Grafana's built-in interval variables become outside Grafana. One minute is Grafana's
# own $__rate_interval for a 15 s scrape interval (four scrapes); a range panel's $__range is
# the dashboard's time range.
BUILT_INS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # panels folded inside a collapsed row


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL expr) for every target of every panel."""
    out = []
    for path in dashboard_files():
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((board["title"], panel["title"], target["expr"]))
    return out


def substitute(expr: str, shop: str, agent: str, window: str) -> str:
    """Replace Grafana variables ($shop, ${shop}, [[shop]], $__rate_interval, ...) with values.

    An unknown variable raises KeyError instead of reaching Prometheus as a literal `$name`.
    """
    values = {"shop": shop, "agent": agent, "window": window, **BUILT_INS}

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)
