"""Each read path against the expectation (expected.py), and the properties that need none.

`ExpectedFloor` is what the floor must show at a moment; the gauges and the alerts follow
from it as metrics.md (and the `max_agents_per_shop` cap, for the gauges only) say.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.core.alerts import FIRST_RESPONSE, WAITING, AlertEvent
from agents.core.trend import direction
from agents.exposure.collector import OVERFLOW_AGENT, SHOP_GAUGES, WINDOW_GAUGES
from agents.exposure.floor import mask_buyer
from streams.contract.floor import ShopFloor, ShopTrend
from streams.contract.report import Report, ReportRow, ReportTotals
from tests.reference import FIELDS, HISTOGRAM_BOUNDS_S, service_ms
from tests.whole_path.compare import (
    COUNTS,
    TEAM_COUNTS,
    Finding,
    Where,
    compare_counters,
    compare_values,
    same,
    team_values,
    values,
)
from tests.whole_path.expected import DAY_WIDTH, SHOP_LEVEL, ShopModel, Vector, add_into, day_text
from tests.whole_path.reads import Sample, as_dict
from tests.whole_path.shops import ALERT_THRESHOLD_S, MAX_AGENTS_PER_SHOP, ShopPlan

WINDOWS = ("5m", "1h", "today", "28d")
ROLLING_S = {"5m": 300, "1h": 3600}
WIDTH = len(FIELDS)
FS, R, C, INQ, PAID = (FIELDS.index(n) for n in ("fs", "r", "c", "i", "p"))


def _zero() -> Vector:
    return [0] * DAY_WIDTH


@dataclass
class ExpectedRow:
    windows: dict[str, Vector] = field(default_factory=lambda: {w: _zero() for w in WINDOWS})
    waits: list[tuple[int, str]] = field(default_factory=list)  # (start, buyer), oldest first
    oldest_seconds: float = 0.0


@dataclass
class ExpectedFloor:
    plan: ShopPlan
    now_ms: int
    in_service: bool
    rows: dict[str, ExpectedRow]
    shop_level: dict[str, Vector]

    def row(self, agent: str) -> ExpectedRow:
        return self.rows.get(agent) or ExpectedRow()

    def alert(self, agent: str) -> bool:
        return self.in_service and self.row(agent).oldest_seconds > ALERT_THRESHOLD_S


def is_open(plan: ShopPlan, now_ms: int) -> bool:
    """Inside service hours at `now_ms`: its next millisecond counts on the service clock."""
    return service_ms(now_ms, now_ms + 1, plan.rules) == 1


def expected_floor(model: ShopModel, now_ms: int) -> ExpectedFloor:
    model.refresh()
    today = model.today(now_ms)
    now_s = now_ms // 1000
    rows: dict[str, ExpectedRow] = {}
    shop_level = {w: _zero() for w in WINDOWS}
    for (agent, start), vector in model.by_start.items():
        day = model.day_of(start)
        inside = {
            "5m": start >= (now_s - 299) * 1000,
            "1h": start >= (now_s - 3599) * 1000,
            "today": day == today,
            "28d": today - 27 <= day <= today,
        }
        target = shop_level if agent == SHOP_LEVEL else rows.setdefault(agent, ExpectedRow()).windows
        for window, yes in inside.items():
            if yes and start <= now_ms:
                add_into(target[window], vector)
    for agent, waits in model.waits(now_ms).items():
        row = rows.setdefault(agent, ExpectedRow())
        row.waits = waits
        row.oldest_seconds = round(service_ms(waits[0][0], now_ms, model.rules) / 1000, 3)
    return ExpectedFloor(model.plan, now_ms, is_open(model.plan, now_ms), rows, shop_level)


def _nonzero(row: ExpectedRow) -> bool:
    return bool(row.waits) or any(any(v) for v in row.windows.values())


def check_floor(where: Where, expected: ExpectedFloor, floor: ShopFloor) -> list[Finding]:
    plan, out = expected.plan, []
    targets = plan.rules.targets
    shown = {row.agent: row for row in floor.agents}
    for agent, row in expected.rows.items():
        if _nonzero(row) and agent not in shown:
            out.append(Finding("floor", where, agent, "-", "row", "a row", "no row"))
    top = {
        "in_service_hours": expected.in_service,
        "alert_threshold_seconds": ALERT_THRESHOLD_S,
        "response_targets_seconds": list(targets),
        "as_of": expected.now_ms,
    }
    out += compare_values("floor", where, "", "-", top, as_dict(floor))
    order = sorted(floor.agents, key=lambda r: (-r.oldest_wait_seconds, r.agent))
    if [r.agent for r in order] != [r.agent for r in floor.agents]:
        out.append(Finding("floor", where, "", "-", "row order", [r.agent for r in order], "another"))
    team = {w: _zero() for w in WINDOWS}
    for agent, got in shown.items():
        row = expected.row(agent)
        oldest = row.waits[0] if row.waits else None
        fields = {
            "name": plan.agent_name(agent) if agent in plan.everyone else None,
            "group": plan.agent_group(agent),
            "waiting_buyers": len(row.waits),
            "oldest_wait_seconds": row.oldest_seconds,
            "alert": expected.alert(agent),
            "oldest_waiting_buyer": mask_buyer(oldest[1]) if oldest else None,
        }
        out += compare_values("floor", where, agent, "-", fields, as_dict(got))
        for window in WINDOWS:
            vector = row.windows[window]
            add_into(team[window], vector)
            sums = got.sums[window] if got.sums else []
            out += compare_counters("floor", where, agent, window, vector[:WIDTH], sums)
            out += compare_values(
                "floor", where, agent, window, values(vector, targets), as_dict(got.windows[window])
            )
    totals = {
        "waiting_buyers": sum(len(r.waits) for r in expected.rows.values()),
        "oldest_wait_seconds": max((r.oldest_seconds for r in expected.rows.values()), default=0.0),
    }
    out += compare_values("floor", where, "(team)", "-", totals, as_dict(floor.totals))
    for window in WINDOWS:
        wanted = team_values(team[window], expected.shop_level[window], targets)
        out += compare_values("floor", where, "(team)", window, wanted, as_dict(floor.totals.windows[window]))
    return out


def check_trend(
    where: Where, model: ShopModel, floor: ShopFloor, trend: ShopTrend, samples: dict[int, int]
) -> list[Finding]:
    """The team's 60 points, each agent's hour against the one before, the waiting samples."""
    now_ms = trend.as_of
    now_s = now_ms // 1000
    points = [_zero() for _ in range(60)]
    agents = {row.agent for row in floor.agents}
    last_hour: dict[str, Vector] = {a: _zero() for a in agents}
    hour_before: dict[str, Vector] = {a: _zero() for a in agents}
    first_before = ((now_s - 7200) // 60 + 1) * 60  # whole minutes inside (now - 2 h, now - 1 h]
    last_before = (now_s - 3659) // 60 * 60 + 59
    for (agent, start), vector in model.by_start.items():
        start_s = start // 1000
        if agent not in agents or start > now_ms:
            continue
        if now_s - 3599 <= start_s <= now_s:
            add_into(points[59 - (now_s - start_s) // 60], vector)
            add_into(last_hour[agent], vector)
        elif first_before <= start_s <= last_before:
            add_into(hour_before[agent], vector)
    minute = now_ms // 60_000
    wanted = {
        "consultations": [p[C] for p in points],
        "first_response_avg_seconds": [p[FS] / p[R] / 1000 if p[R] else None for p in points],
        "consult_pay_ratio": [p[PAID] / p[INQ] if p[INQ] else None for p in points],
        "waiting_buyers": [samples.get(minute - 59 + i) for i in range(60)],
    }
    out: list[Finding] = []
    got = as_dict(trend.points)
    for name, series in wanted.items():
        for index, (e, g) in enumerate(zip(series, got[name], strict=True)):  # type: ignore[call-overload]
            out += compare_values("trend", where, "(team)", f"point {index}", {name: e}, {name: g})
    for agent in sorted(agents):
        now_avg, before_avg = (_average(v) for v in (last_hour[agent], hour_before[agent]))
        rounded = [round(v, 3) if v is not None else None for v in (now_avg, before_avg)]
        fields = {"last_hour": now_avg, "hour_before": before_avg, "direction": direction(*rounded)}
        found = trend.agents.get(agent)
        out += compare_values("trend", where, agent, "1h", fields, as_dict(found) if found else {})
    return out


def _average(vector: Vector) -> float | None:
    return vector[FS] / vector[R] / 1000 if vector[R] else None


BUCKET_LABELS = (*(str(b) for b in HISTOGRAM_BOUNDS_S), "+Inf")


def check_report(where: Where, model: ShopModel, report: Report, first: int, last: int) -> list[Finding]:
    plan, targets, out = model.plan, model.plan.rules.targets, []
    configured = set(plan.everyone if plan.configured else plan.aftersale)
    by_day = {day: model.day(day) for day in range(first, last + 1)}
    total: dict[str, Vector] = {}
    for vectors in by_day.values():
        for agent, vector in vectors.items():
            add_into(total.setdefault(agent, _zero()), vector)
    counted = {a for a, v in total.items() if any(v) and a != SHOP_LEVEL}
    agents = sorted(configured | counted)
    window = f"{day_text(first)}..{day_text(last)}"
    top = {"from": day_text(first), "to": day_text(last), "timezone": plan.rules.zone}
    out += compare_values(
        "report", where, "", window, top, {"from": report.from_, "to": report.to, "timezone": report.timezone}
    )
    out += _report_rows("report", where, window, agents, total, report.agents, targets)
    out += _report_team(where, window, agents, total, report.totals, targets)
    if [d.day for d in report.days] != [day_text(d) for d in range(first, last + 1)]:
        out.append(
            Finding("report", where, "", window, "days", (day_text(first), day_text(last)), len(report.days))
        )
        return out
    for vectors, shown in zip(by_day.values(), report.days, strict=True):
        out += _report_rows("report", where, f"day {shown.day}", agents, vectors, shown.agents, targets)
        out += _report_team(where, f"day {shown.day}", agents, vectors, shown.totals, targets)
    return out


def _report_rows(
    path: str,
    where: Where,
    window: str,
    agents: list[str],
    vectors: dict[str, Vector],
    rows: Iterable[ReportRow],
    targets: tuple[int, ...],
) -> list[Finding]:
    shown = {row.agent: row for row in rows}
    out = []
    if sorted(shown) != agents:
        out.append(Finding(path, where, "", window, "agents", agents, sorted(shown)))
    for agent in agents:
        if agent in shown:
            wanted = values(vectors.get(agent, _zero()), targets)
            out += compare_values(path, where, agent, window, wanted, as_dict(shown[agent].metrics))
    return out


def _report_team(
    where: Where,
    window: str,
    agents: list[str],
    vectors: dict[str, Vector],
    totals: ReportTotals,
    targets: tuple[int, ...],
) -> list[Finding]:
    team = _zero()
    for agent in agents:
        add_into(team, vectors.get(agent, _zero()))
    shop = vectors.get(SHOP_LEVEL, _zero())
    got = as_dict(totals.metrics)
    out = compare_values("report", where, "(team)", window, team_values(team, shop, targets), got)
    buckets = dict(zip(BUCKET_LABELS, team[WIDTH:], strict=True))
    wanted: dict[str, object] = {"first_response_buckets": buckets}
    out += compare_values("report", where, "(team)", window, wanted, as_dict(totals))
    return out


def expected_gauges(
    expected: ExpectedFloor, floor_agents: list[str], histograms: dict[str, Vector]
) -> dict[Sample, float]:
    """The floor's samples, agents past the cap folded into `_other` as its sums."""
    plan, shop = expected.plan, expected.plan.shop
    targets = plan.rules.targets
    preferred = set(plan.everyone if plan.configured else plan.aftersale)
    out: dict[Sample, float] = {}

    def put(name: str, value: float | None, **labels: str) -> None:
        if value is not None:
            out[(name, frozenset(labels.items()))] = float(value)

    put("kefu_alert_threshold_seconds", ALERT_THRESHOLD_S, shop=shop)
    put("kefu_service_open", 1.0 if expected.in_service else 0.0, shop=shop)
    ranked = sorted(floor_agents, key=lambda a: (a not in preferred, a))
    kept = ranked if len(ranked) <= MAX_AGENTS_PER_SHOP else ranked[: MAX_AGENTS_PER_SHOP - 1]
    folded = [a for a in ranked if a not in kept]
    series: dict[str, tuple[int, float, dict[str, Vector], Vector]] = {}
    for agent in kept:
        row = expected.row(agent)
        series[agent] = (len(row.waits), row.oldest_seconds, row.windows, histograms.get(agent, _zero()))
    if folded:
        windows = {w: _zero() for w in WINDOWS}
        histogram = _zero()
        for agent in folded:
            for w in WINDOWS:
                add_into(windows[w], expected.row(agent).windows[w])
            add_into(histogram, histograms.get(agent, _zero()))
        waiting = sum(len(expected.row(a).waits) for a in folded)
        oldest = max(expected.row(a).oldest_seconds for a in folded)
        series[OVERFLOW_AGENT] = (waiting, oldest, windows, histogram)
    for agent in kept:  # no login feed in the simulation: every agent's status is `unknown`
        for status in ("online", "away", "offline", "unknown"):
            put(
                "kefu_agent_status",
                1.0 if status == "unknown" else 0.0,
                shop=shop,
                agent=agent,
                status=status,
            )
    for agent, (waiting, oldest, windows, histogram) in series.items():
        put("kefu_waiting_buyers", waiting, shop=shop, agent=agent)
        put("kefu_oldest_wait_seconds", oldest, shop=shop, agent=agent)
        for window, vector in windows.items():
            shown = values(vector, targets)
            for key, name, _ in WINDOW_GAUGES:
                put(name, shown[key], shop=shop, agent=agent, window=window)  # type: ignore[arg-type]
            for target, ratio in shown["replied_within_ratio"].items():  # type: ignore[attr-defined]
                put("kefu_replied_within_ratio", ratio, shop=shop, agent=agent, window=window, within=target)
        if any(histogram[WIDTH:]):
            cumulative = 0
            for bound, count in zip(BUCKET_LABELS, histogram[WIDTH:], strict=True):
                cumulative += count
                le = "+Inf" if bound == "+Inf" else str(float(bound))
                put("kefu_first_response_seconds_bucket", cumulative, shop=shop, agent=agent, le=le)
            put("kefu_first_response_seconds_count", cumulative, shop=shop, agent=agent)
            put("kefu_first_response_seconds_sum", histogram[FS] / 1000, shop=shop, agent=agent)
    for window in WINDOWS:  # the shop gauges come from the shop level alone
        shown = team_values(_zero(), expected.shop_level[window], targets)
        for key, name, _ in SHOP_GAUGES:
            put(name, shown[key], shop=shop, window=window)  # type: ignore[arg-type]
    return out


