"""Comparisons of what a read path showed with what was expected, as `Finding`s.

Every finding names where it was seen: the seed, the simulated moment (UTC and the shop's
local time), why that moment was chosen, the shop, agent, window and field, expected and got.
Values are computed here from the summed counters as metrics.md defines them, not with the
production helpers; floats are compared to the precision the floor rounds them to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.reference import FIELDS

Values = dict[str, object]
COUNTERS = FIELDS  # the raw vector's names (c, r, fs, ...)
TEAM_ONLY = ("orders", "silent_orders", "silent_share", "silent_sales_yuan")
COUNTS = (
    "consultations",
    "replied_consultations",
    "inquiries",
    "ordered_inquiries",
    "paid_inquiries",
    "assisted_paid",
)
TEAM_COUNTS = ("orders", "silent_orders")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _average_seconds(total_ms: int, count: int) -> float | None:
    return total_ms / count / 1000 if count else None


def values(v: list[int], targets: tuple[int, ...]) -> Values:
    """One window's metrics (metrics.md) from its summed counters `v` (FIELDS order)."""
    n = dict(zip(FIELDS, v, strict=False))
    return {
        "consultations": n["c"],
        "replied_consultations": n["r"],
        "inquiries": n["i"],
        "ordered_inquiries": n["o"],
        "paid_inquiries": n["p"],
        "reply_ratio": _ratio(n["r"], n["c"]),
        "first_response_avg_seconds": _average_seconds(n["fs"], n["r"]),
        "response_avg_seconds": _average_seconds(n["ws"], n["wn"]),
        "consult_order_ratio": _ratio(n["o"], n["i"]),
        "consult_pay_ratio": _ratio(n["p"], n["i"]),
        "order_pay_ratio": _ratio(n["p"], n["o"]),
        "attributed_sales_yuan": n["y"] / 100,
        "average_order_value_yuan": n["y"] / n["p"] / 100 if n["p"] else None,
        "replied_within_ratio": {str(t): _ratio(n[f"w{slot}"], n["c"]) for slot, t in enumerate(targets)},
        "refunded_sales_yuan": n["rf"] / 100,
        "assisted_paid": n["a"],
        "assisted_sales_yuan": n["ay"] / 100,
        "rated_consultations": n["rt"],
        "rating_ratio": _ratio(n["rt"], n["r"]),
        "satisfaction_ratio": _ratio(n["st"], n["rt"]),
        "dissatisfied_consultations": n["dt"],
        "average_rating_score": n["sc"] / n["rt"] if n["rt"] else None,
        # The simulation sends no login feed (agent status has tests of its own): no time online.
        "online_seconds": 0.0,
        "away_seconds": 0.0,
        "logins": 0,
    }


def team_values(agents: list[int], shop: list[int], targets: tuple[int, ...]) -> Values:
    n = dict(zip(FIELDS, shop, strict=False))
    return values(agents, targets) | {
        "orders": n["n"],
        "silent_orders": n["sn"],
        "silent_share": _ratio(n["sn"], n["n"]),
        "silent_sales_yuan": n["sy"] / 100,
    }


def tolerance(name: str) -> float:
    """The floor rounds averages to a millisecond (scores to a thousandth) and money to a fen."""
    if name.endswith(("seconds", "_sum", "last_hour", "hour_before", "score")):
        return 0.0006
    if name.endswith("yuan"):
        return 0.0051
    return 1e-9


def same(expected: object, got: object, name: str) -> bool:
    if isinstance(expected, float) or isinstance(got, float):
        if expected is None or got is None:
            return False
        return abs(float(expected) - float(got)) <= tolerance(name)  # type: ignore[arg-type]
    return expected == got


@dataclass(frozen=True)
class Where:
    seed: int
    moment: int
    why: str
    shop: str = ""
    zone: str = "UTC"

    def text(self) -> str:
        utc = datetime.fromtimestamp(self.moment / 1000, UTC).isoformat(timespec="milliseconds")
        local = datetime.fromtimestamp(self.moment / 1000, ZoneInfo(self.zone)).isoformat(
            timespec="milliseconds"
        )
        shop = f" shop={self.shop} ({local} {self.zone})" if self.shop else ""
        return f"seed={self.seed} moment={self.moment} ({utc}, {self.why}){shop}"


@dataclass(frozen=True)
class Finding:
    path: str  # floor, trend, report, gauges, alerts, events, or a property
    where: Where
    agent: str
    window: str
    field: str
    expected: object
    got: object

    @property
    def signature(self) -> tuple[str, str, str]:
        """A report's ranges and days, and a trend's points, group as one window each."""
        window = self.window.split(" ")[0]
        return (self.path, "range" if ".." in window else window, self.field)

    def text(self) -> str:
        return (
            f"[{self.path}] {self.where.text()} agent={self.agent!r} window={self.window} "
            f"field={self.field}: expected {self.expected!r}, got {self.got!r}"
        )


@dataclass
class Findings:
    """Differences grouped by (read path, window, field): the first of each, and how many."""

    first: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.first.setdefault(finding.signature, finding)
        self.counts[finding.signature] = self.counts.get(finding.signature, 0) + 1

    def extend(self, found: Iterable[Finding]) -> None:
        for finding in found:
            self.add(finding)

    def __bool__(self) -> bool:
        return bool(self.first)

    def report(self) -> str:
        lines = [f"{len(self.first)} kinds of difference, {sum(self.counts.values())} in all:"]
        for signature, finding in sorted(self.first.items()):
            lines.append(f"  x{self.counts[signature]} {finding.text()}")
        return "\n".join(lines)


def compare_values(
    path: str,
    where: Where,
    agent: str,
    window: str,
    expected: Mapping[str, object],
    got: Mapping[str, object],
) -> list[Finding]:
    out: list[Finding] = []
    for name, wanted in expected.items():
        found = got.get(name, "(absent)")
        if isinstance(wanted, dict) and isinstance(found, dict):
            if set(wanted) != set(found):
                out.append(Finding(path, where, agent, window, f"{name} keys", sorted(wanted), sorted(found)))
                continue
            for key, inner in wanted.items():
                if not same(inner, found[key], name):
                    out.append(Finding(path, where, agent, window, f"{name}[{key}]", inner, found[key]))
        elif not same(wanted, found, name):
            out.append(Finding(path, where, agent, window, name, wanted, found))
    return out


def compare_counters(
    path: str, where: Where, agent: str, window: str, expected: list[int], got: list[int]
) -> list[Finding]:
    """The raw summed counters, field by field (FIELDS names)."""
    return [
        Finding(path, where, agent, window, f"sums.{name}", e, g)
        for name, e, g in zip(COUNTERS, expected, got, strict=False)
        if e != g
    ]
