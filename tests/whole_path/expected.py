"""What tests/reference.py says every read path must show, kept up to date as records apply.

The reference gives cohorts by business day; the rolling windows (`5m`, `1h`) and the trend
need them by start. So each buyer's events go through the reference's own `_buyer` with
`local_day` stamped: the day it returns is an ordinary `date` (equal, hashed and compared as
one) that also carries the moment it was asked about, and the cohorts it files are recorded
under (agent, that moment). Nothing else of the reference changes; a buyer's histogram is
checked against its rows, and `assert_matches_plain_reference` checks the whole by day.

Two facts of a live system the reference (one `now` for all events) does not model, taken
from metrics.md and the driven clock instead:
- lateness is judged when a record is applied, at the processor's clock (the reference's own
  rule, `reference([event], clock)`), not at the moment of reading;
- a business day leaves the `28d` window at the shop's midnight 28 days later and is frozen
  from then on (reports read it as it was): `freeze_before` keeps its cohorts as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import tests.reference as reference_model
from agents.core.projection import DAY_FIELDS, FIELD_NAMES
from streams.contract.events import Event, Rating
from tests.reference import FIELDS, HISTOGRAM_BOUNDS_S, Result, Rules, _buyer, local_midnight, reference
from tests.whole_path.shops import ShopPlan

HISTOGRAM_SLOTS = len(HISTOGRAM_BOUNDS_S) + 1
DAY_WIDTH = len(FIELDS) + HISTOGRAM_SLOTS  # a cohort vector, then its first responses by bucket
C, R, FS = (FIELDS.index(name) for name in ("c", "r", "fs"))
SHOP_LEVEL = ""
Vector = list[int]
AgentStart = tuple[str, int]  # (agent, cohort start ms)

# The reference and the store name the same fields in the same order (a layout fact).
assert FIELDS == FIELD_NAMES and len(DAY_FIELDS) == DAY_WIDTH, "reference and store layouts differ"

_plain_local_day = reference_model.local_day


class _StampedDay(date):
    """A business day that remembers which moment it is the day of."""

    start: int = -1


def _stamped_local_day(ts: int, zone: str) -> date:
    plain = _plain_local_day(ts, zone)
    day = _StampedDay(plain.year, plain.month, plain.day)
    day.start = ts
    return day


class _CohortsByStart:
    """Stands in for the reference's cohort dict: files each cohort under (agent, start)."""

    def __init__(self) -> None:
        self.rows: dict[AgentStart, dict[str, int]] = {}

    def __getitem__(self, key: tuple[str, str, date]) -> dict[str, int]:
        _, agent, day = key
        start = getattr(day, "start", -1)
        if start < 0:
            raise AssertionError(f"the reference filed a cohort under an unstamped day {day!r}")
        return self.rows.setdefault((agent, start), dict.fromkeys(FIELDS, 0))


@contextlib.contextmanager
def _stamped_days() -> Iterator[None]:
    reference_model.local_day = _stamped_local_day
    try:
        yield
    finally:
        reference_model.local_day = _plain_local_day


def histogram_slot(latency_ms: int) -> int:
    return next((i for i, bound in enumerate(HISTOGRAM_BOUNDS_S) if latency_ms <= bound * 1000), 9)


@dataclass
class BuyerRows:
    rows: dict[AgentStart, Vector]  # DAY_WIDTH vectors
    waits: dict[str, int]  # agent -> open wait's start


