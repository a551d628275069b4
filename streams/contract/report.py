"""The date-range report as typed values: the output contract of interfaces.md
(`kefu-pulse report`, `/api/v1/report`, `/report`).

As `contract/floor.py` does for the floor, this types what goes out. The values are built from
the day buckets (agents/exposure/report.py) and turned into JSON, CSV, XLSX, a table or a page
only at the edge. `metrics` reuses the floor's window values, so a report's field names are
the floor's.
"""

from __future__ import annotations

from typing import Any

import msgspec

from config.errors import KefuError
from streams.contract.floor import TeamWindowValues, WindowValues

TEAM = "团队 team"  # the team row's label in tables and spreadsheets


class ReportRequestError(KefuError, ValueError):
    """A report that cannot be given (a bad date or range, an unknown shop), in one sentence:
    the CLI's message and exit 1, the API's 400 `{"error": ...}`."""


class ReportRow(msgspec.Struct, kw_only=True):
    agent: str
    name: str | None
    metrics: WindowValues


class ReportTotals(msgspec.Struct, kw_only=True):
    """The team row: the agents' sums, ratios from those sums, and the shop's orders."""

    metrics: TeamWindowValues
    # Replied consultations by first response (service clock), keyed by the bucket's upper
    # bound in seconds as the Prometheus histogram names them ("1" ... "300", "+Inf").
    first_response_buckets: dict[str, int]


class ReportDay(msgspec.Struct, kw_only=True):
    day: str  # YYYY-MM-DD, the shop's business day
    agents: list[ReportRow]
    totals: ReportTotals


class Report(msgspec.Struct, kw_only=True):
    shop: str
    name: str | None
    from_: str = msgspec.field(name="from")
    to: str
    as_of: int
    timezone: str
    response_targets_seconds: list[int]  # the keys of every replied_within_ratio
    agents: list[ReportRow]  # by agent id
    totals: ReportTotals
    days: list[ReportDay]  # each day of the range, oldest first


class PreviousPeriod(msgspec.Struct, kw_only=True):
    """The period a report page compares with (agents/core/report_range.py decides which), and
    the team's values over it."""

    from_: str = msgspec.field(name="from")
    to: str
    team: TeamWindowValues


def report_json(report: Report, *, by_day: bool) -> dict[str, Any]:
    """The report as the API's JSON object; `days` only when asked for (`by=day`)."""
    body = msgspec.to_builtins(report)
    if not by_day:
        del body["days"]
    return body