def check_gauges(
    where: Where, shop: str, expected: dict[Sample, float], got: dict[Sample, float]
) -> list[Finding]:
    mine = {key: value for key, value in got.items() if dict(key[1]).get("shop") == shop}
    out = []
    for key in sorted(expected.keys() | mine.keys(), key=str):
        name, labels = key
        named = dict(labels)
        agent, window = named.pop("agent", ""), named.pop("window", "-")
        named.pop("shop", None)
        detail = ",".join(f"{k}={v}" for k, v in sorted(named.items()))
        field_name = f"{name}{{{detail}}}" if detail else name
        e, g = expected.get(key), mine.get(key)
        if (
            e is None
            or g is None
            or abs(e - g)
            > (0.0006 if "seconds" in name or "score" in name else 0.0051 if "yuan" in name else 1e-9)
        ):
            out.append(Finding("gauges", where, agent, window, field_name, e, g))
    return out


AlertKey = tuple[str, str, str]


@dataclass
class AlertBook:
    """The alert episodes metrics.md asks for, per agent: one `firing`, later one `resolved`."""

    firing: dict[AlertKey, int] = field(default_factory=dict)

    def round(
        self, floors: Iterable[tuple[ExpectedFloor, list[str]]], now_ms: int
    ) -> list[tuple[object, ...]]:
        conditions: dict[AlertKey, tuple[bool, float]] = {}
        for expected, agents in floors:
            shop = expected.plan.shop
            for agent in agents:
                row = expected.row(agent)
                wait = row.oldest_seconds
                conditions[(WAITING, shop, agent)] = (expected.in_service and wait > ALERT_THRESHOLD_S, wait)
                first = _average(row.windows["5m"])
                value = round(first, 3) if first is not None else 0.0
                conditions[(FIRST_RESPONSE, shop, agent)] = (
                    expected.in_service and value > ALERT_THRESHOLD_S,
                    value,
                )
        events = []
        for key, (now_firing, value) in sorted(conditions.items()):
            if now_firing and key not in self.firing:
                self.firing[key] = now_ms
                events.append(_event(key, "firing", value, now_ms, now_ms))
            elif not now_firing and key in self.firing:
                events.append(_event(key, "resolved", value, now_ms, self.firing.pop(key)))
        for key in sorted(self.firing.keys() - conditions.keys()):
            events.append(_event(key, "resolved", 0.0, now_ms, self.firing.pop(key)))
        return events