def buyer_rows(shop: str, buyer: str, events: list[Event], rules: Rules) -> BuyerRows:
    """One buyer's cohorts by (agent, start), from the reference, as of all of `events`."""
    scratch = Result()
    cohorts = _CohortsByStart()
    with _stamped_days():
        _buyer((shop, buyer), events, rules, 0, cohorts, scratch)  # type: ignore[arg-type]
    rows: dict[AgentStart, Vector] = {}
    histogram: dict[tuple[str, str, int], int] = {}
    for key, named in cohorts.rows.items():
        vector = [named[name] for name in FIELDS] + [0] * HISTOGRAM_SLOTS
        if key[0] != SHOP_LEVEL and vector[R] == 1:  # one buyer, agent and start: one consultation
            slot = histogram_slot(vector[FS])
            vector[len(FIELDS) + slot] = 1
            histogram[(shop, key[0], slot)] = histogram.get((shop, key[0], slot), 0) + 1
        if any(vector):
            rows[key] = vector
    if histogram != scratch.histogram:
        raise AssertionError(f"the stamped reference lost first responses of {shop}/{buyer}")
    waits = {agent: start for (_, agent, _), start in scratch.waits.items()}
    return BuyerRows(rows, waits)


def add_into(target: Vector, vector: Vector, sign: int = 1) -> None:
    for index, value in enumerate(vector):
        target[index] += sign * value


