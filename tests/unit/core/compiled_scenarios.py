"""Generated traffic through the core and the write set, printed canonically: one process's view.

    python -m tests.unit.core.compiled_scenarios EVENTS SEED

tests/unit/core/test_compiled_core.py runs this once on the compiled build and once with
KEFU_PURE_PYTHON=1 and compares the outputs line by line. The first line says which core ran;
every other line is one batch's buyer deltas and write set, or a buyer's final stored state.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from enum import Enum

from agents.core.buyer import BuyerState
from agents.core.compiled import core_status
from agents.core.details import RowKey
from agents.core.engine import BuyerDelta, Horizon, apply_buyer_events
from agents.core.policy import PolicyBook
from agents.store.state_codec import encode_state
from agents.store.writes import WriteSet, add_buyer_delta
from config.calendar import MS_PER_DAY
from config.settings import settings_from_yaml
from streams.contract.events import Event
from streams.simulation.traffic import RATING_SHARE, TrafficModel, TrafficShape
from streams.wire.decoding import EventDecoder, Rejection

# The default rules on the default traffic; then rules that take the core's other branches, on
# slow agents (first responses past the last histogram bucket, waits past the targets).
SCENARIOS: tuple[tuple[str, float], ...] = (
    ("", 7.0),
    (
        "defaults: {attribution: {rule: all, window: next_day, judge: paid, deduct_refunds: true},"
        " service_hours: '09:00-21:00', response_targets_seconds: [10, 60, 300]}",
        90.0,
    ),
)
BATCH = 300


def canonical(value: object) -> str:
    """A text for `value` that depends on its contents only: dicts and sets sorted, bytes in hex."""
    if isinstance(value, Enum):
        return repr(value.value)
    if isinstance(value, dict):
        items = sorted((canonical(k), canonical(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(canonical(v) for v in value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(canonical(v) for v in value) + "]"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, RowKey):
        return canonical((value.agent, value.day, value.field))
    return repr(value)


def _delta_text(delta: BuyerDelta) -> str:
    parts = (delta.outcomes, delta.cohorts, delta.histogram, delta.histogram_sum_ms, delta.waits, delta.rows)
    return canonical(list(parts))


def _writes_text(writes: WriteSet) -> str:
    names = ("buyer_states", "buyer_ttl_ms", "increments", "expire_at_ms", "waits_add", "waits_remove")
    names += ("agents_seen", "details")
    return canonical({name: getattr(writes, name) for name in names})


def _events(records: int, seed: int, start_ms: int, reply_median_s: float) -> Iterator[list[Event]]:
    shape = TrafficShape(
        shops=3,
        agents=6,
        rate=40,
        bad_share=0,
        rating_share=RATING_SHARE,
        refund_share=0.2,
        reply_median_s=reply_median_s,
        reply_spread=1.2,
    )
    decoder = EventDecoder(future_tolerance_ms=10 * MS_PER_DAY)
    stream = (r for r in TrafficModel(shape, seed).records(start_ms) if r.kind != "agents")
    decoded = (decoder.decode(r.value, r.key, r.ts) for r in itertools.islice(stream, records))
    events = [e for e in decoded if not isinstance(e, Rejection)]
    for index in range(0, len(events), BATCH):
        yield events[index : index + BATCH]


def run(records: int, seed: int, settings_yaml: str, reply_median_s: float) -> Iterator[str]:
    """One line per batch (every buyer's delta, then the write set), then one per buyer state."""
    policies = PolicyBook(settings_from_yaml(settings_yaml))
    states: dict[tuple[str, str], BuyerState] = {}
    start_ms = 1_700_000_000_000
    for number, batch in enumerate(_events(records, seed, start_ms, reply_median_s)):
        now_ms = max(event.ts for event in batch)
        buyers: dict[tuple[str, str], list[Event]] = {}
        for event in batch:
            buyers.setdefault((event.shop_id, event.buyer_id), []).append(event)
        writes = WriteSet()
        lines = []
        for (shop, buyer), events in buyers.items():
            policy = policies(shop)
            state = states.setdefault((shop, buyer), BuyerState())
            delta = apply_buyer_events(state, events, policy, Horizon.at(policy, now_ms))
            add_buyer_delta(writes, policy, buyer, delta, now_ms)
            lines.append(f"{shop}:{buyer} {_delta_text(delta)}")
        yield f"batch {number}: " + " | ".join(lines)
        yield f"writes {number}: {_writes_text(writes)}"
    for (shop, buyer), state in sorted(states.items()):
        yield f"state {shop}:{buyer} {encode_state(state).hex()}"


def main() -> None:
    records, seed = int(sys.argv[1]), int(sys.argv[2])
    print(f"core {core_status().compiled}")
    for settings_yaml, reply_median_s in SCENARIOS:
        for line in run(records, seed, settings_yaml, reply_median_s):
            print(line)


if __name__ == "__main__":
    main()