def _event(key: AlertKey, state: str, value: float, now_ms: int, started: int) -> tuple[object, ...]:
    alert, shop, agent = key
    return (
        alert,
        state,
        shop,
        agent,
        round(value, 3),
        ALERT_THRESHOLD_S,
        now_ms,
        f"{alert}/{shop}/{agent}/{started}",
    )


def alert_tuple(event: AlertEvent) -> tuple[object, ...]:
    threshold = event.threshold or ALERT_THRESHOLD_S  # an agent that vanished resolves with 0
    return (
        event.alert,
        event.state,
        event.shop_id,
        event.agent_id,
        round(event.value, 3),
        threshold,
        event.ts,
        event.alert_id,
    )


def check_alerts(where: Where, expected: list[tuple[object, ...]], got: list[AlertEvent]) -> list[Finding]:
    shown = [alert_tuple(e) for e in got]
    out = []
    for event in expected:
        if event not in shown:
            out.append(Finding("alerts", where, str(event[3]), "-", f"{event[0]} {event[1]}", event, None))
    for event in shown:
        if event not in expected:
            out.append(Finding("alerts", where, str(event[3]), "-", f"{event[0]} {event[1]}", None, event))
    return out


# Properties that need no reference.


def cohort_ranges(model: ShopModel, now_ms: int) -> dict[str, tuple[int, int]]:
    """Each window's cohort starts, [first ms, now]."""
    now_s, today = now_ms // 1000, model.today(now_ms)
    return {
        "5m": ((now_s - 299) * 1000, now_ms),
        "1h": ((now_s - 3599) * 1000, now_ms),
        "today": (model.midnight(today), now_ms),
        "28d": (model.midnight(today - 27), now_ms),
    }