@dataclass
class ShopModel:
    """One shop's expected state: applied events per buyer, and their cohorts by start."""

    plan: ShopPlan
    start_ms: int  # the simulation's first moment: the days before its `28d` window stay empty
    events: dict[str, list[Event]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    dirty: set[str] = field(default_factory=set)
    buyers: dict[str, BuyerRows] = field(default_factory=dict)
    by_start: dict[AgentStart, Vector] = field(default_factory=dict)
    frozen: dict[int, dict[str, Vector]] = field(default_factory=dict)  # day -> agent -> vector
    frozen_through: int = 0  # days before this one are frozen
    _days: dict[int, int] = field(default_factory=dict)  # start ms -> business day, cached

    def __post_init__(self) -> None:
        self.frozen_through = self.today(self.start_ms) - 27

    @property
    def rules(self) -> Rules:
        return self.plan.rules

    def apply(self, event: Event, clock_ms: int) -> str:
        """The reference's verdict on `event` applied at `clock_ms`; applied ones are kept."""
        verdict = reference([event], clock_ms, self.rules).outcomes[0]
        # Alone, a rating rates nothing: whether it matches is for the buyer's history to say.
        if verdict in ("applied", "unmatched") and event.event_id in self.seen:
            return "duplicate"
        if verdict in ("applied", "unmatched"):
            self.seen.add(event.event_id)
            self.events.setdefault(event.buyer_id, []).append(event)
            self.dirty.add(event.buyer_id)
            if isinstance(event, Rating):
                return "unmatched" if self._unmatched(event) else "applied"
        return verdict

    def _unmatched(self, rating: Rating) -> bool:
        """Whether the buyer's events so far (in order: a rating matches only earlier ones) leave
        `rating` without a consultation."""
        with _stamped_days():
            unmatched = _buyer(
                (self.plan.shop, rating.buyer_id),
                self.events[rating.buyer_id],
                self.rules,
                0,
                _CohortsByStart(),  # type: ignore[arg-type]
                Result(),
            )
        return rating.event_id in unmatched

    def refresh(self) -> None:
        for buyer in sorted(self.dirty):
            new = buyer_rows(self.plan.shop, buyer, self.events[buyer], self.rules)
            old = self.buyers.get(buyer)
            if old is not None:
                for key, vector in old.rows.items():
                    add_into(self.by_start[key], vector, -1)
            for key, vector in new.rows.items():
                add_into(self.by_start.setdefault(key, [0] * DAY_WIDTH), vector)
            self.buyers[buyer] = new
        self.dirty.clear()

    def day_of(self, start_ms: int) -> int:
        day = self._days.get(start_ms)
        if day is None:
            day = self._days[start_ms] = _plain_local_day(start_ms, self.rules.zone).toordinal()
        return day

    def today(self, now_ms: int) -> int:
        return _plain_local_day(now_ms, self.rules.zone).toordinal()

    def midnight(self, day: int) -> int:
        return local_midnight(date.fromordinal(day), self.rules.zone)

    def freeze_before(self, clock_ms: int) -> None:
        """Keep the days a batch at `clock_ms` can no longer change as they are now."""
        cutoff = self.today(clock_ms) - 27
        if cutoff <= self.frozen_through:
            return
        self.refresh()
        for day in range(self.frozen_through, cutoff):
            self.frozen[day] = self._live_day(day)
        self.frozen_through = cutoff

    def _live_day(self, day: int) -> dict[str, Vector]:
        out: dict[str, Vector] = {}
        for (agent, start), vector in self.by_start.items():
            if self.day_of(start) == day:
                add_into(out.setdefault(agent, [0] * DAY_WIDTH), vector)
        return out

    def day(self, day: int) -> dict[str, Vector]:
        """Agent (and "" for the shop level) -> that day's cohort vector with its histogram."""
        if day < self.frozen_through:
            return self.frozen.get(day, {})
        return self._live_day(day)

    def started_between(self, first_ms: int, last_ms: int) -> dict[str, Vector]:
        """Agent -> the cohorts that started in [first_ms, last_ms], summed."""
        out: dict[str, Vector] = {}
        for (agent, start), vector in self.by_start.items():
            if first_ms <= start <= last_ms:
                add_into(out.setdefault(agent, [0] * DAY_WIDTH), vector)
        return out

    def days_between(self, first_day: int, last_day: int) -> dict[str, Vector]:
        out: dict[str, Vector] = {}
        for day in range(first_day, last_day + 1):
            for agent, vector in self.day(day).items():
                add_into(out.setdefault(agent, [0] * DAY_WIDTH), vector)
        return out

    def histograms(self) -> dict[str, Vector]:
        """Agent -> every first response ever counted (frozen days as they froze)."""
        out: dict[str, Vector] = {}
        for day_vectors in self.frozen.values():
            for agent, vector in day_vectors.items():
                add_into(out.setdefault(agent, [0] * DAY_WIDTH), vector)
        for (agent, start), vector in self.by_start.items():
            if self.day_of(start) >= self.frozen_through:
                add_into(out.setdefault(agent, [0] * DAY_WIDTH), vector)
        return {agent: vector for agent, vector in out.items() if agent != SHOP_LEVEL}

    def waits(self, now_ms: int) -> dict[str, list[tuple[int, str]]]:
        """Agent -> (start, buyer) of the waits still open at `now_ms`, oldest first."""
        oldest_allowed = now_ms - self.rules.wait_limit_ms
        out: dict[str, list[tuple[int, str]]] = {}
        for buyer, rows in self.buyers.items():
            for agent, start in rows.waits.items():
                if start >= oldest_allowed:
                    out.setdefault(agent, []).append((start, buyer))
        return {agent: sorted(found) for agent, found in out.items()}

    def agents(self) -> set[str]:
        found = {agent for agent, _ in self.by_start} | {a for day in self.frozen.values() for a in day}
        found |= {agent for rows in self.buyers.values() for agent in rows.waits}
        return found - {SHOP_LEVEL}

    def assert_matches_plain_reference(self, now_ms: int) -> None:
        """The stamped rows summed by day are the reference's own cohorts (a check of the stamp)."""
        self.refresh()
        events = [e for buyer in sorted(self.events) for e in self.events[buyer]]
        far_back = now_ms - 10_000 * 86_400_000  # nothing judged late
        plain = reference(events, far_back, self.rules).cohorts
        ours: dict[tuple[str, str, date], dict[str, int]] = {}
        for (agent, start), vector in self.by_start.items():
            key = (self.plan.shop, agent, date.fromordinal(self.day_of(start)))
            row = ours.setdefault(key, dict.fromkeys(FIELDS, 0))
            for name, value in zip(FIELDS, vector, strict=False):
                row[name] += value
        ours = {k: v for k, v in ours.items() if any(v.values())}
        if ours != plain:
            raise AssertionError(f"{self.plan.shop}: the stamped reference differs from the reference by day")


def day_text(day: int) -> str:
    return date.fromordinal(day).isoformat()
