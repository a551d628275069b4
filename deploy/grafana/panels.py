"""Small constructors for Grafana dashboard JSON (schema 39, Grafana 10.4+), with a row layout.

Only the fields kefu-pulse's dashboards use; Grafana fills in every other default when it
loads a provisioned dashboard, so the committed JSON stays short enough to review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.core.windows import WINDOWS  # the `window` label's values

JSON = dict[str, Any]

GRID_WIDTH = 24
# Panels name the datasource through this variable, so the dashboards also work when
# imported into a Grafana whose Prometheus has another uid.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


def datasource_variable() -> JSON:
    return {
        "name": "datasource",
        "label": "数据源 Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def query_variable(name: str, label: str, query: str) -> JSON:
    """A single-value variable filled from a label_values() query (refreshed on time change)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "current": {},
        "includeAll": False,
        "multi": False,
        "hide": 0,
    }


def window_variable(default: str = "today") -> JSON:
    return {
        "name": "window",
        "label": "窗口 Window",
        "type": "custom",
        "query": ",".join(WINDOWS),
        "options": [{"text": w, "value": w, "selected": w == default} for w in WINDOWS],
        "current": {"text": default, "value": default},
        "includeAll": False,
        "multi": False,
        "hide": 0,
    }


def _targets(queries: list[Query], table: bool) -> list[JSON]:
    out = []
    for index, query in enumerate(queries):
        target: JSON = {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not (query.instant or table),
            "instant": query.instant or table,
        }
        if table:
            target["format"] = "table"
        out.append(target)
    return out


def _panel(kind: str, title: str, queries: list[Query], unit: str, description: str, table: bool) -> JSON:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets(queries, table),
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
    }


def timeseries(title: str, queries: list[Query], unit: str = "short", description: str = "") -> JSON:
    panel = _panel("timeseries", title, queries, unit, description, table=False)
    panel["options"] = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(title: str, queries: list[Query], unit: str = "short", description: str = "") -> JSON:
    panel = _panel(
        "stat", title, [Query(q.expr, q.legend, instant=True) for q in queries], unit, description, False
    )
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "none",
        "textMode": "value_and_name",
    }
    return panel


def bar_gauge(title: str, queries: list[Query], unit: str = "short", description: str = "") -> JSON:
    panel = _panel("bargauge", title, queries, unit, description, table=False)
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
    }
    return panel


def table(title: str, columns: list[tuple[Query, str, str]], description: str = "") -> JSON:
    """One row per agent: each (query, column title, unit) becomes a column, merged on `agent`."""
    panel = _panel("table", title, [column[0] for column in columns], "short", description, table=True)
    overrides = []
    for index, (_, column_title, unit) in enumerate(columns):
        ref = chr(ord("A") + index)
        overrides.append(
            {
                "matcher": {"id": "byName", "options": f"Value #{ref}"},
                "properties": [
                    {"id": "displayName", "value": column_title},
                    {"id": "unit", "value": unit},
                ],
            }
        )
    panel["fieldConfig"]["overrides"] = overrides
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {"excludeByName": {"Time": True}, "renameByName": {"agent": "客服 Agent"}},
        },
    ]
    panel["options"] = {"showHeader": True, "sortBy": [{"displayName": "客服 Agent", "desc": False}]}
    return panel


@dataclass
class Layout:
    """Places panels left to right in rows of a fixed height; `row()` starts a new one."""

    panels: list[JSON] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def add(self, panel: JSON, width: int, height: int = 8) -> None:
        if self._x + width > GRID_WIDTH:
            self.row()
        panel = {
            "id": len(self.panels) + 1,
            **panel,
            "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y},
        }
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)

    def row(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0


def dashboard(uid: str, title: str, tags: list[str], variables: list[JSON], layout: Layout) -> JSON:
    return {
        "uid": uid,
        "title": title,
        "tags": ["kefu-pulse", *tags],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["kefu-pulse"], "title": "kefu-pulse", "asDropdown": True}],
        "panels": layout.panels,
    }