def check_equal_windows(
    where: Where, model: ShopModel, moments: list[int], floor: ShopFloor
) -> list[Finding]:
    """Two windows that hold the same consultations (no event of the shop between their starts)
    show the same counters, for every agent."""
    ranges = cohort_ranges(model, floor.as_of)
    out = []
    for a, b in (("5m", "1h"), ("1h", "today"), ("today", "28d"), ("5m", "today")):
        low, high = sorted((ranges[a][0], ranges[b][0]))
        between = bisect.bisect_left(moments, high) - bisect.bisect_left(moments, low)
        if between:
            continue
        for row in floor.agents:
            if row.sums and row.sums[a] != row.sums[b]:
                out.append(
                    Finding(
                        "property: same consultations, same values",
                        where,
                        row.agent,
                        f"{a}={b}",
                        "sums",
                        row.sums[a],
                        row.sums[b],
                    )
                )
    return out


def check_trend_adds_up(where: Where, floor: ShopFloor, trend: ShopTrend) -> list[Finding]:
    out = []
    total = sum(trend.points.consultations)
    hour = floor.totals.windows["1h"].consultations
    if total != hour:
        out.append(
            Finding("property: the trend adds up to 1h", where, "(team)", "1h", "consultations", hour, total)
        )
    for row in floor.agents:
        agent = trend.agents.get(row.agent)
        got = agent.last_hour if agent else None
        wanted = row.windows["1h"].first_response_avg_seconds
        if not same(wanted, got, "last_hour"):
            out.append(
                Finding("property: the trend adds up to 1h", where, row.agent, "1h", "last_hour", wanted, got)
            )
    return out


