"""What a report reads is written: day buckets kept for the shop's retention, and each day's
first responses by histogram bucket."""

from __future__ import annotations

import pytest

from agents.core.buyer import BuyerState
from agents.core.engine import Horizon, apply_buyer_events
from agents.core.policy import resolve_policy
from agents.store import keys
from agents.store.outbox import apply_calls, from_writes
from agents.store.writes import HISTORY_INDEX_TTL_MS, WriteSet, add_buyer_delta
from config.calendar import MS_PER_DAY, MS_PER_HOUR
from config.settings import MAX_RETENTION_DAYS, settings_from_yaml
from tests.builders import agent_msg, at, buyer_msg

NOW = at(23, 0)


def writes_for(yaml_text: str, *events: object, shop: str = "s1") -> tuple[WriteSet, int]:
    policy = resolve_policy(settings_from_yaml(yaml_text), shop)
    state = BuyerState()
    delta = apply_buyer_events(state, list(events), policy, Horizon.at(policy, NOW))  # type: ignore[arg-type]
    writes = WriteSet()
    add_buyer_delta(writes, policy, "b1", delta, NOW)
    return writes, policy.calendar.day(events[0].ts)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("yaml_text", "days"),
    [("{}", 93), ("defaults: {retention_days: 28}", 28), ("shops: {s1: {retention_days: 366}}", 366)],
)
def test_day_buckets_live_for_the_shops_retention(yaml_text: str, days: int) -> None:
    writes, day = writes_for(yaml_text, buyer_msg(at(10)), agent_msg(at(10, 0, 5)))
    policy = resolve_policy(settings_from_yaml(yaml_text), "s1")
    key = keys.bucket_key("s1", "s1:a", "d", day)
    assert writes.expire_at_ms[key] == policy.calendar.day_start_ms(day + days) + MS_PER_HOUR


@pytest.mark.parametrize(
    ("reply_after_ms", "field"),
    [(1_000, "h0"), (1_001, "h1"), (12_000, "h4"), (15_000, "h4"), (15_001, "h5"), (300_001, "h9")],
)
def test_the_first_response_lands_in_its_days_histogram_bucket(reply_after_ms: int, field: str) -> None:
    writes, day = writes_for("{}", buyer_msg(at(10)), agent_msg(at(10) + reply_after_ms))
    counters = writes.increments[keys.bucket_key("s1", "s1:a", "d", day)]
    assert {k: v for k, v in counters.items() if k.startswith("h")} == {field: 1}
    assert counters["r"] == 1


def test_a_second_reply_and_an_unanswered_buyer_add_nothing_to_the_histogram() -> None:
    writes, day = writes_for("{}", buyer_msg(at(10)))
    assert not any(k.startswith("h") for k in writes.increments[keys.bucket_key("s1", "s1:a", "d", day)])


def test_indexes_name_agents_for_every_report_the_retention_allows() -> None:
    writes, _ = writes_for("{}", buyer_msg(at(10)), agent_msg(at(10, 0, 5)))
    entry = from_writes(0, 1, writes)
    assert entry is not None
    touches = [c for c in apply_calls([entry]) if c.keys[0] == keys.agents_index_key("s1")]
    assert touches and touches[0].args[0] == HISTORY_INDEX_TTL_MS == (MAX_RETENTION_DAYS + 1) * MS_PER_DAY


def test_agent_markers_outlive_every_outbox_entry_that_could_be_applied_again() -> None:
    """An outbox entry lives as long as its partition's offsets; a marker that expired first
    would let a restart add the entry's counts to the report's history a second time."""
    from agents.store.batches import RedisPartitionStore, offset_ttl_ms

    writes, _ = writes_for("shops: {s1: {retention_days: 366, after_sale_days: 30}}", buyer_msg(at(10)))
    entry = from_writes(0, 1, writes)
    assert entry is not None
    settings = settings_from_yaml("shops: {s1: {retention_days: 366, after_sale_days: 30}}")
    store = RedisPartitionStore(None, offset_ttl_ms(settings))  # type: ignore[arg-type]
    [call] = [c for c in apply_calls([entry], store.offset_ttl_ms) if c.script.name == "apply_agent.lua"]
    assert call.args[-1] == offset_ttl_ms(settings) > HISTORY_INDEX_TTL_MS
