"""Apply one buyer's slice of a batch: dedup, lateness, filters, fold, prune, diff."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agents.core.buyer import (
    BuyerState,
    WaitSample,
    apply_message,
    apply_order,
    apply_rating,
    apply_transfer,
    event_digest,
    prune,
)
from agents.core.details import RowChanges, row_changes
from agents.core.horizon import Horizon, unpaid_cut_ms  # Horizon re-exported
from agents.core.policy import ShopPolicy
from agents.core.projection import (
    WIDTH,
    CohortKey,
    Counter,
    Projection,
    Vector,
    bucket_index,
    project,
    sample_vectors,
)
from streams.contract.events import Event, Message, Order, Rating, Transfer

# Plain ints on the hot path, as in projection.py: an IntEnum index costs there.
_REPLIED, _FIRST_RESPONSE_MS = int(Counter.REPLIED), int(Counter.FIRST_RESPONSE_MS)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"
    FILTERED = "filtered"
    UNMATCHED = "unmatched"  # a rating of no consultation (v3): counted, never credited


@dataclass(slots=True)
class BuyerDelta:
    """What applying a buyer's events changes outside the buyer's own state."""

    outcomes: list[Outcome]
    cohorts: dict[CohortKey, Vector] = field(default_factory=dict)
    histogram: dict[tuple[str, int], int] = field(default_factory=dict)
    histogram_sum_ms: dict[str, int] = field(default_factory=dict)
    # agent -> new open-wait start, or None when the wait left that agent's queue.
    waits: dict[str, int | None] = field(default_factory=dict)
    # The drill-down rows the cohorts' changes rewrite (agents/core/details.py).
    rows: RowChanges = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """The state took an event (an unmatched rating too: its id is kept, for duplicates)."""
        return Outcome.APPLIED in self.outcomes or Outcome.UNMATCHED in self.outcomes


def apply_buyer_events(
    state: BuyerState,
    events: list[Event],
    policy: ShopPolicy,
    horizon: Horizon,
) -> BuyerDelta:
    """Fold `events` (one shop, one buyer, arrival order) into `state` in place."""
    if policy.is_blocked(events[0].buyer_id):
        return BuyerDelta([Outcome.FILTERED] * len(events))
    wait_limit_ms = policy.wait_limit_ms
    before = project(state, policy, horizon.cutoff_day, horizon.cutoff_ms)
    outcomes: list[Outcome] = []
    samples: list[WaitSample] = []
    for event in events:
        oldest = horizon.order_horizon_ms if type(event) is Order else horizon.cutoff_ms
        if event.ts < oldest:
            outcomes.append(Outcome.LATE)
            continue
        digest = event_digest(event.event_id)
        if digest in state.seen:
            outcomes.append(Outcome.DUPLICATE)
            continue
        state.seen[digest] = event.ts
        if type(event) is Message:
            apply_message(state, event, policy.clock, wait_limit_ms, samples, policy.aftersale_agents)
        elif type(event) is Transfer:
            apply_transfer(state, event, policy.calendar, wait_limit_ms, policy.aftersale_agents)
        elif type(event) is Rating:
            if not apply_rating(state, event, policy.calendar, policy.rating_days):
                outcomes.append(Outcome.UNMATCHED)
                continue
        else:
            apply_order(state, event, unpaid_cut_ms(policy, event.ts))  # type: ignore[arg-type]
        outcomes.append(Outcome.APPLIED)
    delta = BuyerDelta(outcomes)
    if delta.changed:
        _outside_changes(delta, events[0].buyer_id, state, before, samples, policy, horizon)
    return delta


def _outside_changes(
    delta: BuyerDelta,
    buyer_id: str,
    state: BuyerState,
    before: Projection,
    samples: list[WaitSample],
    policy: ShopPolicy,
    horizon: Horizon,
) -> None:
    """What the folded events change outside the state, into `delta`; the state pruned."""
    after = project(state, policy, horizon.cutoff_day, horizon.cutoff_ms)
    delta.cohorts = _cohort_changes(before, after)
    # Rows from the state as projected, before pruning drops what they may still show; the
    # consultations' changes only, not the wait samples added below (wait starts).
    delta.rows = row_changes(buyer_id, state, before, after, delta.cohorts, policy, horizon.cutoff_ms)
    # After projecting: what pruning drops changes no cohort from the cutoff on, and `after`
    # names the old inquiries that still hold a credit.
    prune(
        state,
        horizon.cutoff_day,
        horizon.order_horizon_ms,
        after.credited_past_cutoff,
        horizon.unpaid_from_ms,
        horizon.inquiries_from_ms,
        policy.after_sale_ms,
    )
    _histogram_changes(delta)
    _wait_changes(delta, before, after)
    for key, vector in sample_vectors(samples).items():
        _add(delta.cohorts, key, vector)


def _add(target: dict[CohortKey, Vector], key: CohortKey, vector: Vector) -> None:
    current = target.get(key)
    if current is None:
        target[key] = vector
        return
    for index in range(WIDTH):
        current[index] += vector[index]


def _cohort_changes(before: Projection, after: Projection) -> dict[CohortKey, Vector]:
    """after - before, per cohort; unchanged cohorts (most of them) cost one list comparison.

    Every projected vector counts at least one consultation or order, so a cohort present on
    one side only always changes."""
    changes: dict[CohortKey, Vector] = {}
    old_cohorts = before.cohorts
    for key, vector in after.cohorts.items():
        old = old_cohorts.get(key)
        if old is None:
            changes[key] = vector  # `after` is thrown away, so its lists can be handed on
        elif old != vector:
            changes[key] = [new - was for new, was in zip(vector, old, strict=True)]
    for key, old in old_cohorts.items():
        if key not in after.cohorts:
            changes[key] = [-was for was in old]
    return changes


def _histogram_changes(delta: BuyerDelta) -> None:
    """A consultation's first reply never changes once set, and an agent-level cohort key is one
    consultation, so a `Counter.REPLIED` change of +1 carries exactly one new first response."""
    for (agent, _), change in delta.cohorts.items():
        if change[_REPLIED] == 1:
            response_ms = change[_FIRST_RESPONSE_MS]
            bucket = (agent, bucket_index(response_ms))
            delta.histogram[bucket] = delta.histogram.get(bucket, 0) + 1
            delta.histogram_sum_ms[agent] = delta.histogram_sum_ms.get(agent, 0) + response_ms


def _wait_changes(delta: BuyerDelta, before: Projection, after: Projection) -> None:
    if before.waits == after.waits:  # most events leave the buyer's waits as they were
        return
    for agent in before.waits.keys() | after.waits.keys():
        if before.waits.get(agent) != after.waits.get(agent):
            delta.waits[agent] = after.waits.get(agent)