def check_day_report_is_today(where: Where, floor: ShopFloor, report: Report) -> list[Finding]:
    """At a business day's last millisecond, its one-day report is the floor's `today`."""
    path = "property: a one-day report is today at the day's end"
    rows = {r.agent: as_dict(r.metrics) for r in report.agents}
    out = []
    for row in floor.agents:
        today = as_dict(row.windows["today"])
        if row.agent in rows:
            out += compare_values(path, where, row.agent, "today", today, rows[row.agent])
        elif row.windows["today"].consultations or row.windows["today"].inquiries:
            out.append(Finding(path, where, row.agent, "today", "row", "a report row", None))
    out += compare_values(
        path, where, "(team)", "today", as_dict(floor.totals.windows["today"]), as_dict(report.totals.metrics)
    )
    return out


def check_days_add_up_to_28d(where: Where, floor: ShopFloor, reports: list[Report]) -> list[Finding]:
    """The counts of 28 one-day reports add up to the floor's `28d`."""
    path = "property: 28 one-day reports add up to 28d"
    summed: dict[str, dict[str, int]] = {}
    for report in reports:
        for report_row in report.agents:
            mine = summed.setdefault(report_row.agent, dict.fromkeys(COUNTS, 0))
            for name in COUNTS:
                mine[name] += getattr(report_row.metrics, name)
        mine = summed.setdefault("(team)", dict.fromkeys(COUNTS + TEAM_COUNTS, 0))
        for name in COUNTS + TEAM_COUNTS:
            mine[name] += getattr(report.totals.metrics, name)
    out = []
    for row in floor.agents:
        wanted = {name: getattr(row.windows["28d"], name) for name in COUNTS}
        out += compare_values(
            path, where, row.agent, "28d", wanted, summed.get(row.agent, dict.fromkeys(COUNTS, 0))
        )
    team_wanted = {name: getattr(floor.totals.windows["28d"], name) for name in COUNTS + TEAM_COUNTS}
    out += compare_values(path, where, "(team)", "28d", team_wanted, summed.get("(team)", {}))
    return out
